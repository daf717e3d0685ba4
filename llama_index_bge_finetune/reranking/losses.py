"""Cross-encoder losses by name, and the training tables each one reads.

- ``"listwise"`` (default): for each positive, a softmax over it and its query's mined negatives plus
  one in-batch negative (sentence-transformers' cross-encoder ``MultipleNegativesRankingLoss``). It
  compares candidates of the same query, as reranking does.
- ``"bce"``: binary cross-entropy on (query, passage, label) rows (what llama-index-finetuning trains).
- ``"listnet"`` / ``"lambda"``: listwise losses over each query's whole candidate list with its labels.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Sequence

from llama_index_bge_finetune.errors import TrainingError
from llama_index_bge_finetune.reranking.dataset import CrossEncoderFinetuningDatasetSample, group_by_query

logger = logging.getLogger(__name__)

CE_LOSS_NAMES = ("listwise", "bce", "listnet", "lambda")


def build_ce_loss(name: str, model: Any, in_batch_negatives: int = 1) -> Any:
    """The sentence-transformers cross-encoder loss for ``name`` (see :data:`CE_LOSS_NAMES`)."""
    from sentence_transformers.cross_encoder import losses

    if name == "listwise":
        return losses.MultipleNegativesRankingLoss(model, num_negatives=max(1, in_batch_negatives))
    if name == "bce":
        return losses.BinaryCrossEntropyLoss(model)
    if name == "listnet":
        return losses.ListNetLoss(model)
    if name == "lambda":
        return losses.LambdaLoss(model)
    raise TrainingError(f"Unknown cross-encoder loss {name!r}; choose one of {', '.join(CE_LOSS_NAMES)}, or pass a loss object.")


def training_rows(name: str, samples: Sequence[CrossEncoderFinetuningDatasetSample]) -> Dict[str, List[Any]]:
    """Columns of the training table the loss ``name`` reads (any loss object: the ``bce`` layout)."""
    if name == "listwise":
        return _tuples(samples)
    if name in ("listnet", "lambda"):
        groups = group_by_query(samples)
        return {"query": [q for q, _ in groups], "docs": [[s.context for s in g] for _, g in groups],
                "labels": [[float(s.score) for s in g] for _, g in groups]}
    return {"query": [s.query for s in samples], "passage": [s.context for s in samples],
            "label": [float(s.score) for s in samples]}


def _tuples(samples: Sequence[CrossEncoderFinetuningDatasetSample]) -> Dict[str, List[Any]]:
    """(query, positive, negative_1..n) rows: every query's negatives, cycled to the most common count."""
    groups = group_by_query(samples)
    per_query = [([s.context for s in g if s.score > 0.5], [s.context for s in g if s.score <= 0.5]) for _, g in groups]
    counts = sorted(len(n) for p, n in per_query if p and n)
    if not counts:
        raise TrainingError(
            "The listwise loss needs queries with at least one positive (score 1) and one negative (score 0); "
            "build data with samples_from_qa_dataset() (mined negatives) or pass loss='bce'."
        )
    n_neg = counts[len(counts) // 2]
    rows: Dict[str, List[Any]] = {"query": [], "positive": [], **{f"negative_{i + 1}": [] for i in range(n_neg)}}
    skipped = 0
    for (query, _), (pos, neg) in zip(groups, per_query):
        if not pos or not neg:
            skipped += 1
            continue
        for p in pos:
            rows["query"].append(query)
            rows["positive"].append(p)
            for i in range(n_neg):
                rows[f"negative_{i + 1}"].append(neg[i % len(neg)])
    if skipped:
        logger.warning("%d queries without both a positive and a negative are left out of listwise training.", skipped)
    return rows
