"""Hard negatives mined from the corpus with the base model, with a false-negative guard.

For each (query, positive) pair the miner ranks the whole corpus with the base model and picks
the highest-scoring passages that are (a) not relevant to the query, (b) ranked below the
``skip_top`` best non-relevant passages, (c) within the ``max_rank`` best, and (d) scoring at
least ``relative_margin`` below the positive (``score <= positive_score * (1 - relative_margin)``).
Rules (b) and (d) keep unlabelled true answers out of the negatives.

A pair with no qualifying passage gets an empty list here; it is never dropped (the engine gives
it a random non-relevant passage, see ``training.examples.training_table``).

Example::

    from sentence_transformers import SentenceTransformer
    from llama_index_bge_finetune.training.hard_negatives import HardNegativeMiner

    miner = HardNegativeMiner(num_negatives=1, skip_top=3, relative_margin=0.05)
    negatives = miner.mine(model, queries, corpus, relevant_docs, pairs=[("q1", "n1")])
    # negatives == [["n7"]] (or [[]] when nothing qualifies)
"""

from __future__ import annotations

import logging
import os
import random
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from llama_index_bge_finetune.encoding.backends import EncodeBackendSpec
from llama_index_bge_finetune.errors import TrainingError
from llama_index_bge_finetune.retrieval.corpus_cache import encode_cached
from llama_index_bge_finetune.retrieval.search import INDEX_KINDS, search
from llama_index_bge_finetune.training.window import read_at

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


