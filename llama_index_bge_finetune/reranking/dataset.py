"""Cross-encoder training data: (query, passage, score) samples, built from question/passage datasets.

:class:`CrossEncoderFinetuningDatasetSample` has the fields of llama-index-finetuning's class of the
same name (``query``, ``context``, ``score``), so lists of either work with both engines. Our samples
may also carry ``first_stage_score`` (the embedding model's similarity), which lets the engine choose
how much to trust the reranker against the first stage on validation data.

:func:`samples_from_qa_dataset` turns an ``EmbeddingQAFinetuneDataset`` (the JSON the embedding
engine trains on) into samples without another LLM call: its ``relevant_docs`` are the positives and
negatives are mined from its corpus with the (fine-tuned) embedding model, behind the same
false-negative guard as the embedding engine's miner.

Example::

    from llama_index_bge_finetune import EmbeddingQAFinetuneDataset
    from llama_index_bge_finetune.reranking import samples_from_qa_dataset, save_samples

    train = EmbeddingQAFinetuneDataset.from_json("train_dataset.json")
    samples = samples_from_qa_dataset(train, "exp_finetune", negatives=7)
    save_samples(samples, "ce_train.jsonl")
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.encoding.backends import EncodeBackendSpec
from llama_index_bge_finetune.errors import DatasetError
from llama_index_bge_finetune.retrieval.corpus_cache import encode_cached

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


@dataclass
class CrossEncoderFinetuningDatasetSample:
    """One judged (query, passage) pair: ``score`` 1 relevant, 0 not (grades in between allowed).

    Args:
        query: the question.
        context: the passage text.
        score: relevance label.
        first_stage_score: optional similarity the first-stage retriever gave the pair (higher = better).
    """

    query: str
    context: str
    score: float
    first_stage_score: Optional[float] = None

    @classmethod
    def coerce(cls, obj: Any) -> "CrossEncoderFinetuningDatasetSample":
        """Ours, llama-index-finetuning's sample, a dict or a ``(query, context, score)`` tuple."""
        if isinstance(obj, cls):
            return obj
        if isinstance(obj, dict):
            data = obj
        elif isinstance(obj, (tuple, list)) and len(obj) in (3, 4):
            data = dict(zip(("query", "context", "score", "first_stage_score"), obj))
        elif all(hasattr(obj, f) for f in ("query", "context", "score")):
            data = {"query": obj.query, "context": obj.context, "score": obj.score,
                    "first_stage_score": getattr(obj, "first_stage_score", None)}
        else:
            raise DatasetError(
                f"Cannot read a cross-encoder sample from a {type(obj).__name__}; pass "
                "CrossEncoderFinetuningDatasetSample(query=..., context=..., score=0 or 1) objects."
            )
        try:
            score = float(data["score"])
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"A cross-encoder sample needs a numeric score (1 relevant, 0 not), got {data!r}.") from exc
        query, context = data.get("query"), data.get("context")
        if not isinstance(query, str) or not isinstance(context, str) or not query.strip() or not context.strip():
            raise DatasetError(f"A cross-encoder sample needs non-empty query and context strings, got {data!r}.")
        fs = data.get("first_stage_score")
        return cls(query=query, context=context, score=score, first_stage_score=None if fs is None else float(fs))


def coerce_samples(samples: Any, what: str = "dataset") -> List[CrossEncoderFinetuningDatasetSample]:
    """A list of samples from any accepted form: a list (ours or the peer's samples, dicts) or a JSONL path."""
    if isinstance(samples, (str, os.PathLike)):
        return load_samples(samples)
    if samples is None or isinstance(samples, (bytes, dict)) or not hasattr(samples, "__iter__"):
        raise DatasetError(f"The cross-encoder {what} must be a list of CrossEncoderFinetuningDatasetSample, "
                           f"got {type(samples).__name__}.")
    return [CrossEncoderFinetuningDatasetSample.coerce(s) for s in samples]


def group_by_query(
    samples: Sequence[CrossEncoderFinetuningDatasetSample],
) -> List[Tuple[str, List[CrossEncoderFinetuningDatasetSample]]]:
    """Samples grouped per query, queries and passages in first-seen order (= first-stage rank order)."""
    groups: Dict[str, List[CrossEncoderFinetuningDatasetSample]] = {}
    for s in samples:
        groups.setdefault(s.query, []).append(s)
    return list(groups.items())


