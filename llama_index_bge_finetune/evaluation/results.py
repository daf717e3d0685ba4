"""What an evaluation returns: per-query results, their means, and the worst queries.

Example::

    result = evaluate_embeddings("out/model", "val.json")
    result.metrics["ndcg@10"]          # mean over the evaluated queries
    result.per_query_frame()           # one row per query, one column per metric
    for q in result.worst_queries(3):  # what was retrieved instead of the answer
        print(q.query, q.retrieved_ids[:3], q.relevant)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from llama_index_bge_finetune.evaluation.metrics import metric_keys


if TYPE_CHECKING:
    import pandas as pd


@dataclass
class QueryResult:
    """One query: its relevant ids (with grades), what came back, and its scores."""

    query_id: str
    query: str
    relevant: Dict[str, float]
    retrieved_ids: List[str]
    retrieved_scores: List[float]
    metrics: Dict[str, float]


@dataclass
class DatasetInfo:
    """What was evaluated: sizes, how the questions were made, and which queries were left out."""

    n_queries: int
    n_corpus: int
    query_source: Optional[str] = None
    excluded: Dict[str, str] = field(default_factory=dict)
    name: str = ""

    @property
    def query_source_note(self) -> str:
        """One sentence on where the questions came from, with a warning for pseudo-queries."""
        src = self.query_source
        if src == "pseudo":
            return ("Queries: pseudo-queries generated offline from the passages. Warning: pseudo-queries flatter a "
                    "model fine-tuned on pseudo-queries; confirm a gain on LLM-written or real user questions.")
        if src == "llm":
            return "Queries: questions written by an LLM from the passages."
        if src == "user":
            return "Queries: real user questions."
        if src:
            return f"Queries: {src}."
        return "Queries: origin not recorded in the dataset (query_source is unset)."


@dataclass
class EvaluationResult:
    """Per-query results of one model (or retriever) on one dataset, with their means.

    Attributes:
        name: the model's label in reports.
        k_values: the cut-offs evaluated.
        queries: one :class:`QueryResult` per evaluated query, in dataset order.
        dataset: sizes, query source and excluded queries.
        timings: seconds spent per phase (``encode_corpus``, ``encode_queries``, ``search``, ...).
        model_info: what the encoder says about itself (fingerprint, backend, ...).
        search: how the top k was found (``method``, ``exact``, a one-line ``note`` and, for an
            approximate index, its ``recall@k_vs_exact``); see :class:`~llama_index_bge_finetune.retrieval.search.SearchResult`.
    """

    name: str
    k_values: Tuple[int, ...]
    queries: List[QueryResult]
    dataset: DatasetInfo
    timings: Dict[str, float] = field(default_factory=dict)
    model_info: Dict[str, Any] = field(default_factory=dict)
    search: Dict[str, Any] = field(default_factory=dict)

    @property
    def metric_names(self) -> List[str]:
        """Metric keys such as ``ndcg@10``, metric-major."""
        return metric_keys(self.k_values)

    @property
    def metrics(self) -> Dict[str, float]:
        """Mean of each metric over the evaluated queries."""
        return {m: float(self.per_query_array(m).mean()) if self.queries else 0.0 for m in self.metric_names}

    def per_query_array(self, metric: str) -> np.ndarray:
        """One metric's value for every query, in order (the input to bootstrap and paired tests)."""
        return np.array([q.metrics[metric] for q in self.queries], dtype=np.float64)

    def per_query_frame(self) -> "pd.DataFrame":
        """A DataFrame indexed by query id, one column per metric, plus the query text."""
        import pandas as pd

        rows = [{"query_id": q.query_id, "query": q.query, **q.metrics} for q in self.queries]
        return pd.DataFrame(rows, columns=["query_id", "query", *self.metric_names]).set_index("query_id")

    def worst_queries(self, n: int = 5, metric: Optional[str] = None) -> List[QueryResult]:
        """The ``n`` queries with the lowest ``metric`` (default nDCG at the largest k), ties in dataset order."""
        metric = metric or f"ndcg@{max(self.k_values)}"
        order = sorted(range(len(self.queries)), key=lambda i: (self.queries[i].metrics[metric], i))
        return [self.queries[i] for i in order[:n]]

    def to_dict(self, per_query: bool = False) -> Dict[str, Any]:
        """JSON-able summary; ``per_query=True`` adds every query's result."""
        out: Dict[str, Any] = {
            "name": self.name,
            "k_values": list(self.k_values),
            "metrics": self.metrics,
            "dataset": asdict(self.dataset),
            "timings": dict(self.timings),
            "model": dict(self.model_info),
            "search": dict(self.search),
        }
        if per_query:
            out["queries"] = [asdict(q) for q in self.queries]
        return out


def relevance_of(relevant: Sequence[str] | Dict[str, float]) -> Dict[str, float]:
    """Graded relevance from a list of ids (all 1.0, duplicates merged) or a dict of grades."""
    if isinstance(relevant, dict):
        return {str(d): float(g) for d, g in relevant.items()}
    return {str(d): 1.0 for d in relevant}
