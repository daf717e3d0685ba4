"""Streaming re-embedding on the tiny real BERT: Chroma, and kill -9 then rerun embeds every node exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Tuple

import numpy as np
import pytest
import torch
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.schema import MetadataMode

from llama_index_bge_finetune.errors import StaleVectorsError
from llama_index_bge_finetune.integration import check_embed_model, record_embed_model, reembed_index
from tests.integration_helpers import PASSAGES, documents, persist_index
from tests.integration_reembed_child import CountingEmbedding
from tests.requirements import CHROMA, require_module

ROOT = Path(__file__).resolve().parents[1]
chromadb = require_module("chromadb", CHROMA)
require_module("llama_index.vector_stores.chroma", CHROMA)


@pytest.fixture
def models(tiny_model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tuple[Any, Any, Path]:
    """(base, new) counting embeddings over two tiny BERTs with different weights, and the call log."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(tiny_model_path), device="cpu")
    with torch.no_grad():
        for p in st.parameters():
            p.mul_(1.5)
    st.save(str(tmp_path / "new"))
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("REEMBED_CALL_LOG", str(log))
    return (CountingEmbedding(model_name=str(tiny_model_path), device="cpu"),
            CountingEmbedding(model_name=str(tmp_path / "new"), device="cpu"), log)


def _chroma_index(path: Path, embed_model: Any) -> Any:
    from llama_index.vector_stores.chroma import ChromaVectorStore

    collection = chromadb.PersistentClient(path=str(path)).get_or_create_collection("docs", metadata={"hnsw:space": "cosine"})
    store = ChromaVectorStore(chroma_collection=collection)
    index = VectorStoreIndex.from_documents(documents(), storage_context=StorageContext.from_defaults(vector_store=store),
                                            embed_model=embed_model)
    record_embed_model(index)
    return index


def _reopen(path: Path, embed_model: Any) -> Any:
    from llama_index.vector_stores.chroma import ChromaVectorStore

    client = chromadb.PersistentClient(path=str(path))
    return VectorStoreIndex.from_vector_store(ChromaVectorStore(chroma_collection=client.get_collection("docs")),
                                              embed_model=embed_model)


def _kill_half_way(args: list) -> None:
    proc = subprocess.run([sys.executable, "-m", "tests.integration_reembed_child", *map(str, args)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]


def _calls_per_text(log: Path) -> Counter:
    return Counter(json.loads(line) for line in log.read_text(encoding="utf-8").splitlines())


def _embed_texts() -> set:
    return {d.get_content(metadata_mode=MetadataMode.EMBED) for d in documents()}


def test_chroma_reembed_swaps_the_collection_under_the_same_name(models: Any, tmp_path: Path) -> None:
    base, new, log = models
    index = _chroma_index(tmp_path / "chroma", base)
    with pytest.raises(StaleVectorsError):
        check_embed_model(_reopen(tmp_path / "chroma", new))  # the guard reads the collection's metadata

    done = []
    reembed_index(index, new, batch_size=5, show_progress=False, on_batch=lambda d, t: done.append(d))
    assert done == [5, 10, 12]  # streamed in batches of 5 nodes

    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    assert [c.name for c in client.list_collections()] == ["docs"]
    collection = client.get_collection("docs")
    assert collection.configuration_json["hnsw"]["space"] == "cosine"
    got = collection.get(include=["embeddings", "documents"])
    assert sorted(got["documents"]) == sorted(PASSAGES.values())
    row = got["documents"].index(PASSAGES["tax"])
    expected = new.get_text_embedding(next(t for t in _embed_texts() if PASSAGES["tax"] in t))
    np.testing.assert_allclose(got["embeddings"][row], expected, atol=1e-5)

    reopened = _reopen(tmp_path / "chroma", new)
    check_embed_model(reopened)  # the new model passes the guard, the old one is now stale
    with pytest.raises(StaleVectorsError):
        check_embed_model(_reopen(tmp_path / "chroma", base))
    log.unlink()
    reembed_index(reopened, new, show_progress=False)
    assert not log.exists()  # already done: nothing embedded again


@pytest.mark.parametrize("kind", ["chroma", "simple"])
def test_kill_9_then_rerun_embeds_every_node_exactly_once(models: Any, tmp_path: Path, kind: str) -> None:
    base, new, log = models
    path = tmp_path / kind
    if kind == "chroma":
        _chroma_index(path, base)
    else:
        persist_index(base, path)
    log.unlink()  # from here on, only the new model's calls, in the child and in the rerun
    args = [new.model_name, 3, kind, path] + (["docs"] if kind == "chroma" else [])
    _kill_half_way(args)  # 12 nodes, 2 per batch: SIGKILL after 3 of 6 batches are stored
    assert sum(_calls_per_text(log).values()) == 6

    done = []
    reembed_index(_reopen(path, new) if kind == "chroma" else path, new, batch_size=2, show_progress=False,
                  on_batch=lambda d, t: done.append(d))
    assert done == [8, 10, 12]
    calls = _calls_per_text(log)
    assert set(calls) == _embed_texts() and set(calls.values()) == {1}  # every node embedded exactly once
    if kind == "chroma":
        check_embed_model(_reopen(path, new))
        assert chromadb.PersistentClient(path=str(path)).get_collection("docs").count() == 12
