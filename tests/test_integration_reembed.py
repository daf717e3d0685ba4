"""End to end on real parts: MiniLM, a fine-tuned MiniLM, persisted indexes, Qdrant local mode, SIGKILL.

The fine-tuned model learned that "zorblat" means the quarterly tax payment (see
``tests/integration_helpers.py``); the base model ranks another passage first for the query.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from llama_index.core import StorageContext, VectorStoreIndex

from llama_index_bge_finetune.errors import StaleVectorsError
from llama_index_bge_finetune.integration import (
    check_embed_model,
    fingerprint_embed_model,
    from_finetuned,
    load_index,
    record_embed_model,
    recorded_embed_model,
    reembed_index,
)
from tests.integration_helpers import QUERY, TAX_ID, documents, finetune_zorblat, persist_index

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("reembed")]  # under -n 2: the module's fine-tuned models are made once
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def models(minilm_path, tmp_path_factory):
    """(base, fine-tuned) HuggingFaceEmbedding pair."""
    tuned = finetune_zorblat(minilm_path, tmp_path_factory.mktemp("zorblat"))
    return from_finetuned(minilm_path), from_finetuned(tuned)


def _top(index, query=QUERY):
    return index.as_retriever(similarity_top_k=1).retrieve(query)[0].node.metadata["key"]


def _node_facts(index):
    """Id -> (text, metadata, relationships) for every node, to check nothing is lost."""
    ids = list(index.index_struct.nodes_dict.values())
    return {n.node_id: (n.text, n.metadata, {k: v.node_id for k, v in n.relationships.items()})
            for n in index.docstore.get_nodes(ids)}


def test_persisted_index_reembed_fixes_the_query_the_base_model_gets_wrong(models, tmp_path):
    base, tuned = models
    storage = tmp_path / "storage"
    before = persist_index(base, storage)
    assert _top(before) != TAX_ID  # the premise: the base model does not know the word
    facts = _node_facts(before)

    with pytest.raises(StaleVectorsError, match="reembed_index"):
        load_index(storage, embed_model=tuned)  # swapping only the query model is refused

    reembed_index(storage, tuned, show_progress=False)
    after = load_index(storage, embed_model=tuned)
    assert _top(after) == TAX_ID
    assert _node_facts(after) == facts
    assert after.ref_doc_info.keys() == before.ref_doc_info.keys()
    assert not list(storage.glob(".reembed-*"))  # the journal is cleaned up after the swap
    with pytest.raises(StaleVectorsError):
        load_index(storage, embed_model=base)  # the old model is now the stale one
    calls = []
    reembed_index(storage, tuned, show_progress=False, on_batch=lambda d, t: calls.append(d))
    assert calls == []  # already done: a rerun embeds nothing


def test_qdrant_local_reembed_swaps_the_collection_under_the_same_name(models, tmp_path):
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    base, tuned = models
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    store = QdrantVectorStore(client=client, collection_name="docs")
    index = VectorStoreIndex.from_documents(
        documents(), storage_context=StorageContext.from_defaults(vector_store=store), embed_model=base
    )
    record_embed_model(index)
    assert _top(index) != TAX_ID
    with pytest.raises(StaleVectorsError):
        check_embed_model(VectorStoreIndex.from_vector_store(store, embed_model=tuned))

    new_index = reembed_index(index, tuned, show_progress=False)
    assert _top(new_index) == TAX_ID
    client.close()

    client = QdrantClient(path=str(tmp_path / "qdrant"))  # the app reconnects by the same name
    reopened = VectorStoreIndex.from_vector_store(
        QdrantVectorStore(client=client, collection_name="docs"), embed_model=tuned
    )
    check_embed_model(reopened)
    hit = reopened.as_retriever(similarity_top_k=1).retrieve(QUERY)[0].node
    assert hit.metadata["key"] == TAX_ID and hit.ref_doc_id == TAX_ID
    fp = fingerprint_embed_model(tuned)
    assert [c.name for c in client.get_collections().collections] == [f"docs__{fp.short}"]
    assert recorded_embed_model(reopened).same_vectors_as(fp)
    client.close()


def _kill_half_way(args):
    proc = subprocess.run([sys.executable, "-m", "tests.integration_reembed_child", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]


def test_sigkill_half_way_keeps_the_old_index_and_a_rerun_completes(models, tmp_path):
    base, tuned = models
    storage = tmp_path / "storage"
    persist_index(base, storage)
    old_top = _top(load_index(storage, embed_model=base))

    _kill_half_way([tuned.model_name, 3, "simple", storage])  # 12 nodes, 2 per batch: dies after 3 of 6
    journal = list(storage.glob(".reembed-*/batch-*.npz"))
    assert len(journal) == 3
    still = load_index(storage, embed_model=base)  # the old index loads and answers as before
    assert _top(still) == old_top

    calls = []
    reembed_index(storage, tuned, batch_size=2, show_progress=False, on_batch=lambda d, t: calls.append(d))
    assert calls == [8, 10, 12]  # resumed after the 6 nodes journaled before the kill
    assert _top(load_index(storage, embed_model=tuned)) == TAX_ID


def test_sigkill_during_qdrant_reembed_keeps_the_old_collection(models, tmp_path):
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    base, tuned = models
    path = str(tmp_path / "qdrant")
    client = QdrantClient(path=path)
    store = QdrantVectorStore(client=client, collection_name="docs")
    index = VectorStoreIndex.from_documents(
        documents(), storage_context=StorageContext.from_defaults(vector_store=store), embed_model=base
    )
    record_embed_model(index)
    old_top = _top(index)
    client.close()

    _kill_half_way([tuned.model_name, 2, "qdrant", path, "docs"])

    client = QdrantClient(path=path)
    store = QdrantVectorStore(client=client, collection_name="docs")
    old = VectorStoreIndex.from_vector_store(store, embed_model=base)
    check_embed_model(old)  # still the base model's collection, fully usable
    assert _top(old) == old_top
    calls = []
    new_index = reembed_index(VectorStoreIndex.from_vector_store(store, embed_model=tuned), tuned,
                              batch_size=2, show_progress=False, on_batch=lambda d, t: calls.append(d))
    assert calls == [6, 8, 10, 12]
    assert _top(new_index) == TAX_ID
    client.close()
