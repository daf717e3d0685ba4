"""The stale-vector guard: remember which model embedded an index and refuse to query it with another.

An index keeps the vectors of the model that built it. Swapping only the query model (for a
fine-tuned one) makes every query vector incomparable with the stored document vectors, and
retrieval silently degrades. The guard records the document model's fingerprint beside the index
and checks it whenever the index is loaded for querying::

    from llama_index.core import VectorStoreIndex
    from llama_index_bge_finetune.integration import load_index, record_embed_model, from_finetuned

    index = VectorStoreIndex(nodes, embed_model=base)
    record_embed_model(index)                     # remember who made the vectors
    index.storage_context.persist("storage")

    index = load_index("storage", embed_model=from_finetuned("out/model"))
    # -> StaleVectorsError: ... run reembed_index("storage", ...) first

Where the fingerprint lives: in the index store (``index_store.json``) under the collection
``bge_finetune/embed_model``, keyed by index id; for a Qdrant or Chroma collection also in the
collection's metadata, so an index rebuilt with ``VectorStoreIndex.from_vector_store`` is checked too.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
import weakref
from pathlib import Path
from typing import Any, Dict, Literal, Optional, Union

from llama_index_bge_finetune.errors import IntegrationError, MissingFilesError, StaleVectorsError
from llama_index_bge_finetune.integration.fingerprint import EmbedModelFingerprint, fingerprint_embed_model

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
OnMismatch = Literal["raise", "warn"]
FINGERPRINT_COLLECTION = "bge_finetune/embed_model"
QDRANT_METADATA_KEY = "bge_finetune_embed_model"
CHROMA_METADATA_KEY = "bge_finetune_embed_model"  # a JSON string: Chroma metadata values are scalars
SWAP_MARKER = "SWAPPING"
# The folder each index returned by load_index(path) was read from, for files kept beside it (a BM25 index).
_PERSIST_DIRS: "weakref.WeakKeyDictionary[Any, Path]" = weakref.WeakKeyDictionary()


class UnfingerprintedIndexWarning(UserWarning):
    """An index carries no record of the model that embedded it (built by plain LlamaIndex)."""


class StaleVectorsWarning(UserWarning):
    """An index is queried with another model than the one that embedded it (``on_mismatch="warn"``)."""


def record_embed_model(index: Any, embed_model: Any = None,
                       fingerprint: Optional[EmbedModelFingerprint] = None) -> EmbedModelFingerprint:
    """Record which model embedded ``index``'s vectors (default: the index's own ``embed_model``).

    Call it right after building an index (before ``persist``); :func:`reembed_index` calls it
    for you. ``fingerprint`` skips hashing the weights again when it is already known.
    Returns the fingerprint it stored.
    """
    fp = fingerprint or fingerprint_embed_model(embed_model if embed_model is not None else index._embed_model)
    _index_kvstore(index).put(index.index_id, fp.to_dict(), collection=FINGERPRINT_COLLECTION)
    qdrant = _qdrant_target(index.vector_store)
    if qdrant is not None:
        client, name = qdrant
        if client.collection_exists(name):
            client.update_collection(name, metadata={QDRANT_METADATA_KEY: fp.to_dict()})
    chroma = _chroma_collection(index.vector_store)
    if chroma is not None:
        chroma.modify(metadata={**chroma_settings(chroma.metadata), CHROMA_METADATA_KEY: json.dumps(fp.to_dict())})
    return fp


def recorded_embed_model(index: Any) -> Optional[EmbedModelFingerprint]:
    """The fingerprint recorded for ``index``, or ``None`` when it was built without this package."""
    qdrant = _qdrant_target(index.vector_store)
    if qdrant is not None:
        client, name = qdrant
        if client.collection_exists(name):
            meta = client.get_collection(name).config.metadata or {}
            if QDRANT_METADATA_KEY in meta:
                return EmbedModelFingerprint.from_dict(meta[QDRANT_METADATA_KEY])
    chroma = _chroma_collection(index.vector_store)
    if chroma is not None and CHROMA_METADATA_KEY in (chroma.metadata or {}):
        return EmbedModelFingerprint.from_dict(json.loads(chroma.metadata[CHROMA_METADATA_KEY]))
    data = _index_kvstore(index).get(index.index_id, collection=FINGERPRINT_COLLECTION)
    return EmbedModelFingerprint.from_dict(data) if data else None


def check_embed_model(index: Any, embed_model: Any = None, on_mismatch: OnMismatch = "raise") -> None:
    """Check that ``embed_model`` (default: the index's) made the vectors stored in ``index``.

    Raises:
        StaleVectorsError: the recorded model differs and ``on_mismatch="raise"``.
        IntegrationError: ``on_mismatch`` is not ``"raise"`` or ``"warn"``.

    An index with no recorded model (built by plain LlamaIndex) gets an
    :class:`UnfingerprintedIndexWarning`, never an error.
    """
    if on_mismatch not in ("raise", "warn"):
        raise IntegrationError(f"on_mismatch must be 'raise' or 'warn', got {on_mismatch!r}.")
    recorded = recorded_embed_model(index)
    current = fingerprint_embed_model(embed_model if embed_model is not None else index._embed_model)
    if recorded is None:
        warnings.warn(
            f"Index {index.index_id} does not record which model embedded its vectors (it was built "
            "without llama-index-bge-finetune), so a model mismatch cannot be detected. If it was "
            f"built with {current.name}, call record_embed_model(index) and persist; otherwise "
            "run reembed_index(...) with the model you query with.",
            UnfingerprintedIndexWarning,
            stacklevel=2,
        )
        return
    if recorded.same_vectors_as(current):
        return
    message = (
        f"Index {index.index_id} holds vectors made by {recorded.describe()}, but it is queried with "
        f"{current.describe()}; query vectors would not be comparable with the stored ones and "
        "retrieval would silently degrade. Run reembed_index(index_or_persist_dir, embed_model) to "
        "re-embed the index with the new model, or query with the model that built it."
    )
    if on_mismatch == "warn":
        warnings.warn(message, StaleVectorsWarning, stacklevel=2)
        return
    raise StaleVectorsError(message)


def load_index(
    storage: Any,
    embed_model: Any = None,
    index_id: Optional[str] = None,
    on_mismatch: OnMismatch = "raise",
    **kwargs: Any,
) -> Any:
    """``load_index_from_storage`` plus the stale-vector check.

    Args:
        storage: a persist folder or a ``StorageContext`` (for a Qdrant index, pass
            ``StorageContext.from_defaults(vector_store=..., persist_dir=...)``).
        embed_model: the query model; default ``Settings.embed_model``.
        index_id: which index, when the storage holds several.
        on_mismatch: ``"raise"`` (default) or ``"warn"`` when the model differs from the recorded one.
        **kwargs: passed to ``load_index_from_storage``.

    Example::

        index = load_index("storage", embed_model=from_finetuned("out/model"))
        print(index.as_query_engine().query("..."))
    """
    from llama_index.core import StorageContext, load_index_from_storage

    persist_dir: Optional[Path] = None
    if isinstance(storage, (str, os.PathLike)):
        persist_dir = check_storage_folder(storage)
        check_no_interrupted_swap(persist_dir)
        storage = StorageContext.from_defaults(persist_dir=str(persist_dir))
    if embed_model is not None:
        kwargs["embed_model"] = embed_model
    index = load_index_from_storage(storage, index_id=index_id, **kwargs)
    check_embed_model(index, on_mismatch=on_mismatch)
    if persist_dir is not None:
        _PERSIST_DIRS[index] = persist_dir
    return index


def persisted_at(index: Any) -> Optional[Path]:
    """The folder ``index`` was loaded from by :func:`load_index` (given a path), else ``None``.

    LlamaIndex's ``StorageContext`` does not remember its folder; this lets files that belong beside
    the index (the BM25 index of :class:`~llama_index_bge_finetune.integration.hybrid_retriever.HybridRetriever`)
    find it without asking again.
    """
    try:
        return _PERSIST_DIRS.get(index)
    except TypeError:  # an object that cannot be weakly referenced was never recorded
        return None


def check_storage_folder(path: PathLike) -> Path:
    """``path`` as a ``Path``, or :class:`MissingFilesError` when it is not a persisted LlamaIndex storage folder."""
    persist_dir = Path(path)
    if not (persist_dir / "docstore.json").is_file():
        raise MissingFilesError(
            f"{persist_dir} is not a persisted LlamaIndex storage folder (no docstore.json); "
            "pass the folder given to storage_context.persist(...)."
        )
    return persist_dir


def check_no_interrupted_swap(persist_dir: PathLike) -> None:
    """Raise when a re-embedding was killed while swapping files into ``persist_dir``."""
    markers = sorted(Path(persist_dir).glob(f".reembed-*/{SWAP_MARKER}"))
    if markers:
        raise StaleVectorsError(
            f"A re-embedding of {persist_dir} was interrupted while swapping in the new vectors "
            f"({markers[0].parent.name}); rerun reembed_index on {persist_dir} with the same model to finish it."
        )


def _index_kvstore(index: Any) -> Any:
    return index.storage_context.index_store._kvstore


def chroma_settings(metadata: Any) -> Dict[str, Any]:
    """A Chroma collection's metadata minus the recorded model and the ``hnsw:`` keys ``modify`` refuses."""
    return {k: v for k, v in (metadata or {}).items() if k != CHROMA_METADATA_KEY and not k.startswith("hnsw:")}


def _chroma_collection(vector_store: Any) -> Any:
    """The live ``chromadb`` collection of a ChromaVectorStore (re-read, so a rename or swap is seen), else ``None``."""
    if type(vector_store).__name__ != "ChromaVectorStore":
        return None
    collection = vector_store._collection
    try:
        return chroma_client(collection).get_collection(collection.name)
    except Exception:  # chromadb raises NotFoundError/ValueError by version: renamed away mid-swap
        return collection


def chroma_client(collection: Any) -> Any:
    """A ``chromadb`` client on the same database as ``collection`` (persistent or server)."""
    import chromadb

    return chromadb.Client(collection._client.get_settings(), tenant=collection.tenant, database=collection.database)


def _qdrant_target(vector_store: Any) -> Optional[tuple]:
    """``(client, collection_name)`` for a QdrantVectorStore, else ``None``."""
    if type(vector_store).__name__ != "QdrantVectorStore":
        return None
    return vector_store.client, vector_store.collection_name
