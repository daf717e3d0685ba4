"""The generator's direct path: a stock OpenAI LLM's chat requests sent through its own openai client.

The path must send what the LLM itself would send, fail and retry the same way, and step aside
whenever a user traces LLM calls or the LLM builds its requests differently.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest
from llama_index.core.callbacks import CallbackManager, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.llms import MockLLM
from llama_index.llms.openai import OpenAI

from llama_index_bge_finetune.generation import QuestionGenerator
from llama_index_bge_finetune.generation.llm_generator import _without_inner_retries
from llama_index_bge_finetune.generation.openai_direct import DirectChat, MalformedAnswer, direct_chat, parse_chat_completion
from tests.generation_helpers import generation_nodes, local_llm
from tests.openai_server import passage_hash

FAST = dict(backoff_base=0.01, backoff_max=0.5)


class _Recorder(BaseEventHandler):
    """Collects the class names of the instrumentation events it is sent."""

    names: List[str] = []

    @classmethod
    def class_name(cls) -> str:
        return "Recorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.names.append(type(event).__name__)


def _bodies(server: Any) -> List[str]:
    return sorted(json.dumps(b, sort_keys=True) for b in server.bodies)


def test_direct_requests_send_what_the_llm_sends_and_give_the_same_dataset(openai_server):
    llm_args: Dict[str, Any] = dict(temperature=0.3, max_tokens=200, additional_kwargs={"seed": 7, "user": "u-1"},
                                  system_prompt="Answer briefly.", default_headers={"X-Team": "search"})
    nodes = generation_nodes(6)
    assert isinstance(direct_chat(_without_inner_retries(local_llm(openai_server, **llm_args), 5.0)), DirectChat)
    direct = QuestionGenerator(llm=local_llm(openai_server, **llm_args), **FAST).generate(nodes)
    sent_direct = _bodies(openai_server)
    openai_server.reset_counters()
    through_llm = QuestionGenerator(llm=local_llm(openai_server, **llm_args), direct_requests=False, **FAST).generate(nodes)
    assert sent_direct == _bodies(openai_server) and len(sent_direct) == 6
    assert json.loads(sent_direct[0])["seed"] == 7 and json.loads(sent_direct[0])["max_tokens"] == 200
    assert direct.dataset.queries == through_llm.dataset.queries and direct.dataset.corpus == through_llm.dataset.corpus
    assert (direct.usage.prompt_tokens, direct.usage.completion_tokens) == (
        through_llm.usage.prompt_tokens, through_llm.usage.completion_tokens) != (0, 0)
    assert all(h == "Bearer sk-test-0000" for h in openai_server.auth_headers)


def test_traced_llm_calls_go_through_the_llms_own_methods(openai_server):
    clone = _without_inner_retries(local_llm(openai_server), 5.0)
    recorder = _Recorder(names=[])
    root = get_dispatcher()
    root.add_event_handler(recorder)
    try:
        assert direct_chat(clone) is None
        result = QuestionGenerator(llm=local_llm(openai_server), **FAST).generate(generation_nodes(3))
    finally:
        root.event_handlers.remove(recorder)
    assert len(result.dataset.corpus) == 3
    assert recorder.names.count("LLMCompletionEndEvent") == 3, recorder.names
    assert isinstance(direct_chat(clone), DirectChat)  # nobody listens any more
    debug = local_llm(openai_server, callback_manager=CallbackManager([LlamaDebugHandler()]))
    assert direct_chat(_without_inner_retries(debug, 5.0)) is None


class _OwnKwargs(OpenAI):
    """An OpenAI subclass that builds its requests its own way."""

    def _get_model_kwargs(self, **kwargs: Any) -> Dict[str, Any]:
        return {**super()._get_model_kwargs(**kwargs), "temperature": 0.0}


@pytest.mark.parametrize("make", [
    lambda base: _OwnKwargs(model="gpt-4o-mini", api_base=base, api_key="sk-test-1"),
    lambda base: OpenAI(model="gpt-4o-mini", api_base=base, api_key="sk-test-1", logprobs=True),
    lambda base: OpenAI(model="gpt-4o-mini", api_base=base, api_key="sk-test-1", additional_kwargs={"extra_body": {"x": 1}}),
    lambda base: OpenAI(model="gpt-3.5-turbo-instruct", api_base=base, api_key="sk-test-1"),
    lambda base: MockLLM(),
], ids=["subclass-builds-its-own-request", "logprobs", "client-options", "completion-model", "other-llm"])
def test_what_cannot_be_sent_as_the_llm_would_goes_through_the_llm(openai_server, make):
    assert direct_chat(make(openai_server.base_url)) is None


def test_answers_cut_off_mid_json_are_retried_then_reported(openai_server):
    openai_server.configure(rate_broken_json=0.5, seed=4)
    result = QuestionGenerator(llm=local_llm(openai_server), max_retries=6, **FAST).generate(generation_nodes(8))
    assert not result.failures and len(result.dataset.corpus) == 8
    assert openai_server.chat_requests > 8  # some answers were broken and asked again
    openai_server.configure(rate_broken_json=1.0)
    nodes = generation_nodes(2, "x")
    result = QuestionGenerator(llm=local_llm(openai_server), max_retries=2, **FAST).generate(nodes)
    assert len(result.failures) == 2 and all("not a chat completion" in f.reason and f.attempts == 3 for f in result.failures)
    assert openai_server.per_passage[passage_hash(nodes[0].text)] == 3


def test_faults_through_the_llms_own_methods(openai_server):
    # The path a tracing user takes keeps the retries, Retry-After and failure records.
    openai_server.configure(rate_429=0.2, rate_500=0.2, retry_after=0.02, seed=5, always_fail=("Document node 2:",))
    gen = QuestionGenerator(llm=local_llm(openai_server), direct_requests=False, max_retries=4, **FAST)
    result = gen.generate(generation_nodes(12))
    assert [f.node_id for f in result.failures] == ["node-2"] and len(result.dataset.corpus) == 11
    assert "InternalServerError" in result.failures[0].reason and result.failures[0].attempts == 5
    assert openai_server.status_counts[429] > 0


def test_parse_chat_completion_reads_text_and_usage_or_names_the_problem():
    body = {"choices": [{"message": {"role": "assistant", "content": "1. Why?"}}], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
    answer = parse_chat_completion(json.dumps(body).encode())
    assert (answer.text, answer.prompt_tokens, answer.completion_tokens) == ("1. Why?", 5, 2)
    refusal = {"choices": [{"message": {"role": "assistant", "content": None, "refusal": "no"}}]}
    assert parse_chat_completion(json.dumps(refusal).encode()).text == ""
    for broken in (b'{"choices": [{"mess', b'{"choices": []}', b'{"error": "x"}', b"[1, 2]"):
        with pytest.raises(MalformedAnswer, match="not a chat completion"):
            parse_chat_completion(broken)
