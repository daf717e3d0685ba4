"""Runs the engine in a separate process (for the kill/resume and torchrun tests).

    python tests/training_worker.py MODEL OUT [--resume] [--steps-per-checkpoint N] [--pairs N] [--batch N]

Prints one JSON line with the result on the main process; under torchrun every rank also prints whether
the model was saved when its ``finetune()`` returned, and (at exit, after the engine's own exit handler)
whether the process group is still open.
"""

from __future__ import annotations

import argparse
import atexit
import json
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine  # noqa: E402
from tests.training_data import topics_dataset  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("out")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--steps-per-checkpoint", type=int, default=500)
    p.add_argument("--passages", type=int, default=24)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--epochs", type=float, default=1)
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(a.passages, 2), model_id=a.model, model_output_path=a.out, batch_size=a.batch,
        epochs=a.epochs, show_progress_bar=False, resume_from_checkpoint=a.resume,
        checkpoint_save_steps=a.steps_per_checkpoint, device="cpu", hard_negatives=0,
    )
    rank = int(os.environ.get("RANK", "0"))
    if "RANK" in os.environ:
        atexit.register(_report_group_at_exit, rank)  # runs after handlers registered later (LIFO)
    engine.finetune()
    if "RANK" in os.environ:
        print(f"SAVED_ON_RETURN {rank} {(Path(a.out) / 'model.safetensors').exists()}", flush=True)
    if rank == 0:
        print("RESULT " + json.dumps(engine.result.to_dict(), default=str), flush=True)


def _report_group_at_exit(rank: int) -> None:
    import torch.distributed as dist

    print(f"GROUP_OPEN_AT_EXIT {rank} {dist.is_initialized()}", flush=True)


if __name__ == "__main__":
    main()
