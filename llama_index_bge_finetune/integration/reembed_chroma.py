"""Re-embedding a Chroma collection (``ChromaVectorStore``) into a fresh one, then swapping names.

Chroma has no aliases, so the swap renames: the old collection ``<name>`` becomes
``<name>__retired``, the finished ``<name>__<model>`` becomes ``<name>``, the retired one is
dropped. Every step is checked on the next run, so a kill between any two of them ends in the same
state. The new collection is the journal: its ids are the nodes already embedded.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Iterator, List, Tuple

from llama_index_bge_finetune.integration.guard import (
    CHROMA_METADATA_KEY,
    chroma_client,
    chroma_settings,
    record_embed_model,
    recorded_embed_model,
)

logger = logging.getLogger(__name__)

RETIRED = "__retired"


def reembed_chroma(index: Any, run: Any) -> Any:
    """Re-embed ``index``'s Chroma collection with ``run``'s model and return an index over the swapped collection."""
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.storage.storage_context import DEFAULT_VECTOR_STORE

    old = index.vector_store
    collection = old._collection
    client, public = chroma_client(collection), collection.name
    target = f"{public}__{run.fp.short}"

    def finished_index() -> Any:
        store = type(old)(chroma_collection=client.get_collection(public))
        sc = index.storage_context
        new_sc = StorageContext(docstore=sc.docstore, index_store=sc.index_store,
                                vector_stores={**sc.vector_stores, DEFAULT_VECTOR_STORE: store},
                                graph_store=sc.graph_store, property_graph_store=sc.property_graph_store)
        new_index = VectorStoreIndex(index_struct=index.index_struct, storage_context=new_sc, embed_model=run.embed_model)
        record_embed_model(new_index, fingerprint=run.fp)
        return new_index

    names = {c.name for c in client.list_collections()}
    if public not in names and target in names:
        _swap(client, public, target)  # a previous run died between the renames
        return finished_index()
    recorded = recorded_embed_model(index)
    if recorded is not None and recorded.same_vectors_as(run.fp):
        logger.info("Collection %s already holds vectors from %s; nothing to do.", public, run.fp.describe())
        return finished_index()

    creation = {k: v for k, v in (collection.metadata or {}).items() if k != CHROMA_METADATA_KEY}  # keeps hnsw:space
    new = client.get_or_create_collection(target, metadata=creation or None)
    done = {i for ids in _pages(new, 1024, include=[]) for i in ids[0]}
    by_id: Dict[str, Tuple[str, Dict[str, Any]]] = {}

    def pages() -> Iterator[List[Tuple[str, Any]]]:
        from llama_index.core.vector_stores.utils import metadata_dict_to_node

        for ids, documents, metadatas in _pages(collection, run.batch_size, include=["documents", "metadatas"]):
            by_id.clear()
            page = []
            for vid, text, meta in zip(ids, documents, metadatas):
                by_id[vid] = (text, meta)
                node = metadata_dict_to_node(meta)
                node.set_content(text or "")
                page.append((vid, node))
            yield page

    def store(ids: List[str], vectors: List[List[float]]) -> None:
        new.upsert(ids=ids, embeddings=vectors, documents=[by_id[i][0] for i in ids],
                   metadatas=[by_id[i][1] for i in ids])

    run.embed(pages(), collection.count(), done, store)
    new.modify(metadata={**chroma_settings(new.metadata), CHROMA_METADATA_KEY: json.dumps(run.fp.to_dict())})
    _swap(client, public, target)
    logger.info("Re-embedded %d nodes into Chroma collection %s.", new.count(), public)
    return finished_index()


def _swap(client: Any, public: str, target: str) -> None:
    """Rename ``public`` aside, ``target`` to ``public``, drop the old one (each step safe to redo)."""
    names = {c.name for c in client.list_collections()}
    retired = f"{public}{RETIRED}"
    if public in names:
        if retired in names:
            client.delete_collection(retired)
        client.get_collection(public).modify(name=retired)
    client.get_collection(target).modify(name=public)
    if retired in {c.name for c in client.list_collections()}:
        client.delete_collection(retired)


def _pages(collection: Any, size: int, include: List[str]) -> Iterator[Tuple[List[str], List[Any], List[Any]]]:
    """``(ids, documents, metadatas)`` of ``collection``, ``size`` records at a time."""
    offset = 0
    while True:
        got = collection.get(offset=offset, limit=size, include=include)
        ids = got["ids"]
        if not ids:
            return
        yield ids, got.get("documents") or [None] * len(ids), got.get("metadatas") or [None] * len(ids)
        offset += len(ids)

