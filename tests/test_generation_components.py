"""QuestionGenerationTransform in an IngestionPipeline; QueryLogRecorder in a live query engine."""

from __future__ import annotations

import asyncio
import threading

import pytest
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import NodeWithScore, TextNode

from llama_index_bge_finetune import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.errors import GenerationError
from llama_index_bge_finetune.generation import (
    OfflineQuestionGenerator,
    QueryLogRecorder,
    QuestionGenerationTransform,
    QuestionGenerator,
)
from tests.generation_helpers import local_llm

DOCS = [
    Document(text="Volcanoes erupt when magma pressure exceeds crust strength. Lava cools into basalt rock.", doc_id="d1"),
    Document(text="Glaciers carve valleys over millennia. Moraines mark where the ice stopped advancing.", doc_id="d2"),
    Document(text="Enzymes lower activation energy. Temperature and pH change how fast enzymes work.", doc_id="d3"),
]


def _embed_model(server):
    from llama_index.embeddings.openai import OpenAIEmbedding

    return OpenAIEmbedding(model_name="text-embedding-3-small", api_base=server.base_url, api_key="sk-test-emb")


def test_transform_generates_during_ingestion_and_passes_nodes_through(openai_server, tmp_path):
    transform = QuestionGenerationTransform(
        generator=QuestionGenerator(llm=local_llm(openai_server), backoff_base=0.01),
        checkpoint_path=tmp_path / "ckpt.jsonl",
        output_path=tmp_path / "qa.json",
    )
    pipeline = IngestionPipeline(transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0), transform])
    nodes = pipeline.run(documents=DOCS)
    assert len(nodes) == 3 and all(not n.metadata.get("questions") for n in nodes)  # unchanged
    ds = transform.dataset
    assert set(ds.corpus) == {n.node_id for n in nodes} and len(ds.queries) == 6 and ds.query_source == "llm"
    assert EmbeddingQAFinetuneDataset.from_json(tmp_path / "qa.json") == ds
    assert transform.to_dict()["generator_description"].startswith("OpenAI gpt-4o-mini")
    # async path, same checkpoint: nothing is asked again
    again = QuestionGenerationTransform(
        generator=QuestionGenerator(llm=local_llm(openai_server)), checkpoint_path=tmp_path / "ckpt.jsonl"
    )
    asyncio.run(again.acall(nodes))
    assert openai_server.chat_requests == 3 and again.dataset == ds


def test_transform_offline_jsonl_output(tmp_path):
    transform = QuestionGenerationTransform(generator=OfflineQuestionGenerator(method="ict"), output_path=tmp_path / "qa.jsonl")
    out = IngestionPipeline(transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0), transform]).run(documents=DOCS)
    assert len(out) == 3
    loaded = EmbeddingQAFinetuneDataset.from_json(tmp_path / "qa.jsonl")
    assert loaded == transform.dataset and loaded.query_source == "pseudo" and len(loaded.queries) == 6


def test_recorder_in_a_live_query_engine(openai_server, tmp_path):
    log = tmp_path / "log.jsonl"
    recorder = QueryLogRecorder(output_path=str(log), top_k=1)
    index = VectorStoreIndex.from_documents(DOCS, embed_model=_embed_model(openai_server))
    engine = index.as_query_engine(llm=local_llm(openai_server), similarity_top_k=2, node_postprocessors=[recorder])
    response = engine.query("Why do volcanoes erupt with magma?")
    assert len(response.source_nodes) == 2  # passed through unchanged
    engine.query("How do glaciers carve valleys?")
    engine.query("How do glaciers carve valleys?")  # the same query and result is recorded once
    ds = recorder.dataset()
    assert ds.query_source == "user" and sorted(ds.queries.values()) == ["How do glaciers carve valleys?", "Why do volcanoes erupt with magma?"]
    texts = {ds.queries[q]: ds.corpus[d[0]] for q, d in ds.relevant_docs.items()}
    assert "magma" in texts["Why do volcanoes erupt with magma?"] and "Glaciers" in texts["How do glaciers carve valleys?"]
    recorder.close()
    assert EmbeddingQAFinetuneDataset.from_json(log) == ds.model_copy(update={"query_source": None})
    # a restarted app continues the same log, tolerating a torn last line
    with open(log, "a", encoding="utf-8") as f:
        f.write('{"kind": "query", "id": "torn", "te')
    restarted = QueryLogRecorder(output_path=str(log))
    assert restarted.dataset() == ds
    restarted.record("What lowers activation energy?", [NodeWithScore(node=TextNode(id_="e", text=DOCS[2].text), score=0.9)])
    assert len(restarted.dataset().queries) == 3 and len(QueryLogRecorder(output_path=str(log)).dataset().queries) == 3


def test_recorder_judge_and_min_score(openai_server):
    judge = local_llm(openai_server)
    recorder = QueryLogRecorder(top_k=3, judge_llm=judge, min_score=0.2)
    nodes = [
        NodeWithScore(node=TextNode(id_="a", text="Magma pressure makes volcanoes erupt."), score=0.9),
        NodeWithScore(node=TextNode(id_="b", text="Glaciers carve valleys."), score=0.8),
        NodeWithScore(node=TextNode(id_="c", text="Volcanoes again, low score."), score=0.1),
    ]
    assert recorder.postprocess_nodes(nodes, query_str="When do volcanoes erupt?") == nodes
    ds = recorder.dataset()
    assert list(ds.relevant_docs.values()) == [["a"]]  # b judged irrelevant, c under min_score
    assert openai_server.chat_requests == 2
    assert recorder.record("Unrelated quantum chromodynamics?", nodes[1:2]) is None


def test_recorder_is_thread_safe(tmp_path):
    log = tmp_path / "log.jsonl"
    recorder = QueryLogRecorder(output_path=str(log), top_k=2)

    def worker(w: int) -> None:
        for i in range(25):
            node = TextNode(id_=f"n{i % 5}", text=f"passage {i % 5}")
            recorder.record(f"query {w}-{i}?", [NodeWithScore(node=node, score=1.0)])

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorder.close()
    assert len(recorder.dataset().queries) == 200
    reloaded = EmbeddingQAFinetuneDataset.from_json(log)
    assert len(reloaded.queries) == 200 and len(reloaded.corpus) == 5 and not reloaded.problems()


def test_recorder_rejects_bad_judge_prompt():
    with pytest.raises(GenerationError, match="query_str"):
        QueryLogRecorder(judge_prompt="Is it relevant? {context_str}")