class HardNegativeMiner:
    """Chooses hard negatives for (query, positive) pairs from a dataset's corpus.

    Args:
        num_negatives: negatives per pair (each becomes one more passage per training example).
        skip_top: how many of the best-ranked non-relevant passages to skip (likely unlabelled positives).
        max_rank: only passages within this many best non-relevant ones are candidates ("hard").
        relative_margin: a candidate must score at most ``positive_score * (1 - relative_margin)``.
        batch_size: encoding batch size.
        cache_dir: where corpus embeddings are kept between runs; ``None`` disables the cache.
        max_seq_length: rank passages by their first this many tokens (``None``: the model's limit).
            Encoding the corpus is most of mining's cost, and cost grows with length; a passage's
            opening says what it is about, and it is all of a negative that training sees when the
            engine cuts negatives to the same length.
        max_pool: rank at most this many passages: every pair's positive plus a seeded random sample
            of the rest (``None``: the whole corpus). Encoding is mining's cost; a sample of a corpus
            many times larger than the training pairs still holds passages close to each query.
        seed: seed of that sample.
        encode_backend: where the corpus is encoded: ``"local"`` (default) or ``"ray"`` (see
            :mod:`llama_index_bge_finetune.encoding`).
        index: the top-k search over the corpus: ``"auto"`` (exact; FAISS above
            :data:`~llama_index_bge_finetune.retrieval.search.NUMPY_MAX_PASSAGES` passages when
            installed), ``"exact"``, ``"flat"``, or the approximate ``"ivf"`` / ``"hnsw"`` (their
            recall against exact search is logged).
    """

    def __init__(
        self,
        num_negatives: int = 1,
        skip_top: int = 3,
        max_rank: int = 50,
        relative_margin: float = 0.05,
        batch_size: int = 64,
        cache_dir: Optional[PathLike] = None,
        max_seq_length: Optional[int] = None,
        max_pool: Optional[int] = None,
        seed: int = 0,
        encode_backend: EncodeBackendSpec = "local",
        index: str = "auto",
    ) -> None:
        if num_negatives < 1:
            raise TrainingError(f"num_negatives must be at least 1, got {num_negatives}; use hard_negatives=0 to turn mining off.")
        if skip_top < 0 or max_rank <= skip_top:
            raise TrainingError(
                f"Need 0 <= skip_top < max_rank, got skip_top={skip_top}, max_rank={max_rank}; "
                "for example skip_top=3, max_rank=50."
            )
        if max_pool is not None and max_pool < 2:
            raise TrainingError(f"max_pool must be at least 2 passages (or None for the whole corpus), got {max_pool}.")
        if not 0.0 <= relative_margin < 1.0:
            raise TrainingError(f"relative_margin must be in [0, 1), got {relative_margin}; 0.05 is a good value.")
        if index not in INDEX_KINDS:
            raise TrainingError(f"Unknown search index {index!r}; use one of {', '.join(INDEX_KINDS)}.")
        self.num_negatives = num_negatives
        self.skip_top = skip_top
        self.max_rank = max_rank
        self.relative_margin = relative_margin
        self.batch_size = batch_size
        self.cache_dir = cache_dir
        self.max_seq_length = max_seq_length
        self.max_pool = max_pool
        self.seed = seed
        self.encode_backend = encode_backend
        self.index = index

    def get_config_dict(self) -> Dict[str, float]:
        """The settings, for logs and the model card."""
        return {
            "num_negatives": self.num_negatives,
            "skip_top": self.skip_top,
            "max_rank": self.max_rank,
            "relative_margin": self.relative_margin,
            "max_seq_length": self.max_seq_length,
            "max_pool": self.max_pool,
            "index": self.index,
        }

    def mine(
        self,
        model: "SentenceTransformer",  # noqa: F821
        queries: Dict[str, str],
        corpus: Dict[str, str],
        relevant_docs: Dict[str, List[str]],
        pairs: Sequence[Tuple[str, str]],
        model_key: Optional[str] = None,
        query_prompt: Optional[str] = None,
        show_progress_bar: bool = False,
    ) -> List[List[str]]:
        """Negative passage ids for each ``(query id, positive id)`` pair, in order (possibly empty lists).

        The corpus vectors go through the corpus-embedding cache in ``cache_dir``, keyed by the
        model's fingerprint (weights, settings, mining window) and the passages. ``model_key`` is
        accepted for older callers and not used: the fingerprint names the model.
        """
        doc_ids = self._pool(list(corpus), pairs)
        if len(doc_ids) < 2:
            return [[] for _ in pairs]
        doc_index = {d: i for i, d in enumerate(doc_ids)}
        window = min(model.max_seq_length, self.max_seq_length) if self.max_seq_length else model.max_seq_length
        with read_at(model, window):
            doc_vecs = encode_cached(
                model, [corpus[d] for d in doc_ids], self.cache_dir,
                batch_size=self.batch_size, show_progress_bar=show_progress_bar, encode_backend=self.encode_backend,
            )
        qids = list(dict.fromkeys(q for q, _ in pairs))
        q_vecs = encode_cached(
            model, [queries[q] for q in qids], None, prompt=query_prompt,
            batch_size=self.batch_size, show_progress_bar=False,
        )
        q_row = {q: i for i, q in enumerate(qids)}
        depth = min(len(doc_ids), self.max_rank + max(len(v) for v in relevant_docs.values()) + 1)
        found = search(q_vecs, doc_vecs, depth, doc_ids, index=self.index, seed=self.seed)
        out: List[List[str]] = []
        for qid, pos in pairs:
            row = q_row[qid]
            score_of = dict(zip(found.indices[row].tolist(), found.scores[row].tolist()))
            relevant = {doc_index[d] for d in relevant_docs.get(qid, []) if d in doc_index}
            ranked = [c for c in found.indices[row].tolist() if c >= 0 and c not in relevant][self.skip_top : self.max_rank]
            positive = float(q_vecs[row] @ np.asarray(doc_vecs[doc_index[pos]], dtype=np.float32))
            ceiling = positive * (1.0 - self.relative_margin)
            chosen = [doc_ids[c] for c in ranked if score_of[c] <= ceiling][: self.num_negatives]
            out.append(chosen)
        logger.info(
            "Hard negatives: %d of %d pairs got at least one that passes the guard (ranked %d of %d passages, %s).",
            sum(1 for c in out if c), len(out), len(doc_ids), len(corpus), found.note(),
        )
        return out

    def _pool(self, doc_ids: List[str], pairs: Sequence[Tuple[str, str]]) -> List[str]:
        """The passages to rank: all of them, or the positives plus a seeded sample (corpus order kept)."""
        if self.max_pool is None or len(doc_ids) <= self.max_pool:
            return doc_ids
        positives = {pos for _, pos in pairs}
        rest = [d for d in doc_ids if d not in positives]
        keep = positives | set(random.Random(self.seed).sample(rest, max(0, min(len(rest), self.max_pool - len(positives)))))
        return [d for d in doc_ids if d in keep]
