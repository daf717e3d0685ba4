"""generate_qa_embedding_pairs: a drop-in for llama-index-finetuning's, without its resume bug."""

from __future__ import annotations

import inspect
import json

import pytest

from llama_index_bge_finetune import EmbeddingQAFinetuneDataset, generate_qa_embedding_pairs
from llama_index_bge_finetune.errors import GenerationError
from tests.generation_helpers import generation_nodes, local_llm
from tests.requirements import PEER, require_module


@pytest.fixture(scope="module")
def peer():
    return require_module("llama_index.finetuning", PEER)


def test_same_arguments_as_the_peer(peer):
    ours = inspect.signature(generate_qa_embedding_pairs).parameters
    theirs = inspect.signature(peer.generate_qa_embedding_pairs).parameters
    assert list(theirs) == list(ours)[: len(theirs)]
    for name in ("num_questions_per_chunk", "retry_limit", "on_failure", "save_every", "output_path", "verbose"):
        assert ours[name].default == theirs[name].default


def test_train_then_val_with_the_default_output_path(openai_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    llm = local_llm(openai_server)
    train_nodes, val_nodes = generation_nodes(6, "train"), generation_nodes(4, "val")
    train = generate_qa_embedding_pairs(train_nodes, llm=llm)
    val = generate_qa_embedding_pairs(val_nodes, llm=llm)  # the tutorial's second call, same default path
    assert set(train.corpus) == {n.node_id for n in train_nodes}
    assert set(val.corpus) == {n.node_id for n in val_nodes}  # the peer returns the train set here
    assert not set(val.queries) & set(train.queries)
    assert openai_server.chat_requests == 10
    assert EmbeddingQAFinetuneDataset.from_json("qa_finetune_dataset.json") == val.model_copy(update={"query_source": "llm"})
    # rerunning train costs no request: its nodes are in the content-keyed checkpoint
    assert generate_qa_embedding_pairs(train_nodes, llm=llm) == train and openai_server.chat_requests == 10


def test_peer_reads_our_output_and_on_failure_fail(openai_server, tmp_path, peer):
    openai_server.configure(always_fail=("Document node 1:",))
    out = tmp_path / "train.json"
    nodes = generation_nodes(3)
    with pytest.raises(GenerationError, match="node-1"):
        generate_qa_embedding_pairs(nodes, llm=local_llm(openai_server), output_path=str(out), on_failure="fail", retry_limit=1)
    loaded = peer.EmbeddingQAFinetuneDataset.from_json(str(out))  # partial result saved, readable by the peer
    assert set(loaded.corpus) == {"node-0", "node-2"} and len(loaded.queries) == 4
    assert all(isinstance(v, list) for v in json.loads(out.read_text())["relevant_docs"].values())
    with pytest.raises(GenerationError, match="on_failure"):
        generate_qa_embedding_pairs(nodes, llm=local_llm(openai_server), on_failure="ignore")
