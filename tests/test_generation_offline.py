"""OfflineQuestionGenerator and default_generator."""

from __future__ import annotations

import time

import pytest
from llama_index.core.schema import TextNode

from llama_index_bge_finetune.errors import GenerationError
from llama_index_bge_finetune.generation import (
    OfflineQuestionGenerator,
    QuestionGenerator,
    default_generator,
)
from llama_index_bge_finetune.generation.offline import node_title, split_sentences

TEXT = (
    "Lists are mutable sequences. They are typically used to store collections of homogeneous items. "
    "Tuples are immutable sequences, typically used to store collections of heterogeneous data. "
    "Ranges represent an immutable sequence of numbers."
)


def test_split_sentences_and_titles():
    assert len(split_sentences(TEXT)) == 4
    assert node_title(TextNode(text=TEXT, metadata={"title": "Sequence Types"})) == "Sequence Types"
    assert node_title(TextNode(text=TEXT, metadata={"file_name": "sequence_types.md"})) == "sequence types"
    assert node_title(TextNode(text="Sequence Types\n\n" + TEXT)) == "Sequence Types"
    assert node_title(TextNode(text=TEXT)) is None


def test_methods_produce_pseudo_queries_from_the_passage():
    node = TextNode(id_="n1", text=TEXT, metadata={"title": "Sequence Types"})
    for method, first in (("title", "Sequence Types"), ("title_ict", "Sequence Types")):
        ds = OfflineQuestionGenerator(method=method, num_questions_per_chunk=3).generate([node]).dataset
        assert list(ds.queries.values())[0] == first and ds.query_source == "pseudo"
    ict = OfflineQuestionGenerator(method="ict", num_questions_per_chunk=2).generate([node]).dataset
    assert len(ict.queries) == 2 and all(q in TEXT for q in ict.queries.values())
    again = OfflineQuestionGenerator(method="ict", num_questions_per_chunk=2).generate([node]).dataset
    assert again == ict  # deterministic
    other_seed = OfflineQuestionGenerator(method="ict", num_questions_per_chunk=1, seed=4).generate([node]).dataset
    assert other_seed.relevant_docs == {q: ["n1"] for q in other_seed.queries}


def test_nodes_without_material_are_reported():
    nodes = [TextNode(id_="ok", text=TEXT), TextNode(id_="one-word", text="Supercalifragilisticexpialidocious."),
             TextNode(id_="tiny", text="Hi.")]
    result = OfflineQuestionGenerator(method="ict").generate(nodes)
    assert list(result.dataset.corpus) == ["ok"]
    failed, skipped = result.failures
    assert failed.node_id == "one-word" and failed.kind == "failed" and "no title" in failed.reason
    assert skipped.node_id == "tiny" and skipped.kind == "skipped" and skipped.chars == 3


def test_checkpoint_and_progress(tmp_path):
    nodes = [TextNode(id_=f"n{i}", text=TEXT.replace("Lists", f"Lists{i}")) for i in range(5)]
    calls = []
    ckpt = tmp_path / "offline.jsonl"
    first = OfflineQuestionGenerator().generate(nodes, checkpoint_path=ckpt, on_progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (5, 5) and len(ckpt.read_text().splitlines()) == 5
    second = OfflineQuestionGenerator().generate(nodes, checkpoint_path=ckpt)
    assert second.usage.cached_nodes == 5 and second.dataset == first.dataset


def test_bad_options():
    with pytest.raises(GenerationError, match="ict, title, title_ict"):
        OfflineQuestionGenerator(method="magic")
    with pytest.raises(GenerationError, match="positive"):
        OfflineQuestionGenerator(num_questions_per_chunk=0)
    with pytest.raises(GenerationError, match="min_words"):
        OfflineQuestionGenerator(min_words=10, max_words=5)


def test_readme_demo_corpus_is_fast():
    """CPython's pydoc topics, chunked: the offline default must take seconds, not minutes."""
    from llama_index.core import Document
    from llama_index.core.node_parser import SentenceSplitter
    from pydoc_data.topics import topics

    docs = [Document(text=text, metadata={"title": name}) for name, text in topics.items()]
    nodes = SentenceSplitter(chunk_size=512, chunk_overlap=32).get_nodes_from_documents(docs)
    assert len(nodes) > 200
    start = time.monotonic()
    result = OfflineQuestionGenerator().generate(nodes)
    assert time.monotonic() - start < 10
    assert len(result.dataset.corpus) >= 0.95 * len(nodes)
    assert result.dataset.validate_or_raise() is result.dataset


def test_default_generator_offline_without_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    gen, how = default_generator()
    assert isinstance(gen, OfflineQuestionGenerator) and "offline" in how and "OPENAI_API_KEY" in how


def test_default_generator_uses_openai_with_key(monkeypatch, openai_server):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-env-key")
    monkeypatch.setenv("OPENAI_API_BASE", openai_server.base_url)
    gen, how = default_generator(num_questions_per_chunk=1)
    assert isinstance(gen, QuestionGenerator) and "OpenAI gpt-4o-mini" in how and "sk-test" not in how
    result = gen.generate([TextNode(id_="n", text=TEXT)])
    assert len(result.dataset.queries) == 1 and openai_server.auth_headers == ["Bearer sk-test-env-key"]
