"""Evaluation results of any size for the HTML report's tests and benchmark (no model involved).

Rankings are random but consistent: each later model finds the expected passage a bit more often,
so there are wins, losses and ties. Also writes the files a run leaves beside its report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from llama_index_bge_finetune.evaluation.comparison import ModelComparison, build_comparison
from llama_index_bge_finetune.evaluation.metrics import score_ranking
from llama_index_bge_finetune.report.comparison_report import ComparisonReport
from llama_index_bge_finetune.evaluation.results import DatasetInfo, EvaluationResult, QueryResult

WORDS = ("python class method yield generator async await loop scope name binding module import "
         "exception raise finally context manager descriptor attribute operator comparison").split()


def passage_text(rng: np.random.Generator, i: int, n_words: int = 120) -> str:
    return f"Passage {i}: " + " ".join(rng.choice(WORDS, n_words))


def synthetic_comparison(n_questions: int = 200, n_models: int = 2, n_passages: Optional[int] = None,
                         k_values=(1, 3, 5, 10), seed: int = 0, n_bootstrap: int = 200,
                         n_permutations: int = 200, query_source: str = "pseudo") -> ComparisonReport:
    """A comparison of ``n_models`` (``base``, ``fine-tuned``, ``model-2``, ...) on synthetic rankings."""
    rng = np.random.default_rng(seed)
    n_passages = n_passages or max(20, n_questions // 2)
    corpus = {f"node-{i}": passage_text(rng, i) for i in range(n_passages)}
    ids = list(corpus)
    expected = [ids[i % n_passages] for i in range(n_questions)]
    questions = [f"What does the {rng.choice(WORDS)} {rng.choice(WORDS)} do in case {i}?" for i in range(n_questions)]
    info = DatasetInfo(n_queries=n_questions, n_corpus=n_passages, query_source=query_source, name="synthetic")
    depth = max(k_values)
    labels = ["base", "fine-tuned"] + [f"model-{m}" for m in range(2, n_models)]
    results: Dict[str, EvaluationResult] = {}
    for m, label in enumerate(labels[:n_models]):
        queries: List[QueryResult] = []
        for i in range(n_questions):
            picks = list(rng.choice(n_passages, depth + 1, replace=False))
            retrieved = [ids[p] for p in picks if ids[p] != expected[i]][:depth]
            if rng.random() < 0.55 + 0.1 * m:
                retrieved.insert(int(rng.integers(0, min(4, depth))), expected[i])
                retrieved = retrieved[:depth]
            scores = sorted(rng.uniform(0.2, 0.9, len(retrieved)).tolist(), reverse=True)
            rel = {expected[i]: 1.0}
            queries.append(QueryResult(query_id=f"q{i}", query=questions[i], relevant=rel, retrieved_ids=retrieved,
                                       retrieved_scores=scores, metrics=score_ranking(retrieved, rel, k_values)))
        results[label] = EvaluationResult(name=label, k_values=tuple(k_values), queries=queries, dataset=info,
                                          timings={"encode_corpus": 1.0, "encode_queries": 0.1, "search_and_score": 0.01},
                                          model_info={"source": label, "backend": "torch", "encoder": "synthetic"})

    class _Data:  # what build_comparison reads from a dataset: its corpus
        pass

    data = _Data()
    data.corpus = corpus
    return ComparisonReport.of(build_comparison(results, data, n_bootstrap=n_bootstrap, n_permutations=n_permutations))


def write_run_files(run_dir: Path, cmp: ModelComparison, n_chunks: int, secret: str = "") -> None:
    """``run.json``, ``dataset.json``, ``failures.jsonl`` and ``model/training_result.json`` as a run leaves them."""
    run_dir.mkdir(parents=True, exist_ok=True)
    first = cmp.results[cmp.base]
    dataset = {"queries": {q.query_id: q.query for q in first.queries}, "corpus": dict(cmp.corpus),
               "relevant_docs": {q.query_id: list(q.relevant) for q in first.queries}, "query_source": "pseudo"}
    (run_dir / "dataset.json").write_text(json.dumps(dataset), encoding="utf-8")
    run: Dict[str, Any] = {"output": str(run_dir), "documents": "docs/", "generator": "offline", "seed": 0,
                           "base_model_resolved": "all-MiniLM-L6-v2", "n_chunks": n_chunks,
                           "base_model_reason": "the hub is unreachable; using the packaged model",
                           "question_generator": "offline pseudo-queries", "extra": {"openai_api_key": secret}}
    (run_dir / "run.json").write_text(json.dumps(run), encoding="utf-8")
    failures = [{"node_id": "node-x1", "reason": "HTTP 500 after retries", "attempts": 4, "kind": "failed"},
                {"node_id": "node-x2", "reason": "near-empty chunk", "attempts": 0, "kind": "skipped", "chars": 3}]
    (run_dir / "failures.jsonl").write_text("\n".join(json.dumps(f) for f in failures) + "\n", encoding="utf-8")
    log = [{"loss": 2.0 - 0.1 * s, "learning_rate": 2e-5, "epoch": s / 10, "step": s} for s in range(1, 11)]
    log += [{"eval_val_cosine_ndcg@10": 0.6 + 0.05 * e, "eval_loss": 1.0 - 0.1 * e, "eval_runtime": 1.2,
             "epoch": float(e), "step": 5 * e} for e in (1, 2)]
    model = run_dir / "model"
    model.mkdir(exist_ok=True)
    result = {"model_path": str(model), "train_seconds": 12.5, "total_seconds": 15.0, "examples_per_second": 40.0,
              "steps": 10, "final_loss": 1.0, "pairs": 500, "pairs_with_negatives": 480,
              "hyperparameters": {"epochs": 2, "batch_size": 32, "learning_rate": 2e-5, "loss": "CachedMNRL"},
              "log_history": log}
    (model / "training_result.json").write_text(json.dumps(result), encoding="utf-8")
