"""The demo as a benchmark: ``bge-finetune demo`` in an empty folder with a cold embedding cache, timed end to end.

One command (~2-4 min on 2 CPU cores; run it alone: other load on the machine distorts timings):

    python benchmarks/bench_demo.py

It runs what ``make demo`` runs (``python -m llama_index_bge_finetune demo``: the first 160 chunks of
CPython's Language Reference, offline pseudo-queries without an API key, the packaged all-MiniLM-L6-v2)
in a fresh process, with ``BGE_FINETUNE_CACHE_DIR`` pointing at an empty folder, and records: the wall
time of the whole command, the training result (seconds, steps, hyper-parameters), and the report's
metrics with 95% intervals and the paired differences against the base (whole corpus and held-out
passages alone). Writes its record to benchmarks/results/ (records.py).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = "ndcg@10"


def report_figures(report: Dict[str, Any]) -> Dict[str, Any]:
    """Each model's metrics and differences against the base from a run's ``report.json`` (no per-question data)."""
    return {name: {"metrics": m.get("metrics", {}), "vs_base": m.get("vs_base", {})}
            for name, m in report.get("models", {}).items()}


def main() -> None:
    from records import open_record

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="auto", help="as for `bge-finetune demo` (auto: offline without an API key)")
    args = parser.parse_args()
    record = open_record("demo")
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        out = Path(tmp) / "demo"
        env = {**os.environ, "BGE_FINETUNE_CACHE_DIR": str(Path(tmp) / "cache")}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "llama_index_bge_finetune", "demo", "--output", str(out),
                        "--generator", args.generator], cwd=ROOT, env=env, check=True)
        wall = time.perf_counter() - started
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        training_path = out / "model" / "training_result.json"
        training = json.loads(training_path.read_text(encoding="utf-8")) if training_path.is_file() else {}
    held_out = report.get("held_out_passages") or {}
    results = {
        "wall_seconds": wall, "generator": args.generator, "query_source": report.get("dataset", {}).get("query_source"),
        "questions": report.get("dataset", {}).get("n_queries"), "training": training,
        "whole_corpus": report_figures(report), "held_out_passages": report_figures(held_out),
    }
    models = results["whole_corpus"]
    base, tuned = (list(models) + [None, None])[:2]
    line = f"SUMMARY demo: {wall:.0f} s wall"
    if base and tuned:
        b, t = models[base]["metrics"].get(HEADLINE, {}), models[tuned]["metrics"].get(HEADLINE, {})
        d = models[tuned]["vs_base"].get(HEADLINE, {})
        line += (f"; {HEADLINE} {base} {b.get('value', float('nan')):.4f} -> {tuned} {t.get('value', float('nan')):.4f} "
                 f"({d.get('mean_diff', float('nan')):+.4f} [{d.get('ci_low', float('nan')):+.3f}, "
                 f"{d.get('ci_high', float('nan')):+.3f}], p = {d.get('p_value', float('nan')):.3f})")
    record.write(results, summary=line)
    print(line)
    print(f"record: {record.relative_path}")


if __name__ == "__main__":
    main()
