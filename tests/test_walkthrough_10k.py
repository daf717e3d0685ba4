"""LlamaIndex's embedding fine-tuning walkthrough (Lyft/Uber 10-K PDFs), run with only its imports changed.

The walkthrough: SimpleDirectoryReader -> SentenceSplitter nodes -> generate_qa_embedding_pairs with
OpenAI -> SentenceTransformersFinetuneEngine(train_dataset, ...) -> finetune() -> get_finetuned_model().
Here the OpenAI LLM talks HTTP to the local OpenAI-compatible test server, the model is the tiny random
BERT, and finetune() stops after a few steps: the point is that every call of the walkthrough works on
the real PDFs, including the blank page that the peer pays for and our engine once refused. The PDFs
are page excerpts of the two 10-Ks (``ten_k_excerpts`` in conftest.py, Lyft's blank page among them):
parsing the whole of both would cost this test 32 s of the suite's time and prove nothing more.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.mark.slow
def test_the_10k_walkthrough_runs_with_only_the_imports_changed(ten_k_excerpts: Path, tiny_model_path: Path,
                                                                openai_server, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pdfs = ten_k_excerpts / "pdfs"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-walkthrough")
    monkeypatch.setenv("OPENAI_API_BASE", openai_server.base_url)
    monkeypatch.chdir(tmp_path)

    # ---- the walkthrough, as published (imports changed: ours instead of llama_index.finetuning) ----
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.llms.openai import OpenAI

    from llama_index_bge_finetune import EmbeddingQAFinetuneDataset, generate_qa_embedding_pairs
    from llama_index_bge_finetune import SentenceTransformersFinetuneEngine

    TRAIN_FILES = [str(pdfs / "lyft_2021.pdf")]
    VAL_FILES = [str(pdfs / "uber_2021.pdf")]

    def load_corpus(files, verbose=False):
        reader = SimpleDirectoryReader(input_files=files)
        docs = reader.load_data()
        parser = SentenceSplitter()
        nodes = parser.get_nodes_from_documents(docs, show_progress=verbose)
        return nodes

    train_nodes = load_corpus(TRAIN_FILES)
    val_nodes = load_corpus(VAL_FILES)[:80]  # a fraction of Uber's nodes keeps the test fast

    train_dataset = generate_qa_embedding_pairs(
        llm=OpenAI(model="gpt-3.5-turbo"), nodes=train_nodes, output_path="train_dataset.json"
    )
    train_requests = openai_server.chat_requests
    val_dataset = generate_qa_embedding_pairs(
        llm=OpenAI(model="gpt-3.5-turbo"), nodes=val_nodes, output_path="val_dataset.json"
    )
    train_dataset = EmbeddingQAFinetuneDataset.from_json("train_dataset.json")
    val_dataset = EmbeddingQAFinetuneDataset.from_json("val_dataset.json")

    finetune_engine = SentenceTransformersFinetuneEngine(
        train_dataset,
        model_id=str(tiny_model_path),  # "BAAI/bge-small-en" in the walkthrough; no hub here
        model_output_path="test_model",
        val_dataset=val_dataset,
    )
    finetune_engine.finetune(max_steps=6)  # the walkthrough trains 2 epochs; a few steps prove the path
    embed_model = finetune_engine.get_finetuned_model()
    # ---- end of the walkthrough ----

    blank = [n for n in train_nodes if len(n.get_content().strip()) < 20]
    assert blank, "the Lyft 10-K has a blank page: the case this test is about"
    assert train_requests == len(train_nodes) - len(blank), "blank nodes are never sent to the LLM"
    assert len(train_dataset.corpus) == len(train_nodes) - len(blank)
    assert not set(train_dataset.corpus) & {n.node_id for n in blank}
    assert len(val_dataset.queries) >= 150 and not train_dataset.problems()
    assert finetune_engine.result.steps == 6
    vector = embed_model.get_query_embedding("What was Lyft's revenue in 2021?")
    assert len(vector) == 32 and any(v != 0 for v in vector)
    assert (Path("test_model") / "modules.json").is_file() and os.path.isfile("train_dataset.json")
