"""QuestionGenerator against the local OpenAI-compatible server through llama-index's OpenAI LLM."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import statistics
import sys
import time
from typing import List

import pytest

from llama_index_bge_finetune.errors import GenerationError
from llama_index_bge_finetune.generation import QuestionGenerator
from llama_index_bge_finetune.retries import RetryPolicy
from tests.generation_helpers import generation_nodes, local_llm
from tests.openai_server import passage_hash

FAST = dict(backoff_base=0.01, backoff_max=0.5)


def test_generates_questions_for_every_node_with_usage_and_progress(openai_server):
    nodes = generation_nodes(12)
    progress = []
    gen = QuestionGenerator(llm=local_llm(openai_server), max_in_flight=4, **FAST)
    result = gen.generate(nodes, on_progress=lambda d, t: progress.append((d, t)))
    ds = result.dataset
    assert ds.query_source == "llm" and not result.failures
    assert list(ds.corpus) == [n.node_id for n in nodes]
    assert len(ds.queries) == 24 and all(q.endswith("?") for q in ds.queries.values())
    assert all(len(docs) == 1 and docs[0] in ds.corpus for docs in ds.relevant_docs.values())
    assert ds.validate_or_raise() is ds
    assert result.usage.requests == 12 and result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert result.usage.cost_usd is not None and result.usage.cost_usd > 0
    assert "gpt-4o-mini" in result.usage.summary()
    assert progress[0] == (0, 12) and progress[-1] == (12, 12) and len(progress) == 13
    assert openai_server.max_in_flight <= 4


def test_faulty_server_every_node_answered_or_failed_with_reason(openai_server):
    openai_server.configure(rate_429=0.2, rate_500=0.1, retry_after=0.02, latency=0.01, seed=3,
                            always_fail=("Document node 7:",))
    nodes = generation_nodes(40)
    gen = QuestionGenerator(llm=local_llm(openai_server), max_in_flight=8, max_retries=4, **FAST)
    result = gen.generate(nodes)
    answered = set(result.dataset.corpus)
    failed = {f.node_id: f for f in result.failures}
    assert answered | set(failed) == {n.node_id for n in nodes} and not answered & set(failed)
    assert set(failed) == {"node-7"}
    assert "InternalServerError" in failed["node-7"].reason and failed["node-7"].attempts == 5
    assert openai_server.status_counts[429] > 0 and openai_server.status_counts[500] > 5
    assert openai_server.per_passage[passage_hash(nodes[7].text)] == 5


def test_429_retry_after_is_honoured(openai_server):
    openai_server.configure(rate_429=1.0, retry_after=0.4)
    gen = QuestionGenerator(llm=local_llm(openai_server), max_retries=1, backoff_base=0.0, backoff_max=5.0)
    start = time.monotonic()
    result = gen.generate(generation_nodes(1))
    assert time.monotonic() - start >= 0.4  # waited Retry-After, not the zero back-off
    assert result.failures and "RateLimitError" in result.failures[0].reason
    assert openai_server.chat_requests == 2  # our single retry, no hidden client retries


def test_hang_times_out_and_is_retried(openai_server):
    openai_server.configure(rate_hang=0.5, hang_seconds=20, seed=1)
    nodes = generation_nodes(6)
    gen = QuestionGenerator(llm=local_llm(openai_server), timeout=0.5, max_retries=6, **FAST)
    start = time.monotonic()
    result = gen.generate(nodes)
    assert time.monotonic() - start < 15
    assert not result.failures and len(result.dataset.corpus) == 6
    assert openai_server.chat_requests > 6  # some requests hung and were asked again


def test_malformed_answers_are_retried_then_reported(openai_server):
    openai_server.configure(rate_malformed=0.5, seed=2)
    gen = QuestionGenerator(llm=local_llm(openai_server), max_retries=5, **FAST)
    result = gen.generate(generation_nodes(8))
    assert not result.failures and len(result.dataset.corpus) == 8
    openai_server.configure(rate_malformed=1.0)
    result = QuestionGenerator(llm=local_llm(openai_server), max_retries=1, **FAST).generate(generation_nodes(2, "x"))
    assert len(result.failures) == 2 and "no usable question" in result.failures[0].reason


def test_a_retry_policy_sets_the_attempts_and_the_older_arguments_override_it(openai_server):
    openai_server.configure(always_fail=("Document node 0:",))
    policy = RetryPolicy(max_attempts=3, timeout=5.0, backoff_base=0.01, backoff_max=0.05)
    gen = QuestionGenerator(llm=local_llm(openai_server), retry_policy=policy)
    assert gen.retry_policy is policy and gen.timeout == 5.0 and gen.max_retries == 2
    result = gen.generate(generation_nodes(2))
    assert [f.attempts for f in result.failures] == [3]
    assert openai_server.per_passage[passage_hash(generation_nodes(2)[0].text)] == 3
    older = QuestionGenerator(llm=local_llm(openai_server), retry_policy=policy, max_retries=0, timeout=2.0)
    assert older.retry_policy == dataclasses.replace(policy, max_attempts=1, timeout=2.0)
    assert [f.attempts for f in older.generate(generation_nodes(1)).failures] == [1]
    with pytest.raises(GenerationError, match="max_retries"):
        QuestionGenerator(llm=local_llm(openai_server), max_retries=-1)
    with pytest.raises(GenerationError, match="backoff"):
        QuestionGenerator(llm=local_llm(openai_server), backoff_base=2.0, backoff_max=1.0)
    with pytest.raises(GenerationError, match="RetryPolicy"):
        QuestionGenerator(llm=local_llm(openai_server), retry_policy={"max_attempts": 2})


def test_auth_error_is_not_retried(openai_server):
    # A 4xx other than 429 is permanent: one request per node.
    openai_server.configure(always_fail=("Document",), fail_status=401)
    result = QuestionGenerator(llm=local_llm(openai_server), **FAST).generate(generation_nodes(3))
    assert len(result.failures) == 3 and all("AuthenticationError" in f.reason for f in result.failures)
    assert openai_server.total_requests == 3


@pytest.mark.parametrize("style", ["bulleted", "q_prefix", "json", "preamble", "bold", "one_line"])
def test_answer_styles_end_to_end(openai_server, style):
    openai_server.configure(answer_style=style)
    nodes = generation_nodes(2)
    result = QuestionGenerator(llm=local_llm(openai_server), num_questions_per_chunk=3, **FAST).generate(nodes)
    assert len(result.dataset.queries) == 6
    assert not any("Here are" in q or q.startswith(("Q1", "-", "*", "[")) for q in result.dataset.queries.values())


def test_checkpoint_resumes_and_prompt_change_invalidates(openai_server, tmp_path):
    ckpt = tmp_path / "ckpt.jsonl"
    nodes = generation_nodes(6)
    first = QuestionGenerator(llm=local_llm(openai_server), **FAST).generate(nodes[:4], checkpoint_path=ckpt)
    assert openai_server.chat_requests == 4 and len(ckpt.read_text().splitlines()) == 4
    again = QuestionGenerator(llm=local_llm(openai_server), **FAST).generate(nodes, checkpoint_path=ckpt)
    assert openai_server.chat_requests == 6 and again.usage.cached_nodes == 4
    assert {q: t for q, t in again.dataset.queries.items() if again.dataset.relevant_docs[q][0] in first.dataset.corpus} == first.dataset.queries
    other_prompt = "Passage:\n---------------------\n{context_str}\n---------------------\nAsk {num_questions_per_chunk} questions."
    QuestionGenerator(llm=local_llm(openai_server), qa_generate_prompt_tmpl=other_prompt, **FAST).generate(nodes, checkpoint_path=ckpt)
    assert openai_server.chat_requests == 12
    other_model = local_llm(openai_server).model_copy(update={"model": "gpt-4o"})
    QuestionGenerator(llm=other_model, **FAST).generate(nodes[:1], checkpoint_path=ckpt)
    assert openai_server.chat_requests == 13


def test_torn_last_line_is_tolerated(openai_server, tmp_path):
    ckpt = tmp_path / "ckpt.jsonl"
    nodes = generation_nodes(3)
    QuestionGenerator(llm=local_llm(openai_server), **FAST).generate(nodes[:2], checkpoint_path=ckpt)
    with open(ckpt, "a", encoding="utf-8") as f:
        f.write('{"key": "abc", "questions": ["What is')  # a write cut by power loss
    result = QuestionGenerator(llm=local_llm(openai_server), **FAST).generate(nodes, checkpoint_path=ckpt)
    assert openai_server.chat_requests == 3 and len(result.dataset.corpus) == 3
    lines = ckpt.read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1])["questions"]  # the new record starts on its own line


def test_api_key_never_in_checkpoint_logs_or_outputs(openai_server, tmp_path, caplog):
    secret = "sk-test-SECRET-6f1e2d"
    openai_server.configure(rate_500=0.3, rate_429=0.2, retry_after=0.01, seed=5)
    caplog.set_level(logging.DEBUG)
    ckpt, out = tmp_path / "ckpt.jsonl", tmp_path / "train.json"
    gen = QuestionGenerator(llm=local_llm(openai_server, api_key=secret), max_retries=1, **FAST)
    result = gen.generate(generation_nodes(10), checkpoint_path=ckpt)
    result.dataset.save_json(out)
    assert any(secret in h for h in openai_server.auth_headers)  # it was really used
    everything = [ckpt.read_text(), out.read_text(), caplog.text, result.usage.summary(), repr(result.failures), repr(gen.describe())]
    assert not any(secret in text for text in everything)


def test_agenerate_inside_a_running_loop_and_sync_from_async(openai_server):
    nodes = generation_nodes(3)
    gen = QuestionGenerator(llm=local_llm(openai_server), **FAST)

    async def main():
        direct = await gen.agenerate(nodes)
        nested = gen.generate(nodes)  # generate() from inside a running loop (Jupyter)
        return direct, nested

    direct, nested = asyncio.run(main())
    assert direct.dataset == nested.dataset and len(direct.dataset.queries) == 6


def test_bad_options_raise_clear_errors(openai_server):
    llm = local_llm(openai_server)
    with pytest.raises(GenerationError, match="context_str"):
        QuestionGenerator(llm=llm, qa_generate_prompt_tmpl="no placeholder")
    with pytest.raises(GenerationError, match="literal braces"):
        QuestionGenerator(llm=llm, qa_generate_prompt_tmpl="{context_str} {other}")
    with pytest.raises(GenerationError, match="max_in_flight"):
        QuestionGenerator(llm=llm, max_in_flight=0)
    with pytest.raises(GenerationError, match="num_questions_per_chunk"):
        QuestionGenerator(llm=llm, num_questions_per_chunk=0)
    with pytest.raises(GenerationError, match="nodes"):
        QuestionGenerator(llm=llm).generate(["plain string"])


def test_no_llm_configured_names_the_fix(monkeypatch):
    from llama_index.core import Settings

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(Settings, "_llm", None)
    with pytest.raises(GenerationError, match="OfflineQuestionGenerator"):
        QuestionGenerator()


def test_equal_texts_are_asked_once(openai_server, tmp_path):
    from llama_index.core.schema import TextNode

    text = generation_nodes(1)[0].text
    nodes = [TextNode(id_="a", text=text), TextNode(id_="b", text=text)]
    result = QuestionGenerator(llm=local_llm(openai_server), **FAST).generate(nodes, checkpoint_path=tmp_path / "c.jsonl")
    assert openai_server.chat_requests == 1 and set(result.dataset.corpus) == {"a", "b"} and len(result.dataset.queries) == 4


def test_requests_use_aiohttp_and_a_users_own_http_client_stays_open(openai_server):
    """Without a client of the user's, requests go through openai's aiohttp transport (httpx's pool costs
    ~5x the CPU per request), closed after the run; a user's own ``async_http_client`` is used and kept open."""
    import httpx
    from httpx_aiohttp import HttpxAiohttpClient

    from llama_index_bge_finetune.generation.llm_generator import DEFAULT_MAX_IN_FLIGHT, _without_inner_retries

    llm = local_llm(openai_server)
    clone = _without_inner_retries(llm, 5.0)
    assert isinstance(clone._async_http_client, HttpxAiohttpClient) and llm._async_http_client is None
    openai_server.configure(latency=0.2)
    result = QuestionGenerator(llm=llm, **FAST).generate(generation_nodes(40))
    assert len(result.dataset.corpus) == 40 and not result.failures
    assert 16 < openai_server.max_in_flight <= DEFAULT_MAX_IN_FLIGHT == 32  # the default in flight

    # reuse_client=False would build a client per request and close the shared one after the first.
    result = QuestionGenerator(llm=local_llm(openai_server, reuse_client=False), **FAST).generate(generation_nodes(6))
    assert len(result.dataset.corpus) == 6 and not result.failures

    async def with_own_client():
        async with httpx.AsyncClient() as own:
            gen = QuestionGenerator(llm=local_llm(openai_server, async_http_client=own), **FAST)
            result = await gen.agenerate(generation_nodes(3))
            return len(result.dataset.corpus), own.is_closed

    assert asyncio.run(with_own_client()) == (3, False)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_QUICKACK is Linux-only")
def test_no_delayed_ack_stall_against_a_server_that_writes_headers_and_body_apart(openai_server):
    """The test server (Python's http.server, like many local OpenAI-compatible shims) sends a response's
    headers and body in two writes without TCP_NODELAY: a client that delays its ACK waits ~40 ms for
    the body on every request. The generator's HTTP client acknowledges at once."""
    from openai import AsyncOpenAI

    from llama_index_bge_finetune.generation.http_client import aiohttp_client

    openai_server.configure(latency=0.0)

    async def round_trips() -> List[float]:
        client = AsyncOpenAI(base_url=openai_server.base_url, api_key="sk-test-0000",
                             http_client=aiohttp_client(openai_server.base_url), max_retries=0)
        seconds = []
        try:
            for _ in range(12):
                start = time.perf_counter()
                await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Context: cats purr."}])
                seconds.append(time.perf_counter() - start)
        finally:
            await client.close()
        return seconds

    seconds = asyncio.run(round_trips())[2:]  # the first calls pay the SDK's lazy imports
    assert statistics.median(seconds) < 0.02, f"round trips {[round(s * 1000) for s in seconds]} ms: a delayed-ACK stall"
