"""HybridRetriever on real parts: the tiny BERT, real persisted indexes, Qdrant local mode and a Chroma PersistentClient.

The corpus is 48 sections of CPython's language reference (``pydoc_data``), one node each.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.schema import TextNode

from llama_index_bge_finetune import HybridRetriever
from llama_index_bge_finetune.errors import (
    IntegrationError,
    MissingFilesError,
    OutputExistsError,
    StalePipelineError,
    StaleVectorsError,
)
from llama_index_bge_finetune.integration import fingerprint_embed_model, from_finetuned, load_index, record_embed_model
from llama_index_bge_finetune.retrieval.bm25 import BM25Index, text_digest
from llama_index_bge_finetune.retrieval.fusion import FusionSpec, fuse, fuse_top_k, top_k_rows
from tests.requirements import CHROMA, require_module

QDRANT = 'pip install "llama-index-bge-finetune[qdrant]"'
QUERIES = ["assert statement raises AssertionError", "break out of the nearest enclosing loop",
           "coroutine functions defined with async def", "import a module and bind its name",
           "floating point literals and exponents"]
SPEC = FusionSpec("zscore", 0.4)


def _corpus() -> Dict[str, str]:
    from pydoc_data.topics import topics

    out = {}
    for name in sorted(topics)[:48]:
        text = re.sub(r"[*=]{3,}", " ", topics[name])
        out[str(uuid.uuid5(uuid.NAMESPACE_URL, f"pydoc/{name}"))] = " ".join(text.split())[:600]
    return out


CORPUS = _corpus()


def _nodes() -> List[TextNode]:
    return [TextNode(id_=i, text=t, metadata={"section": n}) for n, (i, t) in enumerate(CORPUS.items())]


def _pipeline(embed: Any, name: str = "hybrid", fusion: FusionSpec = SPEC, **extra: Any) -> Dict[str, Any]:
    """A retrieval.json as the evaluation writes it, chosen for ``embed`` on this corpus."""
    return {"version": 1, "pipeline": name, "fusion": fusion.to_dict() if name == "hybrid" else None,
            "bm25": {"language": "english", "stopwords": "en", "k1": 1.5, "b": 0.75, "method": "lucene"},
            "chosen_on": {"questions": 40}, "reason": "test", "model_fingerprint": fingerprint_embed_model(embed).digest,
            "corpus_digest": text_digest(list(CORPUS.values()), list(CORPUS)), **extra}


def _ids(hits: List[Any]) -> List[str]:
    return [h.node.node_id for h in hits]


@pytest.fixture(scope="module")
def embed(_tiny_model_master: Path) -> Any:
    return from_finetuned(_tiny_model_master)


@pytest.fixture(scope="module")
def memory_index(embed: Any) -> Any:
    index = VectorStoreIndex(_nodes(), embed_model=embed)
    record_embed_model(index)
    return index


@pytest.fixture(scope="module")
def bm25() -> BM25Index:
    return BM25Index.build(list(CORPUS.values()), list(CORPUS))


def test_hybrid_fuses_the_two_top_lists_and_equals_the_whole_corpus_fusion(embed, memory_index, bm25):
    retriever = HybridRetriever.from_index(memory_index, pipeline=_pipeline(embed), similarity_top_k=5, candidate_k=20)
    dense = memory_index.as_retriever(similarity_top_k=20)
    for query in QUERIES:
        hits = retriever.retrieve(query)
        d = dense.retrieve(query)
        b_ids, b_scores = bm25.top_k([query], 20)
        ids, scores = fuse_top_k(np.array([_ids(d)], dtype=object), np.array([[h.score for h in d]]),
                                 b_ids, b_scores, SPEC, k=5)
        assert _ids(hits) == list(ids[0])
        assert [h.score for h in hits] == pytest.approx(scores[0].tolist())
        assert all(h.node.get_content() == CORPUS[h.node.node_id] for h in hits)  # BM25-only hits carry their text
    assert asyncio.run(retriever.aretrieve(QUERIES[0])) == retriever.retrieve(QUERIES[0])

    # With every node a candidate on both sides, the shipped fusion is the evaluation's whole-corpus fusion.
    everything = HybridRetriever.from_index(memory_index, pipeline=_pipeline(embed), similarity_top_k=5,
                                            candidate_k=len(CORPUS))
    order = list(CORPUS)
    dense_all = memory_index.as_retriever(similarity_top_k=len(CORPUS))
    for query in QUERIES:
        by_id = {h.node.node_id: h.score for h in dense_all.retrieve(query)}
        exact = fuse(np.array([[by_id[i] for i in order]]), bm25.score_all([query]), SPEC)
        rank = np.argsort(np.argsort(np.array(order, dtype=object)))
        cols, _ = top_k_rows(exact, 5, rank)
        assert _ids(everything.retrieve(query)) == [order[c] for c in cols[0]]


def test_dense_and_bm25_pipelines_keep_the_single_retrievers_order(embed, memory_index, bm25):
    dense_only = HybridRetriever.from_index(memory_index, pipeline=_pipeline(embed, "dense"), similarity_top_k=5)
    bm25_only = HybridRetriever.from_index(memory_index, pipeline=_pipeline(embed, "bm25"), similarity_top_k=5)
    plain = memory_index.as_retriever(similarity_top_k=5)
    for query in QUERIES:
        expected = plain.retrieve(query)
        got = dense_only.retrieve(query)
        assert _ids(got) == _ids(expected) and [h.score for h in got] == [h.score for h in expected]
        b_ids, b_scores = bm25.top_k([query], 5)
        got = bm25_only.retrieve(query)
        assert _ids(got) == list(b_ids[0]) and [h.score for h in got] == pytest.approx(b_scores[0].tolist())
    dense_only.similarity_top_k = 3  # a public setting, read at every query
    assert len(dense_only.retrieve(QUERIES[0])) == 3


def test_persisted_index_keeps_bm25_beside_it_and_rebuilds_only_when_the_nodes_change(
        tiny_model_path, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="llama_index_bge_finetune")
    embed = from_finetuned(tiny_model_path)
    index = VectorStoreIndex(_nodes(), embed_model=embed)
    record_embed_model(index)
    storage = tmp_path / "storage"
    index.storage_context.persist(str(storage))
    (tiny_model_path / "retrieval.json").write_text(json.dumps(_pipeline(embed)), encoding="utf-8")

    first = HybridRetriever.from_index(load_index(storage, embed_model=embed), pipeline=tiny_model_path)
    meta = storage / "bm25" / "bm25_meta.json"
    assert meta.is_file() and "Built a BM25 index of 48 texts" in caplog.text
    stamp = meta.stat().st_mtime_ns
    expected = [_ids(first.retrieve(q)) for q in QUERIES]

    caplog.clear()
    again = HybridRetriever.from_persist_dir(storage, tiny_model_path)  # loads, checks, reads retrieval.json
    assert [_ids(again.retrieve(q)) for q in QUERIES] == expected
    assert "Built a BM25" not in caplog.text and "Rebuilding" not in caplog.text and "another corpus" not in caplog.text
    assert meta.stat().st_mtime_ns == stamp

    new = TextNode(id_=str(uuid.uuid5(uuid.NAMESPACE_URL, "zorblat")), text="A zorblat is the quarterly estimated tax payment.")
    changed = load_index(storage, embed_model=embed)
    changed.insert_nodes([new])
    changed.storage_context.persist(str(storage))
    caplog.clear()
    rebuilt = HybridRetriever.from_index(load_index(storage, embed_model=embed), pipeline=tiny_model_path / "retrieval.json")
    assert "Rebuilding the BM25 index" in caplog.text and "other texts or ids" in caplog.text
    assert "chosen on another corpus than this index's 49 nodes" in caplog.text  # a warning, not an error
    assert new.node_id in _ids(rebuilt.retrieve("when is the zorblat due"))


def test_corrupt_bm25_folder_is_rebuilt_never_half_read(embed, memory_index, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="llama_index_bge_finetune")
    folder = tmp_path / "bm25"
    pipeline = _pipeline(embed, "bm25")
    expected = [_ids(HybridRetriever.from_index(memory_index, pipeline=pipeline, bm25_dir=folder).retrieve(q))
                for q in QUERIES]
    data = folder / "data.csc.index.npy"
    data.write_bytes(data.read_bytes()[:-8] + b"\x00" * 8)  # same size, other bytes
    caplog.clear()
    retriever = HybridRetriever.from_index(memory_index, pipeline=pipeline, bm25_dir=folder)
    assert "Rebuilding the BM25 index" in caplog.text and "fails its checksum" in caplog.text
    assert [_ids(retriever.retrieve(q)) for q in QUERIES] == expected
    (folder / "bm25_meta.json").write_text("{", encoding="utf-8")  # a torn write
    caplog.clear()
    retriever = HybridRetriever.from_index(memory_index, pipeline=pipeline, bm25_dir=folder)
    assert "unreadable" in caplog.text and [_ids(retriever.retrieve(q)) for q in QUERIES] == expected
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "todo.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputExistsError, match="holds other files"):
        HybridRetriever.from_index(memory_index, pipeline=pipeline, bm25_dir=foreign)
    assert (foreign / "todo.txt").read_text(encoding="utf-8") == "mine"


def test_pipeline_chosen_for_another_model_is_refused(embed, memory_index, _tiny_model_master, caplog):
    import torch
    from sentence_transformers import SentenceTransformer

    other = SentenceTransformer(str(_tiny_model_master), device="cpu")
    with torch.no_grad():
        next(other.parameters()).add_(0.01)
    stale = _pipeline(embed, model_fingerprint=fingerprint_embed_model(other).digest)
    with pytest.raises(StalePipelineError, match=r"reembed_index.*or choose the pipeline again") as err:
        HybridRetriever.from_index(memory_index, pipeline=stale)
    assert isinstance(err.value, StaleVectorsError) and "hybrid zscore w=0.4" in str(err.value)

    digest = fingerprint_embed_model(embed).digest
    for written in (digest[:12], f"sha256:{digest}", fingerprint_embed_model(embed).to_dict()):
        HybridRetriever.from_index(memory_index, pipeline=_pipeline(embed, "dense", model_fingerprint=written))

    caplog.set_level(logging.WARNING, logger="llama_index_bge_finetune")
    elsewhere = _pipeline(embed, corpus_digest=text_digest(["another corpus"], ["x"]))
    assert HybridRetriever.from_index(memory_index, pipeline=elsewhere).retrieve(QUERIES[0])
    assert "was chosen on another corpus" in caplog.text


def test_malformed_pipelines_name_the_fix(embed, memory_index, tmp_path):
    with pytest.raises(MissingFilesError, match="retrieval.json"):
        HybridRetriever.from_index(memory_index, pipeline=tmp_path)
    with pytest.raises(IntegrationError, match="gives no fusion"):
        HybridRetriever.from_index(memory_index, pipeline={**_pipeline(embed), "fusion": None})
    with pytest.raises(IntegrationError, match="one of dense, bm25, hybrid"):
        HybridRetriever.from_index(memory_index, pipeline={**_pipeline(embed), "pipeline": "sparse"})
    with pytest.raises(IntegrationError, match="version-2"):
        HybridRetriever.from_index(memory_index, pipeline={**_pipeline(embed), "version": 2})
    with pytest.raises(IntegrationError, match="at least similarity_top_k"):
        HybridRetriever.from_index(memory_index, pipeline=_pipeline(embed), similarity_top_k=10, candidate_k=5)


def test_qdrant_local_mode_hybrid_and_a_collection_without_text(embed, memory_index, tmp_path):
    require_module("qdrant_client", QDRANT)
    require_module("llama_index.vector_stores.qdrant", QDRANT)
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(tmp_path / "qdrant"))
    store = QdrantVectorStore(client=client, collection_name="docs")
    index = VectorStoreIndex(_nodes(), storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed)
    record_embed_model(index)
    reopened = VectorStoreIndex.from_vector_store(QdrantVectorStore(client=client, collection_name="docs"), embed_model=embed)
    retriever = HybridRetriever.from_index(reopened, pipeline=_pipeline(embed), similarity_top_k=5, candidate_k=20,
                                           bm25_dir=tmp_path / "bm25")
    reference = HybridRetriever.from_index(memory_index, pipeline=_pipeline(embed), similarity_top_k=5, candidate_k=20)
    for query in QUERIES:
        hits = retriever.retrieve(query)
        assert _ids(hits) == _ids(reference.retrieve(query))
        assert all(h.node.get_content() == CORPUS[h.node.node_id] for h in hits)
    assert (tmp_path / "bm25" / "bm25_meta.json").is_file()

    for point in client.scroll("docs", limit=100, with_payload=True)[0]:  # strip the text, keep vectors and metadata
        content = json.loads(point.payload["_node_content"])
        content["text"] = ""
        client.set_payload("docs", payload={"_node_content": json.dumps(content)}, points=[point.id])
    with pytest.raises(IntegrationError, match=r"keeps no node text.*nodes=nodes"):
        HybridRetriever.from_index(reopened, pipeline=_pipeline(embed), bm25_dir=tmp_path / "bm25")
    given = HybridRetriever.from_index(reopened, pipeline=_pipeline(embed), similarity_top_k=5, candidate_k=20,
                                       nodes=_nodes(), bm25_dir=tmp_path / "bm25")
    hits = given.retrieve(QUERIES[0])
    assert _ids(hits) == _ids(reference.retrieve(QUERIES[0]))
    assert all(h.node.get_content() == CORPUS[h.node.node_id] for h in hits)  # the given nodes' text
    client.close()


def test_chroma_persistent_client_hybrid(embed, memory_index, tmp_path):
    chromadb = require_module("chromadb", CHROMA)
    require_module("llama_index.vector_stores.chroma", CHROMA)
    from llama_index.vector_stores.chroma import ChromaVectorStore

    path = str(tmp_path / "chroma")
    collection = chromadb.PersistentClient(path=path).get_or_create_collection("docs", metadata={"hnsw:space": "cosine"})
    index = VectorStoreIndex(_nodes(), storage_context=StorageContext.from_defaults(
        vector_store=ChromaVectorStore(chroma_collection=collection)), embed_model=embed)
    record_embed_model(index)
    reopened = VectorStoreIndex.from_vector_store(
        ChromaVectorStore(chroma_collection=chromadb.PersistentClient(path=path).get_collection("docs")), embed_model=embed)
    retriever = HybridRetriever.from_index(reopened, pipeline=_pipeline(embed), similarity_top_k=5, candidate_k=20,
                                           bm25_dir=tmp_path / "bm25")
    reference = HybridRetriever.from_index(memory_index, pipeline=_pipeline(embed), similarity_top_k=5, candidate_k=20)
    for query in QUERIES:
        hits = retriever.retrieve(query)
        assert _ids(hits) == _ids(reference.retrieve(query))
        assert all(h.node.get_content() == CORPUS[h.node.node_id] for h in hits)
        assert all(h.node.metadata["section"] == list(CORPUS).index(h.node.node_id) for h in hits)


def test_query_engine_round_trip_and_reranker_candidates(embed, memory_index, _tiny_model_master):
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    from llama_index_bge_finetune.reranking import FinetunedRerank

    retriever = HybridRetriever.from_index(memory_index, pipeline=_pipeline(embed), similarity_top_k=6)
    query = QUERIES[1]
    response = retriever.as_query_engine(llm=MockLLM()).query(query)
    assert [n.node.node_id for n in response.source_nodes] == _ids(retriever.retrieve(query))
    assert str(response)  # MockLLM echoes the prompt, which holds the retrieved text

    rerank = FinetunedRerank(model=str(_tiny_model_master), top_n=3, device="cpu", max_length=128)
    engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM(), node_postprocessors=[rerank])
    reranked = [n.node.node_id for n in engine.query(query).source_nodes]
    assert len(reranked) == 3 and set(reranked) <= set(_ids(retriever.retrieve(query)))
