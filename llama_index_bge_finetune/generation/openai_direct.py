"""Chat requests sent straight through an OpenAI LLM's own client when nothing traces LLM calls.

The generator's client is CPU-bound: with 32 requests in flight on one event loop, the CPU each
request costs, not the server, sets how fast 200 nodes are done. Measured per request against a
loopback server (2-core AMD EPYC, AVX2, benchmarks/RESULTS.md):

- LlamaIndex's ``OpenAI.acomplete``: ~3.5-3.9 ms (instrumentation spans and events, callback
  events, message conversion, then openai's typed call);
- openai's typed ``client.chat.completions.create``: ~2.8 ms (request-parameter transform,
  response models); its first use also imports every openai resource module (~0.5 s);
- openai's generic ``client.post(..., cast_to=httpx.Response)`` with the JSON read here: ~1.5 ms.

:func:`direct_chat` gives the last for a stock ``llama_index.llms.openai.OpenAI`` chat model, with
the request body the LLM itself builds (``_get_model_kwargs``), the same client (key, base URL,
headers, time-out, HTTP client) and openai's own errors (status code, ``Retry-After``), so retries
and failure records are unchanged. It is used only when no LlamaIndex span or event handler and
no callback handler is attached (``LlamaDebugHandler``, Arize Phoenix, Langfuse, ...): a user who
traces LLM calls sees every request through the LLM's own methods. Anything it cannot send
exactly as the LLM would (another LLM class, a subclass that changes how requests are built, a
completion-only model, logprobs, audio, per-request client options) goes through ``acomplete``.

Example::

    from llama_index.llms.openai import OpenAI

    send = direct_chat(OpenAI(model="gpt-4o-mini"))
    if send is not None:
        answer = await send("Write one question about: ...")
        print(answer.text, answer.prompt_tokens)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional

from llama_index.core.llms import LLM

logger = logging.getLogger(__name__)

#: openai request options, not body fields: a body with them is left to the LLM's own path.
_CLIENT_OPTIONS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})
#: The methods through which ``OpenAI.acomplete`` builds a chat request: a subclass that overrides
#: any of them sends something else, so it keeps its own path.
_REQUEST_METHODS = ("acomplete", "achat", "_achat", "_use_chat_completions", "_get_model_kwargs", "_get_aclient")


class MalformedAnswer(ValueError):
    """A 200 answer that is not a chat completion (bad JSON, no choices): retried like a bad answer."""


@dataclass(frozen=True)
class Answer:
    """One chat completion's text and token counts."""

    text: str
    prompt_tokens: int
    completion_tokens: int


class DirectChat:
    """Sends one user message as ``POST /chat/completions`` through ``llm``'s async openai client."""

    def __init__(self, llm: Any, body: Dict[str, Any]) -> None:
        import httpx  # once per run, not per request (and not at start-up: only OpenAI users need it)

        self._llm = llm
        self._body = body
        self._raw = httpx.Response

    async def __call__(self, prompt: str) -> Answer:
        client = self._llm._get_aclient()
        response = await client.post("/chat/completions", cast_to=self._raw, body=request_body(self._body, prompt))
        return parse_chat_completion(response.content)


def request_body(model_kwargs: Dict[str, Any], prompt: str) -> Dict[str, Any]:
    """The ``POST /chat/completions`` body asking ``prompt`` with the LLM's ``model_kwargs`` (see :func:`chat_model_kwargs`)."""
    return {"messages": [{"role": "user", "content": prompt}], "stream": False, **model_kwargs}


def parse_chat_completion(content: bytes) -> Answer:
    """The text and token counts of a chat completion's JSON; :class:`MalformedAnswer` if it is not one."""
    try:
        data = json.loads(content)
        message = data["choices"][0]["message"]
        usage = data.get("usage") or {}
        return Answer(text=message.get("content") or "", prompt_tokens=int(usage.get("prompt_tokens") or 0),
                      completion_tokens=int(usage.get("completion_tokens") or 0))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedAnswer(f"the server's answer is not a chat completion ({type(exc).__name__}): "
                              f"{content[:80]!r}") from exc


def direct_chat(llm: LLM) -> Optional[DirectChat]:
    """A :class:`DirectChat` for ``llm``, or ``None`` when it must go through ``llm.acomplete``."""
    if _llm_calls_are_traced(llm):
        logger.debug("LLM calls are traced: requests go through %s.acomplete.", type(llm).__name__)
        return None
    body = chat_model_kwargs(llm)
    return DirectChat(llm, body) if body is not None else None


def chat_model_kwargs(llm: LLM) -> Optional[Dict[str, Any]]:
    """The body fields (model, temperature, ...) ``llm.acomplete`` sends with every chat request, or ``None``.

    ``None`` when ``llm`` is not a stock ``llama_index.llms.openai.OpenAI`` chat model whose request
    can be written out exactly (another LLM class, a subclass that builds requests its own way, a
    completion-only model, logprobs, audio, per-request client options).
    """
    try:
        from llama_index.llms.openai import OpenAI
    except ImportError:
        return None
    if not isinstance(llm, OpenAI) or any(_defined_by(type(llm), m) is not OpenAI for m in _REQUEST_METHODS):
        return None  # another LLM, a subclass that builds requests its own way, or an OpenAI class without these methods
    if not llm._use_chat_completions({}) or llm.logprobs or (llm.modalities and llm.modalities != ["text"]):
        return None
    body = llm._get_model_kwargs()
    if _CLIENT_OPTIONS & body.keys():
        return None
    try:
        json.dumps(body)
    except (TypeError, ValueError):
        return None
    return body


def _defined_by(cls: type, name: str) -> Optional[type]:
    """The class in ``cls``'s MRO that defines ``name`` (attribute access would give a fresh span wrapper)."""
    return next((c for c in cls.__mro__ if name in vars(c)), None)


def _llm_calls_are_traced(llm: Any) -> bool:
    """True when a callback handler or any LlamaIndex span/event handler would see the LLM's calls."""
    manager = getattr(llm, "callback_manager", None)
    if manager is not None and getattr(manager, "handlers", None):
        return True
    try:
        from llama_index_instrumentation import root_manager
        from llama_index_instrumentation.event_handlers import NullEventHandler
        from llama_index_instrumentation.span_handlers import NullSpanHandler
    except ImportError:  # an instrumentation layer this module does not know: assume it listens
        return True
    for dispatcher in list(root_manager.dispatchers.values()):
        if any(not isinstance(h, NullSpanHandler) for h in dispatcher.span_handlers):
            return True
        if any(not isinstance(h, NullEventHandler) for h in dispatcher.event_handlers):
            return True
    return False
