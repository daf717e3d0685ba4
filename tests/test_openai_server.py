"""The local OpenAI-compatible test server, driven by the real openai SDK and llama-index clients."""

from __future__ import annotations

import time

import openai
import pytest

from tests.openai_server import DELIMITER, OpenAITestServer, passage_hash

PASSAGE = "Photosynthesis converts light energy into chemical energy stored in glucose molecules."


def _prompt(passage: str = PASSAGE, n: int = 2) -> str:
    return f"Context:\n{DELIMITER}\n{passage}\n{DELIMITER}\nWrite {n} questions about it."


def _client(server: OpenAITestServer, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test-abc", **kw)


def test_chat_answers_deterministically_from_the_passage(openai_server):
    client = _client(openai_server)
    msgs = [{"role": "user", "content": _prompt(n=3)}]
    first = client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    second = client.chat.completions.create(model="gpt-4o-mini", messages=msgs)
    text = first.choices[0].message.content
    assert text == second.choices[0].message.content
    lines = text.splitlines()
    assert len(lines) == 3 and lines[0].startswith("1. ") and "Photosynthesis" in lines[0]
    assert first.usage.total_tokens > 0
    assert openai_server.per_passage[passage_hash(PASSAGE)] == 2
    assert openai_server.auth_headers == ["Bearer sk-test-abc"] * 2


@pytest.mark.parametrize(
    "style,marker",
    [("bulleted", "- "), ("q_prefix", "Q1: "), ("json", "```json"), ("preamble", "Here are"), ("bold", "**Question 1:**")],
)
def test_answer_styles(openai_server, style, marker):
    openai_server.configure(answer_style=style)
    out = _client(openai_server).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": _prompt()}]
    )
    assert out.choices[0].message.content.startswith(marker)


def test_429_carries_retry_after_and_500_is_counted(openai_server):
    openai_server.configure(rate_429=1.0, retry_after=2)
    client = _client(openai_server, max_retries=0)
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": _prompt()}])
    assert err.value.response.headers["Retry-After"] == "2"
    openai_server.configure(rate_429=0.0, rate_500=1.0)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": _prompt()}])
    assert openai_server.status_counts[429] == 1 and openai_server.status_counts[500] == 1


def test_fault_fractions_are_seeded_and_roughly_as_configured(openai_server):
    openai_server.configure(rate_429=0.3, seed=7)
    client = _client(openai_server, max_retries=0)
    outcomes = []
    for i in range(40):
        try:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": _prompt(f"passage number {i}")}])
            outcomes.append(200)
        except openai.RateLimitError:
            outcomes.append(429)
    assert 4 <= outcomes.count(429) <= 20
    with OpenAITestServer(rate_429=0.3, seed=7) as again:
        client2 = _client(again, max_retries=0)
        replay = []
        for i in range(40):
            try:
                client2.chat.completions.create(model="m", messages=[{"role": "user", "content": _prompt(f"passage number {i}")}])
                replay.append(200)
            except openai.RateLimitError:
                replay.append(429)
    assert replay == outcomes


def test_hang_exceeds_client_timeout(openai_server):
    openai_server.configure(rate_hang=1.0, hang_seconds=5)
    client = _client(openai_server, max_retries=0, timeout=0.3)
    start = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": _prompt()}])
    assert time.monotonic() - start < 3


def test_malformed_answers_hold_no_question(openai_server):
    openai_server.configure(rate_malformed=1.0)
    out = _client(openai_server).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": _prompt()}]
    )
    assert "?" not in out.choices[0].message.content


def test_embeddings_batch_normalized_and_similar_for_shared_words(openai_server):
    client = _client(openai_server)
    texts = ["the cat sat on the mat", "a cat sat on a mat", "quantum chromodynamics lattice"]
    out = client.embeddings.create(model="text-embedding-3-small", input=texts)  # SDK asks for base64
    vecs = [d.embedding for d in out.data]
    assert out.model == "text-embedding-3-small" and len(vecs) == 3 and out.usage.total_tokens > 0
    dot = lambda a, b: sum(x * y for x, y in zip(a, b))  # noqa: E731
    assert abs(dot(vecs[0], vecs[0]) - 1) < 1e-5
    assert dot(vecs[0], vecs[1]) > dot(vecs[0], vecs[2])


def test_llama_index_clients_work_against_it(openai_server):
    from llama_index.embeddings.openai import OpenAIEmbedding
    from llama_index.llms.openai import OpenAI

    llm = OpenAI(model="gpt-4o-mini", api_base=openai_server.base_url, api_key="sk-test-li")
    assert "?" in llm.complete(_prompt()).text
    emb = OpenAIEmbedding(model_name="text-embedding-3-small", api_base=openai_server.base_url, api_key="sk-test-li")
    assert len(emb.get_text_embedding_batch(["one text", "two texts"])) == 2
    models = _client(openai_server).models.list()
    assert "gpt-4o-mini" in [m.id for m in models.data]
