"""Re-embed every node of an existing index with a new model, resumably, then swap it in.

Swapping the query model alone leaves the stored vectors from the old model, so retrieval silently
degrades. :func:`reembed_index` streams the nodes (ids, metadata and relationships kept) in batches
of ``batch_size`` from the docstore, or from the vector store when it holds the text (Qdrant,
Chroma), so only one batch of nodes is in memory at a time; embeds each batch with the new model
(in this process, or on Ray with ``encode_backend="ray"``); journals it into a *fresh* vector store
of the same kind, and only when that store is complete swaps it in. Until then the old vectors stay
untouched and usable; a killed run (even ``kill -9``) resumes after the last stored batch and never
embeds a stored node again.

- Persisted ``SimpleVectorStore`` folders: finished batches are journaled in
  ``<persist_dir>/.reembed-<model>/``; the new files replace the old ones by ``os.replace``.
- Qdrant (``QdrantVectorStore``, server or local mode): the new vectors go to the collection
  ``<name>__<model>``; when complete, ``<name>`` becomes an alias of it and the old collection
  is dropped, so code that opens ``collection_name="<name>"`` keeps working.
- Chroma (``ChromaVectorStore`` over a ``chromadb.PersistentClient``): the new vectors go to the
  collection ``<name>__<model>`` (the journal: a rerun skips the ids already in it); when complete,
  the old collection is renamed aside, the new one renamed ``<name>``, and the old one dropped.

Example::

    from llama_index_bge_finetune.integration import reembed_index, load_index, from_finetuned

    new_model = from_finetuned("out/model")
    reembed_index("storage", new_model)               # load, re-embed, persist
    index = load_index("storage", embed_model=new_model)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
from llama_index.core.storage.index_store.types import DEFAULT_PERSIST_FNAME as INDEX_STORE_FNAME
from llama_index.core.storage.storage_context import DEFAULT_VECTOR_STORE, NAMESPACE_SEP, VECTOR_STORE_FNAME

from llama_index_bge_finetune.encoding.backends import EncodeBackendSpec, resolve_encode_backend
from llama_index_bge_finetune.errors import BgeFinetuneError, IntegrationError
from llama_index_bge_finetune.integration.fingerprint import EmbedModelFingerprint, fingerprint_embed_model
from llama_index_bge_finetune.integration.guard import (
    SWAP_MARKER,
    check_storage_folder,
    record_embed_model,
    recorded_embed_model,
)
from llama_index_bge_finetune.integration.settings import resolve_finetuned

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
ProgressCallback = Callable[[int, int], None]


def reembed_index(
    index_or_storage: Any,
    embed_model: Any,
    *,
    persist_dir: Optional[PathLike] = None,
    index_id: Optional[str] = None,
    batch_size: int = 256,
    show_progress: bool = True,
    on_batch: Optional[ProgressCallback] = None,
    encode_backend: EncodeBackendSpec = "local",
) -> Any:
    """Re-embed all nodes of a vector index with ``embed_model`` and return the re-embedded index.

    Args:
        index_or_storage: a ``VectorStoreIndex``, a ``StorageContext``, or a persist folder.
        embed_model: the new model: a fine-tuned model folder or a LlamaIndex ``BaseEmbedding``.
        persist_dir: where the index is persisted (implied when ``index_or_storage`` is a folder).
            With it the run is resumable and the result is persisted there; without it a
            ``SimpleVectorStore`` index is re-embedded in memory only.
        index_id: which index, when the storage holds several.
        batch_size: nodes read, embedded and journaled per step: the most nodes held in memory at
            once (a ``SimpleVectorStore`` still holds all vectors, as it always does). With
            ``encode_backend="ray"`` each batch is one Ray Data job, so use thousands of nodes.
        show_progress: show a progress bar.
        on_batch: called as ``on_batch(done, total)`` after each batch is safely stored.
        encode_backend: ``"local"`` (default) or ``"ray"`` (the model's sentence-transformers
            weights on Ray Data actors, see :mod:`llama_index_bge_finetune.encoding`).

    Returns:
        A ``VectorStoreIndex`` over the new vectors that queries with ``embed_model``; the model's
        fingerprint is recorded for the stale-vector guard.

    Raises:
        BgeFinetuneError: the index's vector store is of a kind this function cannot copy.

    Re-running after completion is a no-op that returns the index; re-running after a kill resumes.
    """
    from llama_index.core import StorageContext, load_index_from_storage

    if batch_size < 1:
        raise IntegrationError(f"batch_size must be at least 1, got {batch_size}.")
    embed_model = resolve_finetuned(embed_model)
    fp = fingerprint_embed_model(embed_model)
    if isinstance(index_or_storage, (str, os.PathLike)):
        persist_dir = check_storage_folder(index_or_storage)
        _finish_interrupted_swap(persist_dir)
        storage_context = StorageContext.from_defaults(
            persist_dir=str(persist_dir), vector_stores=_read_simple_vector_stores(persist_dir))
        index = load_index_from_storage(storage_context, index_id=index_id, embed_model=embed_model)
    elif isinstance(index_or_storage, StorageContext):
        if persist_dir is not None:
            _finish_interrupted_swap(Path(persist_dir))
        index = load_index_from_storage(index_or_storage, index_id=index_id, embed_model=embed_model)
    else:
        index = index_or_storage
    run = _Run(embed_model, fp, batch_size, show_progress, on_batch, encode_backend)
    kind = type(index.vector_store).__name__
    if kind == "SimpleVectorStore":
        return _reembed_simple(index, run, Path(persist_dir) if persist_dir is not None else None)
    if kind == "QdrantVectorStore":
        return _reembed_qdrant(index, run, Path(persist_dir) if persist_dir is not None else None)
    if kind == "ChromaVectorStore":
        from llama_index_bge_finetune.integration.reembed_chroma import reembed_chroma

        return reembed_chroma(index, run)
    raise BgeFinetuneError(
        f"reembed_index cannot copy a {kind}: it supports SimpleVectorStore (the default, persisted "
        "with storage_context.persist), QdrantVectorStore and ChromaVectorStore. For another store, rebuild with "
        "VectorStoreIndex(nodes, embed_model=new_model, storage_context=...) into a new collection."
    )


class _Run:
    """What one re-embedding needs: the model, its fingerprint and the batching/progress options."""

    def __init__(self, embed_model: Any, fp: EmbedModelFingerprint, batch_size: int,
                 show_progress: bool, on_batch: Optional[ProgressCallback],
                 encode_backend: EncodeBackendSpec = "local") -> None:
        self.embed_model = embed_model
        self.fp = fp
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.on_batch = on_batch
        self.encoder = None
        if resolve_encode_backend(encode_backend) is not None:
            from llama_index_bge_finetune.encoding.resolve import resolve_encoder

            self.encoder = resolve_encoder(embed_model, encode_backend=encode_backend)

    def embed_texts(self, texts: List[str]) -> List[List[float]]:
        """Passage vectors from the model itself, or from its encoder on the chosen backend."""
        if self.encoder is not None:
            return self.encoder.encode_corpus(texts).tolist()
        return self.embed_model.get_text_embedding_batch(texts)

    def embed(self, pages: Iterable[Sequence[Tuple[str, Any]]], total: int, done: Set[str],
              store: Callable[[List[str], List[List[float]]], None]) -> None:
        """Embed each page of ``(vector id, node)`` pairs, skipping ids in ``done``, handing each batch to ``store``."""
        from llama_index.core.schema import MetadataMode
        from tqdm.auto import tqdm

        finished = len(done)
        if done:
            logger.info("Resuming re-embedding: %d of %d nodes already embedded.", finished, total)
        with tqdm(total=total, initial=finished, unit="node", desc="re-embedding", disable=not self.show_progress) as bar:
            for page in pages:
                todo = [(vid, node.get_content(metadata_mode=MetadataMode.EMBED)) for vid, node in page if vid not in done]
                if not todo:
                    continue
                todo.sort(key=lambda item: len(item[1]), reverse=True)  # less padding per forward pass
                store([vid for vid, _ in todo], self.embed_texts([text for _, text in todo]))
                finished += len(todo)
                bar.update(len(todo))
                if self.on_batch is not None:
                    self.on_batch(finished, total)


def _pages_of(ids: Sequence[str], size: int, done: Set[str], load: Callable[[List[str]], List[Any]]) -> Iterator[List[Tuple[str, Any]]]:
    """``(id, node)`` pages of ``size`` ids in order, loading only the nodes not yet ``done``."""
    for start in range(0, len(ids), size):
        todo = [i for i in ids[start:start + size] if i not in done]
        if todo:
            yield list(zip(todo, load(todo)))


# --------------------------------------------------------------------------- SimpleVectorStore
def _reembed_simple(index: Any, run: _Run, persist_dir: Optional[Path]) -> Any:
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.vector_stores import SimpleVectorStore
    from llama_index.core.vector_stores.simple import SimpleVectorStoreData

    if _already_done(index, run.fp):
        return index
    old = index.vector_store
    vector_to_node = dict(index.index_struct.nodes_dict)

    journal = _Journal(persist_dir / f".reembed-{run.fp.short}") if persist_dir is not None else None
    if journal is None:
        logger.warning("Re-embedding in memory only: pass persist_dir to make the run resumable and saved.")
    embeddings: Dict[str, List[float]] = journal.load() if journal is not None else {}
    embeddings = {k: v for k, v in embeddings.items() if k in vector_to_node}

    def store(ids: List[str], vectors: List[List[float]]) -> None:
        if journal is not None:
            journal.append(ids, vectors)
        embeddings.update(zip(ids, vectors))

    def load(vids: List[str]) -> List[Any]:
        return index.docstore.get_nodes([vector_to_node[v] for v in vids])

    done = set(embeddings)
    run.embed(_pages_of(list(vector_to_node), run.batch_size, done, load), len(vector_to_node), done, store)
    new_store = SimpleVectorStore(data=SimpleVectorStoreData(
        embedding_dict=embeddings,
        text_id_to_ref_doc_id=dict(old.data.text_id_to_ref_doc_id),
        metadata_dict=dict(old.data.metadata_dict),
    ))
    sc = index.storage_context
    new_sc = StorageContext(
        docstore=sc.docstore, index_store=_own_copy(sc.index_store),
        vector_stores={**sc.vector_stores, DEFAULT_VECTOR_STORE: new_store},
        graph_store=sc.graph_store, property_graph_store=sc.property_graph_store,
    )
    new_index = VectorStoreIndex(index_struct=index.index_struct, storage_context=new_sc, embed_model=run.embed_model)
    record_embed_model(new_index, fingerprint=run.fp)
    if journal is not None:
        final = journal.root / "final"
        shutil.rmtree(final, ignore_errors=True)
        final.mkdir(parents=True)
        # Only the vectors and the index store change; the docstore and graph stores stay as they are.
        _write_simple_vector_store(new_store, final / f"{DEFAULT_VECTOR_STORE}{NAMESPACE_SEP}{VECTOR_STORE_FNAME}")
        new_sc.index_store.persist(str(final / INDEX_STORE_FNAME))
        (journal.root / SWAP_MARKER).touch()
        _finish_interrupted_swap(persist_dir)
    logger.info("Re-embedded %d nodes with %s.", len(vector_to_node), run.fp.describe())
    return new_index


def _read_simple_vector_stores(persist_dir: Path) -> Optional[Dict[str, Any]]:
    """The persisted ``SimpleVectorStore`` files of ``persist_dir``, read with plain ``json``.

    LlamaIndex decodes these files through dataclasses-json one float at a time, which took longer
    than the rest of loading an index; the file format is the same plain dict. ``None`` (let
    LlamaIndex read them) when the folder uses another layout.
    """
    from llama_index.core.vector_stores import SimpleVectorStore
    from llama_index.core.vector_stores.simple import SimpleVectorStoreData

    stores: Dict[str, Any] = {}
    for path in sorted(persist_dir.glob(f"*{NAMESPACE_SEP}{VECTOR_STORE_FNAME}")):
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
        if not isinstance(raw, dict) or not set(raw) <= set(_simple_fields()):
            return None
        stores[path.name.split(NAMESPACE_SEP)[0]] = SimpleVectorStore(data=SimpleVectorStoreData(**raw))
    return stores if DEFAULT_VECTOR_STORE in stores else None


def _write_simple_vector_store(store: Any, path: Path) -> None:
    """Write a ``SimpleVectorStore`` in the format its own ``persist`` writes, with plain ``json``."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump({name: getattr(store.data, name) for name in _simple_fields()}, f)


