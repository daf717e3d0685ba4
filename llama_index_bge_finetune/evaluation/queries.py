"""Which queries of a dataset can be scored, and with what relevance (shared by both evaluation paths)."""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Optional, Tuple

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation.results import DatasetInfo, relevance_of

logger = logging.getLogger(__name__)

ON_MISSING = ("exclude", "raise")


def load_dataset(dataset: Any) -> EmbeddingQAFinetuneDataset:
    """Our dataset, llama-index-finetuning's, a dict, or a JSON/JSONL path, as our dataset class."""
    return EmbeddingQAFinetuneDataset.coerce(dataset)


def scorable_queries(
    ds: EmbeddingQAFinetuneDataset,
    relevance: Optional[Mapping[str, Mapping[str, float]]] = None,
    on_missing: str = "exclude",
    check_corpus: bool = True,
) -> Tuple[List[str], Dict[str, Dict[str, float]], DatasetInfo]:
    """Query ids to score, their graded relevance, and the dataset summary.

    A query whose relevant ids are all absent from the corpus (or that has none) cannot be scored:
    with ``on_missing="exclude"`` it is left out and counted in ``DatasetInfo.excluded``; with
    ``"raise"`` an :class:`EvaluationError` names it. Relevant ids missing from the corpus are dropped
    from the queries that keep at least one (they could never be retrieved).

    Args:
        relevance: optional graded judgments, query id -> {doc id: grade}; overrides ``relevant_docs``.
        check_corpus: False for a retriever over an index whose ids the dataset's corpus does not list.
    """
    if on_missing not in ON_MISSING:
        raise EvaluationError(f"on_missing must be one of {', '.join(ON_MISSING)}, got {on_missing!r}.")
    if not ds.queries:
        raise EvaluationError("The dataset has no queries to evaluate. Generate questions first (`bge-finetune generate`).")
    check = check_corpus and bool(ds.corpus)
    if check_corpus and not ds.corpus:
        raise EvaluationError("The dataset's corpus is empty, so there is nothing to retrieve from; add the passages.")
    qids: List[str] = []
    rels: Dict[str, Dict[str, float]] = {}
    excluded: Dict[str, str] = {}
    dropped = 0
    for qid in ds.queries:
        raw = relevance.get(qid, {}) if relevance is not None else ds.relevant_docs.get(qid, [])
        rel = {d: g for d, g in relevance_of(raw).items() if g > 0}
        if not rel:
            excluded[qid] = "no relevant passage listed"
            continue
        if check:
            kept = {d: g for d, g in rel.items() if d in ds.corpus}
            dropped += len(rel) - len(kept)
            if not kept:
                excluded[qid] = "none of its relevant passages is in the corpus"
                continue
            rel = kept
        qids.append(qid)
        rels[qid] = rel
    if excluded and on_missing == "raise":
        sample = ", ".join(f"{q} ({why})" for q, why in list(excluded.items())[:3])
        raise EvaluationError(
            f"{len(excluded)} queries cannot be scored, e.g. {sample}. Fix the dataset "
            "(EmbeddingQAFinetuneDataset.clean() drops them) or pass on_missing='exclude'."
        )
    if excluded:
        logger.warning("Excluded %d of %d queries that have no relevant passage in the corpus.", len(excluded), len(ds.queries))
    if dropped:
        logger.warning("Ignored %d relevant ids that are not in the corpus.", dropped)
    if not qids:
        raise EvaluationError("No query of the dataset has a relevant passage in its corpus; nothing can be scored.")
    info = DatasetInfo(n_queries=len(qids), n_corpus=len(ds.corpus), query_source=ds.query_source, excluded=excluded)
    return qids, rels, info
