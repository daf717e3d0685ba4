"""Training rows from a QA dataset: (anchor, positive[, negative...]) tables for the trainer.

Pairs that got hard negatives and pairs that did not go into two tables, so every pair trains:
the trainer draws each batch from one table (in proportion to their sizes), and the
no-duplicates sampler keeps any passage from appearing twice in a batch, so a passage is never
its own in-batch negative.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset


def query_positive_pairs(dataset: EmbeddingQAFinetuneDataset, use_all_docs: bool) -> List[Tuple[str, str]]:
    """(query id, passage id) pairs: the first relevant passage per query, or all of them with ``use_all_docs``."""
    pairs: List[Tuple[str, str]] = []
    for qid in dataset.queries:
        docs = dataset.relevant_docs.get(qid) or []
        for doc in docs if use_all_docs else docs[:1]:
            pairs.append((qid, doc))
    return pairs


def training_tables(
    dataset: EmbeddingQAFinetuneDataset,
    pairs: Sequence[Tuple[str, str]],
    negatives: Optional[Sequence[Sequence[str]]] = None,
) -> Dict[str, "datasets.Dataset"]:  # noqa: F821
    """``{"pairs": ..., "with_negatives": ...}`` tables (empty ones left out) for the trainer.

    Rows with hard negatives all carry the same number of them (the shortest list found), as the
    loss needs a fixed number of columns.
    """
    from datasets import Dataset

    negatives = negatives or [[] for _ in pairs]
    width = min((len(n) for n in negatives if n), default=0)
    plain: Dict[str, List[str]] = {"anchor": [], "positive": []}
    hard: Dict[str, List[str]] = {"anchor": [], "positive": [], **{f"negative_{i + 1}": [] for i in range(width)}}
    for (qid, doc), negs in zip(pairs, negatives):
        target = hard if width and len(negs) >= width else plain
        target["anchor"].append(dataset.queries[qid])
        target["positive"].append(dataset.corpus[doc])
        if target is hard:
            for i in range(width):
                target[f"negative_{i + 1}"].append(dataset.corpus[negs[i]])
    tables = {}
    if plain["anchor"]:
        tables["pairs"] = Dataset.from_dict(plain)
    if hard["anchor"]:
        tables["with_negatives"] = Dataset.from_dict(hard)
    return tables
