"""The LLM-judged reranker data path against the local OpenAI-compatible server, with faults."""

from __future__ import annotations

import inspect

from llama_index.core.schema import Document

from llama_index_bge_finetune.reranking import generate_ce_fine_tuning_dataset, generate_synthetic_queries_over_documents
from llama_index_bge_finetune.reranking.judge import parse_judgment
from tests.generation_helpers import TOPICS, local_llm
from tests.openai_server import judge_answer
from tests.requirements import PEER, require_module

FAST = dict(backoff_base=0.01, backoff_max=0.5)


def _documents():
    return [Document(text=f"{a.capitalize()} are studied in laboratory {i}. The {a} respond to {TOPICS[(i + 5) % 16]}.",
                     doc_id=f"d{i}") for i, a in enumerate(TOPICS[:6])]


def _embed(server):
    from llama_index.embeddings.openai import OpenAIEmbedding

    return OpenAIEmbedding(model="text-embedding-3-small", api_base=server.base_url, api_key="sk-test-0000")


def test_same_arguments_as_the_peer_functions():
    peer = require_module("llama_index.finetuning.cross_encoders.dataset_gen", PEER)
    for ours, theirs in ((generate_ce_fine_tuning_dataset, peer.generate_ce_fine_tuning_dataset),
                         (generate_synthetic_queries_over_documents, peer.generate_synthetic_queries_over_documents)):
        p = list(inspect.signature(theirs).parameters)
        assert list(inspect.signature(ours).parameters)[: len(p)] == p


def test_parse_judgment():
    assert parse_judgment("Yes.") == ["yes"] and parse_judgment(" no") == ["no"]
    assert parse_judgment("Relevant: Yes") == ["yes"] and parse_judgment("I cannot say") == []


def test_judge_with_faults_labels_failures_usage_and_resume(openai_server, tmp_path):
    openai_server.configure(rate_429=0.2, rate_500=0.1, retry_after=0.02, seed=5, always_fail=("laboratory 3.",))
    questions = ["Where do volcanoes erupt?", "Why are glaciers cold?"]
    ckpt = tmp_path / "judge.jsonl"
    samples = generate_ce_fine_tuning_dataset(_documents(), questions, llm=local_llm(openai_server), top_k=3,
                                              embed_model=_embed(openai_server), checkpoint_path=ckpt, max_in_flight=4, **FAST)
    assert len(samples) + len(samples.failures) == 6
    assert samples.failures and all("500" in f.reason or "Internal" in f.reason for f in samples.failures)
    for s in samples:  # the server says yes when query and passage share a content word
        assert s.score == (1 if judge_answer(f"Query: {s.query}", s.context.strip()) == "Yes." else 0)
        assert s.first_stage_score is not None
    assert any(s.score == 1 for s in samples) and any(s.score == 0 for s in samples)
    assert samples.usage.requests > len(samples) and samples.usage.total_tokens > 0
    assert openai_server.max_in_flight <= 4
    before = openai_server.chat_requests
    again = generate_ce_fine_tuning_dataset(_documents(), questions, llm=local_llm(openai_server), top_k=3,
                                            embed_model=_embed(openai_server), checkpoint_path=ckpt, **FAST)
    assert [(s.query, s.context, s.score) for s in again] == [(s.query, s.context, s.score) for s in samples]
    assert again.usage.cached_nodes == len(samples)
    # Only the failed pairs are asked again (each up to 1 + max_retries times).
    assert openai_server.chat_requests - before <= len(samples.failures) * 7


def test_synthetic_queries_split_like_the_peer(openai_server):
    questions = generate_synthetic_queries_over_documents(_documents()[:3], num_questions_per_chunk=2,
                                                          llm=local_llm(openai_server), **FAST)
    assert len(questions) == 6 and all(q.endswith("?") and not q[0].isdigit() for q in questions)
    assert questions.usage.requests == 3 and not questions.failures
