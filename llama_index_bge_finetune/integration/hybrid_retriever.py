"""Ship the retrieval pipeline chosen on held-out questions (dense, BM25 or a hybrid) as a LlamaIndex retriever.

The evaluation chooses between dense retrieval, BM25 and a fusion of the two, and saves the choice
as ``retrieval.json`` beside the fine-tuned model: ``{"version": 1, "pipeline": "dense" | "bm25" |
"hybrid", "fusion": {"method", "weight", "rrf_k"} or null, "bm25": {BM25 settings},
"model_fingerprint": ..., "corpus_digest": ..., ...}``. :class:`HybridRetriever` runs that choice
over an existing ``VectorStoreIndex``::

    from llama_index_bge_finetune import HybridRetriever, from_finetuned, load_index

    index = load_index("storage", embed_model=from_finetuned("exp/model"))
    retriever = HybridRetriever.from_index(index, pipeline="exp/model")   # reads exp/model/retrieval.json
    query_engine = retriever.as_query_engine(llm=llm)     # = RetrieverQueryEngine.from_args(retriever, llm=llm)
    print(query_engine.query("When is the quarterly tax payment due?"))

How it retrieves: the index's own dense retriever returns its ``candidate_k`` best nodes (default
100), a BM25 index over the index's nodes (:class:`~llama_index_bge_finetune.retrieval.bm25.BM25Index`,
the node text without metadata, as the evaluation scored it) returns its ``candidate_k`` best, and
:func:`~llama_index_bge_finetune.retrieval.fusion.fuse_top_k` fuses the two lists with the chosen
normalisation and weight; the ``similarity_top_k`` best come back as ``NodeWithScore`` with the fused
score. A ``"dense"`` pipeline is the dense retriever alone and a ``"bm25"`` pipeline BM25 alone, each
with its own scores. Fusing two top-100 lists approximates the whole-corpus fusion the evaluation
measured: a node outside one list gets that list's lowest normalised score; with ``candidate_k`` at
least the corpus size the two are identical.

Where the BM25 index lives: a folder (``bm25_dir``, else ``<persist_dir>/bm25`` for an index loaded
with :func:`~llama_index_bge_finetune.integration.guard.load_index` from a folder or given
``persist_dir``); without one it is built in memory at every construction. The folder records a
digest of the node ids and texts and a checksum of every file: it is loaded when the nodes are
unchanged, and rebuilt (with a logged warning) when they changed, when its settings differ, or when a
file is corrupt or missing, never half-read. The nodes come from the docstore, or, for Qdrant and
Chroma (which keep the node text in the collection), from the collection itself, read page by page.

Two checks, as for stale vectors:

- The pipeline's ``model_fingerprint`` must be the model that made the index's vectors (the one
  :func:`~llama_index_bge_finetune.integration.guard.record_embed_model` recorded, else the index's
  ``embed_model``): a pipeline chosen for another model raises :class:`StalePipelineError`, because
  the fusion weight and even the choice of dense over BM25 hold only for the model they were measured
  with. The fix: re-embed the index with that model, or choose the pipeline again for this one.
- The pipeline's ``corpus_digest`` (:func:`~llama_index_bge_finetune.retrieval.bm25.text_digest` of
  the evaluation corpus's ids and texts) is compared with the index's nodes, and a difference is only
  logged as a warning: an app's corpus legitimately differs from the corpus the pipeline was chosen
  on (it grows, or the evaluation used a sample), and the choice usually carries over; the warning
  says the weight was chosen on another corpus so that a large change can be re-evaluated.

Qdrant's own hybrid search
--------------------------

Qdrant can fuse server-side: ``query_points(prefetch=[dense, sparse], query=FusionQuery(fusion=...))``
with ``Fusion.RRF`` or ``Fusion.DBSF`` (distribution-based score fusion), and in qdrant-client 1.20
also ``RrfQuery(rrf=Rrf(k=..., weights=[...]))``. None of these computes the fused ranking chosen
here, so this module fuses client-side and uses Qdrant only for the dense search. As qdrant-client
1.20's local mode computes them (``qdrant_client/hybrid/fusion.py``):

- DBSF min-max scales each prefetch's scores against mean -/+ 3 standard deviations, like our
  ``"dist"`` method, but with the sample standard deviation (n - 1, ours: n), without weights (the
  prefetches are summed with equal weight, ours ``(1 - w)`` and ``w``), and a point missing from one
  prefetch adds 0 from it (ours: that list's lowest normalised score). A single result or equal
  scores become 0.5 (ours: 0).
- RRF scores position ``p`` (0-based) as ``1 / ((p + 1) / weight + k - 1)`` with ``k = 2`` by
  default: with weight 1 that is ours, ``1 / (rrf_k + rank)``, for ``k = rrf_k + 1``; but its weight
  divides the rank where ours scales the term, tied scores keep their arrival order (ours share their
  average rank), and a point missing from one prefetch adds 0 (ours: that list's lowest RRF term).
  Equal weights there and ``w = 0.5`` here rank alike only when both lists hold the same points
  without ties.
- Its sparse side would be whatever sparse vectors the collection holds (e.g. fastembed's
  ``Qdrant/bm25``), not this package's BM25 (bm25s with the evaluated tokeniser, stemmer, ``k1``, ``b``).

So the store's fusion could match ours exactly only in that corner (RRF with ``k = rrf_k + 1``,
``w = 0.5``, every candidate in both lists, no ties, and sparse vectors that rank as our BM25 does),
never for DBSF or another weight. The chosen weight was measured on our fusion, and shipping Qdrant's
would ship an unmeasured ranking, so this module always fuses client-side.
``llama-index-vector-stores-qdrant``'s own ``enable_hybrid=True`` fuses client-side too (relative
score fusion by default), with the same caveats. Use either only after evaluating it as a pipeline of its own.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from llama_index.core.callbacks import CallbackManager
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle

from llama_index_bge_finetune.errors import IntegrationError, MissingFilesError, StalePipelineError
from llama_index_bge_finetune.integration.fingerprint import fingerprint_embed_model
from llama_index_bge_finetune.integration.guard import check_embed_model, persisted_at, recorded_embed_model
from llama_index_bge_finetune.integration.store_nodes import node_source
from llama_index_bge_finetune.retrieval.bm25 import BM25Index, BM25Settings, text_digest
from llama_index_bge_finetune.retrieval.fusion import FusionSpec, fuse_top_k

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
NodeLookup = Callable[[List[str]], List[BaseNode]]

#: The pipelines a ``retrieval.json`` may choose.
PIPELINES: Tuple[str, ...] = ("dense", "bm25", "hybrid")
#: The file the evaluation writes beside the model.
PIPELINE_FILE = "retrieval.json"
#: The BM25 folder's name inside a persist folder.
BM25_FOLDER = "bm25"
#: Candidates each retriever hands to the fusion: enough that the fused top 10 rarely differs from a
#: whole-corpus fusion, and cheap (two top-100 lists fuse in microseconds).
DEFAULT_CANDIDATE_K = 100
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class _Pipeline:
    """The keys of a ``retrieval.json`` this module uses, read and checked."""

    name: str
    fusion: Optional[FusionSpec]
    bm25: BM25Settings
    model_fingerprint: Optional[str]
    corpus_digest: Optional[str]
    source: str


def _read_pipeline(pipeline: Any) -> _Pipeline:
    """A pipeline from a dict, an object with ``to_dict()``, a ``retrieval.json`` path or a folder holding one."""
    source = "the pipeline given"
    if hasattr(pipeline, "to_dict") and not isinstance(pipeline, Mapping):
        pipeline = pipeline.to_dict()
    if isinstance(pipeline, (str, os.PathLike)):
        path = Path(pipeline)
        path = path / PIPELINE_FILE if path.is_dir() else path
        if not path.is_file():
            raise MissingFilesError(
                f"No retrieval pipeline at {path}: pass the model folder whose evaluation wrote {PIPELINE_FILE}, "
                f"the path of a {PIPELINE_FILE}, or a dict such as {{'pipeline': 'dense'}}.")
        try:
            pipeline = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IntegrationError(f"{path} is not a readable retrieval pipeline ({exc}); choose the pipeline "
                                   "again to rewrite it.") from exc
        source = str(path)
    if not isinstance(pipeline, Mapping):
        raise IntegrationError(f"A retrieval pipeline is a dict, a {PIPELINE_FILE} path or a model folder "
                               f"holding one; got a {type(pipeline).__name__}.")
    return _parse_pipeline(pipeline, source)


def _parse_pipeline(data: Mapping[str, Any], source: str) -> _Pipeline:
    version = data.get("version", _FORMAT_VERSION)
    if version != _FORMAT_VERSION:
        raise IntegrationError(f"{source} is a version-{version} retrieval pipeline; this package reads version "
                               f"{_FORMAT_VERSION}. Upgrade llama-index-bge-finetune, or choose the pipeline again.")
    name = data.get("pipeline")
    if name not in PIPELINES:
        raise IntegrationError(f"{source} names pipeline {name!r}; it must be one of {', '.join(PIPELINES)}.")
    fusion = data.get("fusion")
    if name == "hybrid" and not fusion:
        raise IntegrationError(f"{source} chooses a hybrid but gives no fusion: add "
                               "\"fusion\": {\"method\": ..., \"weight\": ...} or choose the pipeline again.")
    try:
        spec = FusionSpec.from_dict(fusion) if name == "hybrid" else None
        settings = BM25Settings.from_dict(data.get("bm25") or {})
    except (TypeError, ValueError) as exc:
        raise IntegrationError(f"{source} holds invalid settings: {exc}") from exc
    fingerprint = data.get("model_fingerprint")
    if isinstance(fingerprint, Mapping):  # an EmbedModelFingerprint.to_dict()
        fingerprint = fingerprint.get("digest")
    return _Pipeline(name, spec, settings, str(fingerprint) if fingerprint else None,
                     data.get("corpus_digest") or None, source)


def _digest_part(fingerprint: str) -> str:
    want = fingerprint.strip().lower()
    return want[len("sha256:"):] if want.startswith("sha256:") else want


def _same_model(expected: str, digest: str) -> bool:
    """True when ``expected`` (a digest, ``"sha256:<digest>"``, or its first 12+ hex digits) names ``digest``."""
    want = _digest_part(expected)
    return want == digest or (len(want) >= 12 and digest.startswith(want))


def _check_pipeline_model(index: Any, pipeline: _Pipeline) -> None:
    """Refuse a pipeline chosen for another model than the one that made ``index``'s vectors."""
    if pipeline.model_fingerprint is None:
        logger.warning("%s records no model_fingerprint, so whether it was chosen for this index's model "
                       "cannot be checked.", pipeline.source)
        return
    recorded = recorded_embed_model(index)
    current = fingerprint_embed_model(index._embed_model)
    if recorded is not None and not recorded.same_vectors_as(current):
        check_embed_model(index)  # raises StaleVectorsError: the query model did not make the vectors
    vectors = recorded or current
    if _same_model(pipeline.model_fingerprint, vectors.digest):
        return
    raise StalePipelineError(
        f"The retrieval pipeline in {pipeline.source} ({_label(pipeline)}) was chosen for the model with weights "
        f"sha256 {_digest_part(pipeline.model_fingerprint)[:12]}, but index {index.index_id} holds vectors made by "
        f"{vectors.describe()}; the choice and its fusion weight were measured for the other model's scores. "
        "Re-embed the index with the model the pipeline was chosen for (reembed_index(index, model_dir), then "
        "load it with that model), or choose the pipeline again for this model.")