def save_samples(samples: Iterable[CrossEncoderFinetuningDatasetSample], path: PathLike) -> None:
    """Write samples as JSONL (one object per line), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps(asdict(CrossEncoderFinetuningDatasetSample.coerce(s)), ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def load_samples(path: PathLike) -> List[CrossEncoderFinetuningDatasetSample]:
    """Read samples written by :func:`save_samples` (or any JSONL of ``query``/``context``/``score`` objects)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"No cross-encoder dataset at {path}; build one with samples_from_qa_dataset() and save_samples().")
    out = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                out.append(CrossEncoderFinetuningDatasetSample.coerce(json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{lineno} is not JSON ({exc.msg}).") from exc
    return out


def samples_from_qa_dataset(
    dataset: Any,
    model: Any,
    negatives: int = 7,
    *,
    skip_top: int = 3,
    max_rank: int = 30,
    relative_margin: float = 0.05,
    use_all_docs: bool = True,
    query_prompt: Any = "saved",
    cache_dir: Optional[PathLike] = None,
    batch_size: int = 64,
    encode_backend: EncodeBackendSpec = "local",
    seed: int = 0,
) -> List[CrossEncoderFinetuningDatasetSample]:
    """Cross-encoder samples from a question/passage dataset, negatives mined with an embedding model.

    For every query: its relevant passages (score 1) and ``negatives`` passages (score 0) that the
    embedding model ranks high but that are not labelled relevant, skipping the ``skip_top`` best
    of them and any scoring within ``relative_margin`` of the positive (likely unlabelled answers).
    This is the embedding engine's :class:`~llama_index_bge_finetune.training.hard_negatives.HardNegativeMiner`.
    A query for which nothing passes the guard (a small corpus) gets one random passage that is not
    relevant to it, as the embedding engine does, with one warning giving the count; no query is
    left without a negative. Each sample carries the embedding model's similarity as ``first_stage_score``.

    Args:
        dataset: an ``EmbeddingQAFinetuneDataset`` (ours or llama-index-finetuning's), a dict or a JSON path.
        model: the first-stage embedding model: a folder, a hub id or a ``SentenceTransformer``; use
            the fine-tuned one, whose mistakes are the ones the reranker should fix.
        negatives: negatives per query.
        skip_top, max_rank, relative_margin: the false-negative guard (see ``HardNegativeMiner``).
        use_all_docs: every relevant passage is a positive (else only the first).
        query_prompt: instruction prepended to queries for the embedding model; ``"saved"`` uses the
            model's saved ``query`` prompt (ours saves the BGE instruction), ``None`` none.
        cache_dir: corpus embeddings are cached here (the embedding engine's cache).
        batch_size: encoding batch size.
        encode_backend: where the corpus is encoded: ``"local"`` (default) or ``"ray"`` (see
            :mod:`llama_index_bge_finetune.encoding`).
        seed: seed of the random negatives.
    """
    from llama_index_bge_finetune.training.hard_negatives import HardNegativeMiner

    ds = EmbeddingQAFinetuneDataset.coerce(dataset).validate_or_raise("question/passage dataset")
    if negatives < 1:
        raise DatasetError(f"negatives must be at least 1, got {negatives}.")
    st = _sentence_transformer(model)
    if query_prompt == "saved":
        query_prompt = (getattr(st, "prompts", None) or {}).get("query") or None
    miner = HardNegativeMiner(negatives, skip_top, max_rank, relative_margin, batch_size=batch_size, cache_dir=cache_dir,
                              encode_backend=encode_backend)
    pairs = [(q, docs[0]) for q, docs in ds.relevant_docs.items() if q in ds.queries and docs]
    mined = miner.mine(st, ds.queries, ds.corpus, ds.relevant_docs, pairs, query_prompt=query_prompt)
    mined = _fill_empty(ds, pairs, mined, seed)
    scores = _similarities(st, ds, [(q, d) for (q, _), negs in zip(pairs, mined) for d in _positives(ds, q, use_all_docs) + negs],
                           query_prompt, batch_size, cache_dir, encode_backend)
    out: List[CrossEncoderFinetuningDatasetSample] = []
    for (qid, _), negs in zip(pairs, mined):
        rows = [(d, 1.0) for d in _positives(ds, qid, use_all_docs)] + [(d, 0.0) for d in negs]
        rows.sort(key=lambda r: -scores[(qid, r[0])])  # first-stage order, as a retriever would list them
        for doc, label in rows:
            out.append(CrossEncoderFinetuningDatasetSample(ds.queries[qid], ds.corpus[doc], label, scores[(qid, doc)]))
    n_neg = sum(1 for s in out if s.score == 0)
    logger.info("Cross-encoder data: %d samples for %d queries (%d positives, %d negatives).",
                len(out), len(pairs), len(out) - n_neg, n_neg)
    return out


def _fill_empty(ds: EmbeddingQAFinetuneDataset, pairs: Sequence[Tuple[str, str]], mined: List[List[str]],
                seed: int) -> List[List[str]]:
    """Mined negatives, with one seeded random passage (not relevant to the query) where mining found none."""
    from llama_index_bge_finetune.training.examples import random_negatives

    empty = [i for i, negs in enumerate(mined) if not negs]
    if not empty:
        return mined
    rng = random.Random(seed)
    doc_ids = list(ds.corpus)
    out = list(mined)
    for i in empty:
        qid = pairs[i][0]
        out[i] = random_negatives(rng, doc_ids, set(ds.relevant_docs.get(qid) or ()), 1)
    logger.warning("%d of %d queries got no mined negative that passes the false-negative guard: each trains with "
                   "one random passage as its negative (a larger corpus, or a looser relative_margin or skip_top, "
                   "gives harder ones).", len(empty), len(pairs))
    return out


def _positives(ds: EmbeddingQAFinetuneDataset, qid: str, use_all_docs: bool) -> List[str]:
    docs = [d for d in ds.relevant_docs[qid] if d in ds.corpus]
    return docs if use_all_docs else docs[:1]


def _sentence_transformer(model: Any) -> Any:
    """The ``SentenceTransformer`` itself, or loaded on CPU from a folder or hub id."""
    if isinstance(model, (str, os.PathLike)):
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(os.fspath(model), device="cpu")
    if hasattr(model, "encode") and hasattr(model, "max_seq_length"):
        return model  # cached like a loaded one: the cache key is a fingerprint of the weights
    raise DatasetError(f"model must be a sentence-transformers model or its folder/hub id, got {type(model).__name__}.")


def _similarities(st: Any, ds: EmbeddingQAFinetuneDataset, pairs: Sequence[Tuple[str, str]], query_prompt: Optional[str],
                  batch_size: int, cache_dir: Optional[PathLike],
                  encode_backend: EncodeBackendSpec) -> Dict[Tuple[str, str], float]:
    """Cosine similarity of each (query id, passage id) pair under the embedding model (corpus vectors cached)."""
    doc_ids = list(ds.corpus)
    row = {d: i for i, d in enumerate(doc_ids)}
    docs = encode_cached(st, [ds.corpus[d] for d in doc_ids], cache_dir, batch_size=batch_size,
                         encode_backend=encode_backend)
    qids = list(dict.fromkeys(q for q, _ in pairs))
    qrow = {q: i for i, q in enumerate(qids)}
    qs = encode_cached(st, [ds.queries[q] for q in qids], None, prompt=query_prompt, batch_size=batch_size)
    return {(q, d): float(qs[qrow[q]] @ docs[row[d]]) for q, d in pairs}


def candidates_from_qa_dataset(
    dataset: Any,
    model: Any,
    top_k: int = 20,
    *,
    query_prompt: Any = "saved",
    cache_dir: Optional[PathLike] = None,
    batch_size: int = 64,
    encode_backend: EncodeBackendSpec = "local",
) -> List[CrossEncoderFinetuningDatasetSample]:
    """Validation samples: each query's first-stage top ``top_k`` as retrieved, labelled from ``relevant_docs``.

    Unlike :func:`samples_from_qa_dataset` (whose mined negatives score below the positive by
    construction, so the first stage ranks them perfectly), these are the lists a reranker really
    reorders, so the engine's blend guard compares reranker and first stage fairly on them. Use
    questions the first stage was not trained on. ``encode_backend="ray"`` encodes the corpus on Ray.
    """
    from llama_index_bge_finetune.retrieval.search import search

    ds = EmbeddingQAFinetuneDataset.coerce(dataset).validate_or_raise("question/passage dataset")
    st = _sentence_transformer(model)
    if query_prompt == "saved":
        query_prompt = (getattr(st, "prompts", None) or {}).get("query") or None
    doc_ids = list(ds.corpus)
    docs = encode_cached(st, [ds.corpus[d] for d in doc_ids], cache_dir, batch_size=batch_size,
                         encode_backend=encode_backend)
    qids = [q for q in ds.queries if ds.relevant_docs.get(q)]
    qs = encode_cached(st, [ds.queries[q] for q in qids], None, prompt=query_prompt, batch_size=batch_size)
    found = search(qs, docs, top_k, doc_ids)  # numpy exact on small corpora, FAISS exact on large ones
    idx, scores = found.indices, found.scores
    out: List[CrossEncoderFinetuningDatasetSample] = []
    for row, q in enumerate(qids):
        relevant = set(ds.relevant_docs[q])
        for i, s in zip(idx[row], scores[row]):
            d = doc_ids[i]
            out.append(CrossEncoderFinetuningDatasetSample(ds.queries[q], ds.corpus[d], 1.0 if d in relevant else 0.0, float(s)))
    return out