def _simple_fields() -> List[str]:
    """The fields of LlamaIndex's ``SimpleVectorStoreData``: the keys of its persisted JSON."""
    from llama_index.core.vector_stores.simple import SimpleVectorStoreData

    return [f.name for f in dataclasses.fields(SimpleVectorStoreData)]


def _own_copy(index_store: Any) -> Any:
    """A copy of an in-memory index store, so recording the new model never marks the old index as done."""
    from llama_index.core.storage.index_store import SimpleIndexStore

    if isinstance(index_store, SimpleIndexStore):
        return SimpleIndexStore.from_dict(copy.deepcopy(index_store.to_dict()))
    return index_store


def _finish_interrupted_swap(persist_dir: Path) -> None:
    """Move a completed re-embedding's files into ``persist_dir`` (index store last) and clean up."""
    for marker in sorted(persist_dir.glob(f".reembed-*/{SWAP_MARKER}")):
        final = marker.parent / "final"
        files = sorted(final.glob("*.json"), key=lambda p: p.name == "index_store.json") if final.is_dir() else []
        for path in files:
            os.replace(path, persist_dir / path.name)
        marker.unlink()
        shutil.rmtree(marker.parent)
        logger.info("Swapped the re-embedded vectors into %s.", persist_dir)


class _Journal:
    """Finished batches as numbered ``.npz`` files, each written atomically, so a kill loses at most one batch."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._next = len(list(self.root.glob("batch-*.npz")))

    def load(self) -> Dict[str, List[float]]:
        out: Dict[str, List[float]] = {}
        for path in sorted(self.root.glob("batch-*.npz")):
            with np.load(path) as data:
                out.update(zip(data["ids"].tolist(), data["vectors"].tolist()))
        return out

    def append(self, ids: List[str], vectors: List[List[float]]) -> None:
        path = self.root / f"batch-{self._next:06d}.npz"
        tmp = self.root / f"tmp-{self._next:06d}.npz"
        with open(tmp, "wb") as f:
            np.savez(f, ids=np.array(ids), vectors=np.asarray(vectors, dtype=np.float32))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._next += 1


def _already_done(index: Any, fp: EmbedModelFingerprint) -> bool:
    recorded = recorded_embed_model(index)
    if recorded is not None and recorded.same_vectors_as(fp):
        logger.info("Index %s is already embedded with %s; nothing to do.", index.index_id, fp.describe())
        return True
    return False


# --------------------------------------------------------------------------- Qdrant
def _reembed_qdrant(index: Any, run: _Run, persist_dir: Optional[Path]) -> Any:
    from llama_index.core import StorageContext, VectorStoreIndex

    old = index.vector_store
    if old.enable_hybrid:
        raise BgeFinetuneError(
            "reembed_index does not copy hybrid (dense + sparse) Qdrant collections yet; rebuild the "
            "index with VectorStoreIndex(nodes, embed_model=..., storage_context=...) into a new collection."
        )
    client, public = old.client, old.collection_name
    target = f"{public}__{run.fp.short}"
    aliases = {a.alias_name: a.collection_name for a in client.get_aliases().aliases}
    if not client.collection_exists(public) and client.collection_exists(target):
        _qdrant_swap(client, public, target, aliases)  # a previous run died between drop and alias
        aliases = {a.alias_name: a.collection_name for a in client.get_aliases().aliases}
    current = aliases.get(public, public)

    def open_store(name: str) -> Any:
        return type(old)(collection_name=name, client=client, batch_size=old.batch_size,
                         dense_vector_name=old.dense_vector_name, text_key=old.text_key)

    def finished_index() -> Any:
        sc = index.storage_context
        new_sc = StorageContext(docstore=sc.docstore, index_store=sc.index_store,
                                vector_stores={**sc.vector_stores, DEFAULT_VECTOR_STORE: open_store(public)},
                                graph_store=sc.graph_store, property_graph_store=sc.property_graph_store)
        new_index = VectorStoreIndex(index_struct=index.index_struct, storage_context=new_sc, embed_model=run.embed_model)
        record_embed_model(new_index, fingerprint=run.fp)
        if persist_dir is not None:
            new_sc.persist(persist_dir=str(persist_dir))
        return new_index

    if current == target:
        logger.info("Collection %s already holds vectors from %s; nothing to do.", public, run.fp.describe())
        return finished_index()

    done = {str(p.id) for page in _scroll(client, target, with_payload=False) for p in page} \
        if client.collection_exists(target) else set()
    total = client.count(current, exact=True).count
    new_store = open_store(target)
    by_id: Dict[str, Any] = {}

    def pages() -> Iterator[List[Tuple[str, Any]]]:
        for points in _scroll(client, current, page=run.batch_size):
            nodes = old.parse_to_query_result(points).nodes
            by_id.clear()
            by_id.update((n.node_id, n) for n in nodes)
            yield [(n.node_id, n) for n in nodes]

    def store(ids: List[str], vectors: List[List[float]]) -> None:
        copies = []
        for vid, vector in zip(ids, vectors):
            node = by_id[vid].model_copy()
            node.embedding = vector
            copies.append(node)
        new_store.add(copies)

    run.embed(pages(), total, done, store)
    client.update_collection(target, metadata={"bge_finetune_embed_model": run.fp.to_dict()})
    _qdrant_swap(client, public, target, aliases)
    if current != public and current != target and client.collection_exists(current):
        client.delete_collection(current)
    logger.info("Re-embedded %d nodes into %s; %s now points at it.", total, target, public)
    return finished_index()


def _qdrant_swap(client: Any, public: str, target: str, aliases: Dict[str, str]) -> None:
    """Make ``public`` an alias of ``target``: atomically when it already is an alias, else drop then alias."""
    from qdrant_client import models

    ops: List[Any] = []
    if public in aliases:
        ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=public)))
    elif client.collection_exists(public):
        client.delete_collection(public)
    ops.append(models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=target, alias_name=public)))
    client.update_collection_aliases(change_aliases_operations=ops)


def _scroll(client: Any, collection: str, with_payload: bool = True, page: int = 512) -> Iterator[List[Any]]:
    """The collection's points, one page at a time (never the whole collection in memory)."""
    offset = None
    while True:
        batch, offset = client.scroll(collection_name=collection, limit=page, offset=offset,
                                      with_payload=with_payload, with_vectors=False)
        if batch:
            yield batch
        if offset is None:
            return