def _label(pipeline: _Pipeline) -> str:
    return f"hybrid {pipeline.fusion.label}" if pipeline.fusion is not None else pipeline.name


def _check_corpus(pipeline: _Pipeline, digests: Sequence[str], n_nodes: int) -> None:
    """Warn (never fail) when the pipeline was chosen on other texts than the index's nodes."""
    if pipeline.corpus_digest is None or pipeline.corpus_digest in digests:
        return
    logger.warning(
        "The retrieval pipeline in %s (%s) was chosen on another corpus than this index's %d nodes (corpus "
        "digest %s, these nodes %s): its fusion weight was measured there. That is expected when the app's "
        "corpus differs from the evaluation corpus; if it differs a lot, choose the pipeline again on "
        "questions about this corpus.", pipeline.source, _label(pipeline), n_nodes,
        pipeline.corpus_digest[:19], digests[0][:19])


def _corpus(nodes: Sequence[BaseNode], where: str) -> Tuple[List[str], List[str], Tuple[str, str]]:
    """Ids and texts sorted by id (a stable BM25 folder), and the digests in store order and in id order."""
    ids = [n.node_id for n in nodes]
    texts = [n.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
    if not any(t.strip() for t in texts):
        raise IntegrationError(
            f"{where} keeps no node text ({len(nodes)} nodes, all without text), so BM25 has nothing to index. "
            "Store the node text in the vector store (LlamaIndex's QdrantVectorStore and ChromaVectorStore keep "
            "it unless it was stripped), or pass the nodes the index was built from: "
            "HybridRetriever.from_index(index, pipeline, nodes=nodes).")
    empty = sum(1 for t in texts if not t.strip())
    if empty:
        logger.warning("%d of %d nodes in %s have no text; BM25 cannot find them.", empty, len(nodes), where)
    order = sorted(range(len(ids)), key=ids.__getitem__)
    sorted_ids, sorted_texts = [ids[i] for i in order], [texts[i] for i in order]
    return sorted_ids, sorted_texts, (text_digest(texts, ids), text_digest(sorted_texts, sorted_ids))


def _bm25_folder(index: Any, bm25_dir: Optional[PathLike], persist_dir: Optional[PathLike]) -> Optional[Path]:
    if bm25_dir is not None:
        return Path(bm25_dir)
    root = persist_dir if persist_dir is not None else persisted_at(index)
    return Path(root) / BM25_FOLDER if root is not None else None


def _bm25_index(ids: List[str], texts: List[str], settings: BM25Settings, folder: Optional[Path]) -> BM25Index:
    if folder is None:
        logger.info("Building the BM25 index of %d nodes in memory (pass bm25_dir= or persist_dir= to keep it "
                    "on disk and skip this next time).", len(ids))
        return BM25Index.build(texts, ids, settings)
    index = BM25Index.load_or_build(folder, texts, ids, settings)
    logger.info("BM25 index of %d nodes ready at %s.", index.n_docs, folder)
    return index


class HybridRetriever(BaseRetriever):
    """The chosen retrieval pipeline over a LlamaIndex index: dense, BM25, or their fusion.

    Build it with :meth:`from_index` (or :meth:`from_persist_dir`); the constructor takes parts
    that are already built.

    Args:
        dense_retriever: the index's dense retriever (``index.as_retriever()``); its ``similarity_top_k``
            is set to ``candidate_k`` (``similarity_top_k`` for a ``"dense"`` pipeline). ``None`` for ``"bm25"``.
        bm25_index: a BM25 index over the same nodes, keyed by node id. ``None`` for ``"dense"``.
        node_lookup: ``node_lookup(ids)`` returns the nodes of ``ids`` (any order), for nodes that only
            BM25 found. ``None`` for ``"dense"``.
        pipeline: ``"dense"``, ``"bm25"`` or ``"hybrid"``.
        fusion: how a ``"hybrid"`` fuses (normalisation and BM25 weight).
        similarity_top_k: nodes returned per query.
        candidate_k: nodes each retriever hands to the fusion (default :data:`DEFAULT_CANDIDATE_K`).
        callback_manager, verbose: as for any LlamaIndex retriever.

    Attributes:
        pipeline, fusion, similarity_top_k, candidate_k: the settings above (public, may be changed).

    Example::

        retriever = HybridRetriever.from_index(index, pipeline={"pipeline": "hybrid",
                                                                "fusion": {"method": "zscore", "weight": 0.3}})
        for hit in retriever.retrieve("quarterly tax deadline"):
            print(round(hit.score, 3), hit.node.node_id)
    """

    def __init__(
        self,
        dense_retriever: Optional[BaseRetriever],
        bm25_index: Optional[BM25Index],
        node_lookup: Optional[NodeLookup] = None,
        *,
        pipeline: str = "hybrid",
        fusion: Optional[FusionSpec] = None,
        similarity_top_k: int = 10,
        candidate_k: int = DEFAULT_CANDIDATE_K,
        callback_manager: Optional[CallbackManager] = None,
        verbose: bool = False,
    ) -> None:
        _check_parts(pipeline, dense_retriever, bm25_index, node_lookup, fusion)
        if isinstance(similarity_top_k, bool) or not isinstance(similarity_top_k, int) or similarity_top_k < 1:
            raise IntegrationError(f"similarity_top_k must be a positive integer, got {similarity_top_k!r}.")
        if isinstance(candidate_k, bool) or not isinstance(candidate_k, int) or candidate_k < similarity_top_k:
            raise IntegrationError(f"candidate_k ({candidate_k!r}) must be an integer of at least similarity_top_k "
                                   f"({similarity_top_k}): each retriever hands that many nodes to the fusion.")
        self.pipeline = pipeline
        self.fusion = fusion
        self.similarity_top_k = similarity_top_k
        self.candidate_k = candidate_k
        self._dense = dense_retriever
        self._bm25 = bm25_index
        self._lookup = node_lookup
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    @classmethod
    def from_index(
        cls,
        index: Any,
        pipeline: Any,
        *,
        similarity_top_k: int = 10,
        candidate_k: int = DEFAULT_CANDIDATE_K,
        bm25_dir: Optional[PathLike] = None,
        persist_dir: Optional[PathLike] = None,
        nodes: Optional[Iterable[BaseNode]] = None,
        callback_manager: Optional[CallbackManager] = None,
        verbose: bool = False,
    ) -> "HybridRetriever":
        """The pipeline chosen for the index's model, over a ``VectorStoreIndex`` (docstore, Qdrant or Chroma).

        Args:
            index: the ``VectorStoreIndex`` to search, with the embed model that queries it.
            pipeline: a model folder holding ``retrieval.json``, the path of one, or its dict
                (``{"pipeline": "hybrid", "fusion": {...}, "bm25": {...}, "model_fingerprint": ...,
                "corpus_digest": ...}``; unknown keys are ignored).
            similarity_top_k: nodes returned per query.
            candidate_k: nodes each retriever hands to the fusion (default 100).
            bm25_dir: folder of the BM25 index (default ``<persist_dir>/bm25`` when the persist folder is
                known, else in memory).
            persist_dir: the index's persist folder (known already for an index loaded with
                :func:`~llama_index_bge_finetune.integration.guard.load_index` from a folder).
            nodes: the index's nodes, for a store that keeps no text (otherwise read from the index).
            callback_manager, verbose: as for any LlamaIndex retriever.

        Raises:
            StalePipelineError: the pipeline was chosen for another model than the one that made the vectors.
            StaleVectorsError: the index's recorded model is not the model it is queried with.
            IntegrationError: the pipeline is malformed, or the store keeps no node text and no ``nodes`` were given.
            MissingFilesError: ``pipeline`` is a path with no ``retrieval.json``.

        Example::

            index = load_index("storage", embed_model=from_finetuned("exp/model"))
            retriever = HybridRetriever.from_index(index, pipeline="exp/model")   # BM25 kept in storage/bm25
        """
        spec = _read_pipeline(pipeline)
        _check_pipeline_model(index, spec)
        dense = index.as_retriever(similarity_top_k=candidate_k) if spec.name != "bm25" else None
        bm25 = lookup = None
        if spec.name != "dense":
            source = node_source(index, nodes)
            ids, texts, digests = _corpus(source.all(), source.where)
            _check_corpus(spec, digests, len(ids))
            bm25 = _bm25_index(ids, texts, spec.bm25, _bm25_folder(index, bm25_dir, persist_dir))
            lookup = source.get
        logger.info("Retrieval pipeline: %s (from %s).", _label(spec), spec.source)
        return cls(dense, bm25, lookup, pipeline=spec.name, fusion=spec.fusion, similarity_top_k=similarity_top_k,
                   candidate_k=candidate_k, callback_manager=callback_manager, verbose=verbose)

    @classmethod
    def from_persist_dir(cls, persist_dir: PathLike, model_dir: PathLike, **kwargs: Any) -> "HybridRetriever":
        """Load a persisted index with the fine-tuned model in ``model_dir`` and the pipeline chosen for it.

        :func:`~llama_index_bge_finetune.integration.guard.load_index` (with the stale-vector check)
        plus :meth:`from_index` with ``pipeline=model_dir``; the BM25 index is kept in ``<persist_dir>/bm25``.
        ``kwargs`` go to :meth:`from_index`.

        Example::

            retriever = HybridRetriever.from_persist_dir("storage", "exp/model", similarity_top_k=5)
        """
        from llama_index_bge_finetune.encoding.llamaindex_embedding import from_finetuned
        from llama_index_bge_finetune.integration.guard import load_index

        index = load_index(persist_dir, embed_model=from_finetuned(model_dir))
        kwargs.setdefault("persist_dir", persist_dir)
        return cls.from_index(index, pipeline=model_dir, **kwargs)

    def as_query_engine(self, **kwargs: Any) -> Any:
        """A ``RetrieverQueryEngine`` over this retriever: ``RetrieverQueryEngine.from_args(self, **kwargs)``.

        Example::

            engine = retriever.as_query_engine(llm=llm, node_postprocessors=[FinetunedRerank(model="exp/reranker")])
            response = engine.query("...")        # response.source_nodes come from this retriever
        """
        from llama_index.core.query_engine import RetrieverQueryEngine

        return RetrieverQueryEngine.from_args(self, **kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        if self.pipeline == "dense":
            return self._dense_hits(self.similarity_top_k).retrieve(query_bundle)
        dense = self._dense_hits(self.candidate_k).retrieve(query_bundle) if self.pipeline == "hybrid" else []
        return self._combine(query_bundle.query_str, dense)

    async def _aretrieve(self, query_bundle: QueryBundle) -> List[NodeWithScore]:
        if self.pipeline == "dense":
            return await self._dense_hits(self.similarity_top_k).aretrieve(query_bundle)
        dense = await self._dense_hits(self.candidate_k).aretrieve(query_bundle) if self.pipeline == "hybrid" else []
        return self._combine(query_bundle.query_str, dense)

    def _dense_hits(self, k: int) -> BaseRetriever:
        """The dense retriever, set to return ``k`` nodes (the settings may have changed since construction)."""
        if hasattr(self._dense, "similarity_top_k"):
            self._dense.similarity_top_k = k
        return self._dense

    def _combine(self, query: str, dense: List[NodeWithScore]) -> List[NodeWithScore]:
        """BM25's top list alone, or fused with the dense one; nodes only BM25 found are looked up."""
        if self.pipeline == "bm25":
            ids, scores = self._bm25.top_k([query], self.similarity_top_k)
        else:
            ids, scores = self._bm25.top_k([query], self.candidate_k)
            d_ids = np.asarray([n.node.node_id for n in dense], dtype=object)[None, :]
            d_scores = np.asarray([n.score if n.score is not None else -np.inf for n in dense], dtype=np.float64)
            ids, scores = fuse_top_k(d_ids, d_scores[None, :], ids, scores, self.fusion, k=self.similarity_top_k)
        keep = np.isfinite(scores[0])
        return self._hits([str(i) for i in ids[0][keep]], scores[0][keep].tolist(),
                          {n.node.node_id: n.node for n in dense})

    def _hits(self, ids: List[str], scores: List[float], known: Dict[str, BaseNode]) -> List[NodeWithScore]:
        # Nodes only BM25 found, and dense hits without text (a store that keeps none, with nodes= given).
        missing = [i for i in ids if i not in known or not known[i].get_content(metadata_mode=MetadataMode.NONE)]
        if missing:
            known = {**known, **{n.node_id: n for n in self._lookup(missing)}}
        gone = [i for i in ids if i not in known]
        if gone:
            logger.warning("%d node(s) the BM25 index holds are no longer in the index (%s); build the retriever "
                           "again to rebuild BM25 over the current nodes.", len(gone), ", ".join(gone[:3]))
        return [NodeWithScore(node=known[i], score=float(s)) for i, s in zip(ids, scores) if i in known]


def _check_parts(pipeline: str, dense: Any, bm25: Any, lookup: Any, fusion: Any) -> None:
    if pipeline not in PIPELINES:
        raise IntegrationError(f"pipeline must be one of {', '.join(PIPELINES)}, got {pipeline!r}.")
    needs = {"dense": ("dense_retriever",), "bm25": ("bm25_index", "node_lookup"),
             "hybrid": ("dense_retriever", "bm25_index", "node_lookup", "fusion")}[pipeline]
    given = {"dense_retriever": dense, "bm25_index": bm25, "node_lookup": lookup, "fusion": fusion}
    absent = [name for name in needs if given[name] is None]
    if absent:
        raise IntegrationError(f"A {pipeline!r} pipeline needs {', '.join(absent)}; build the retriever with "
                               "HybridRetriever.from_index(index, pipeline), which makes every part.")
    if fusion is not None and not isinstance(fusion, FusionSpec):
        raise IntegrationError(f"fusion must be a FusionSpec (e.g. FusionSpec('zscore', 0.3)), got {fusion!r}.")
