"""Training rows from a QA dataset: one (anchor, positive[, negative...]) table for the trainer.

Every row carries the same number of negatives: a pair for which the miner found no hard negative
that passes its false-negative guard gets a random passage that is not relevant to its query. One
table means every batch is full (two tables of different widths made batches of a few rows, with
few in-batch negatives and poor throughput). Each row also gets its batch keys (its question and
the full text of each of its passages) for ``training.sampler.DistinctPassageBatchSampler``, which
keeps any passage from appearing twice in a batch, so a passage is never its own in-batch negative,
even when a negative is cut to its first tokens.
"""

from __future__ import annotations

import functools
import logging
import random
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.errors import DatasetError

logger = logging.getLogger(__name__)


def query_positive_pairs(dataset: EmbeddingQAFinetuneDataset, use_all_docs: bool) -> List[Tuple[str, str]]:
    """(query id, passage id) pairs: the first relevant passage per query, or all of them with ``use_all_docs``."""
    pairs: List[Tuple[str, str]] = []
    for qid in dataset.queries:
        docs = dataset.relevant_docs.get(qid) or []
        for doc in docs if use_all_docs else docs[:1]:
            pairs.append((qid, doc))
    return pairs


class TrainingTable(NamedTuple):
    """The trainer's table, how many pairs carry mined (not random) negatives, and each row's batch keys.

    A key is a number standing for a question text or a passage's full text (numbers, so that the
    keys the trainer keeps in its arguments, and pickles into every checkpoint, stay small).
    """

    table: "datasets.Dataset"  # noqa: F821
    mined: int
    keys: List[Tuple[int, ...]]


def training_table(
    dataset: EmbeddingQAFinetuneDataset,
    pairs: Sequence[Tuple[str, str]],
    negatives: Optional[Sequence[Sequence[str]]] = None,
    seed: int = 0,
    negative_max_tokens: Optional[int] = None,
    tokenizer: Optional[Any] = None,
) -> TrainingTable:
    """The training table, how many pairs carry mined (not random) negatives, and the rows' batch keys.

    Columns: ``anchor``, ``positive`` and ``negative_1..n`` where n is the longest list in
    ``negatives`` (none without mining). With ``negative_max_tokens`` and a fast ``tokenizer``,
    negatives are cut to their first that many tokens.
    """
    from datasets import Dataset

    width = max((len(n) for n in negatives), default=0) if negatives else 0
    rows: Dict[str, List[str]] = {"anchor": [], "positive": [], **{f"negative_{i + 1}": [] for i in range(width)}}
    rng = random.Random(seed)
    doc_ids = list(dataset.corpus)
    cut = _prefix_cutter(tokenizer, negative_max_tokens)
    mined = 0
    keys: List[Tuple[int, ...]] = []
    numbers: Dict[Tuple[str, str], int] = {}

    def key(kind: str, text: str) -> int:
        return numbers.setdefault((kind, text), len(numbers))

    for i, (qid, doc) in enumerate(pairs):
        rows["anchor"].append(dataset.queries[qid])
        rows["positive"].append(dataset.corpus[doc])
        chosen = list(negatives[i])[:width] if width else []
        mined += bool(chosen)
        if len(chosen) < width:
            chosen += random_negatives(rng, doc_ids, set(dataset.relevant_docs.get(qid) or ()) | {doc} | set(chosen),
                                        width - len(chosen))
        for j, neg in enumerate(chosen):
            rows[f"negative_{j + 1}"].append(cut(dataset.corpus[neg]))
        keys.append((key("query", dataset.queries[qid]), *(key("passage", dataset.corpus[d]) for d in [doc, *chosen])))
    if width and mined < len(pairs):
        logger.info("%d of %d pairs got no mined hard negative and train with a random passage as their negative.",
                    len(pairs) - mined, len(pairs))
    return TrainingTable(Dataset.from_dict(rows), mined, keys)


def random_negatives(rng: random.Random, doc_ids: List[str], exclude: set, count: int) -> List[str]:
    """``count`` passage ids outside ``exclude``, drawn at random (repeats allowed if the corpus is tiny).

    The fallback for a query whose mining found no negative that passes the false-negative guard
    (the embedding engine's table and the reranker's samples both use it).
    """
    pool = [d for d in doc_ids if d not in exclude] if len(doc_ids) <= 4 * (len(exclude) + count) else None
    out: List[str] = []
    while len(out) < count:
        if pool is not None:
            if not pool:
                raise DatasetError(
                    "Every passage of the training corpus is relevant to some question, so no negative can be drawn; "
                    "add passages to the corpus or use hard_negatives=0."
                )
            out.append(rng.choice(pool))
            continue
        candidate = rng.choice(doc_ids)
        if candidate not in exclude and candidate not in out:
            out.append(candidate)
    return out


def _prefix_cutter(tokenizer: Optional[Any], max_tokens: Optional[int]) -> Callable[[str], str]:
    """A function that keeps a text's first ``max_tokens`` tokens (by character offsets: the text stays verbatim)."""
    if not max_tokens or tokenizer is None or not getattr(tokenizer, "is_fast", False):
        return lambda text: text

    @functools.lru_cache(maxsize=None)
    def cut(text: str) -> str:
        enc = tokenizer(text, add_special_tokens=False, truncation=True, max_length=max_tokens,
                        return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        return text[: offsets[-1][1]] if offsets else text

    return cut
