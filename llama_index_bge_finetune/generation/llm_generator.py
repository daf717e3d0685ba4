"""Generate questions for nodes with any LlamaIndex LLM: concurrent, retried, resumable."""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Tuple, Union

from llama_index.core.llms import LLM
from llama_index.core.schema import BaseNode

from llama_index_bge_finetune.errors import GenerationError
from llama_index_bge_finetune.generation._common import build_dataset, run_sync, skip_empty, unique_nodes
from llama_index_bge_finetune.generation.checkpoint import Checkpoint, entry_key
from llama_index_bge_finetune.generation.http_client import aiohttp_client
from llama_index_bge_finetune.generation.openai_direct import Answer, MalformedAnswer, direct_chat
from llama_index_bge_finetune.generation.parsing import parse_questions
from llama_index_bge_finetune.generation.prompts import DEFAULT_QA_GENERATE_PROMPT_TMPL, check_prompt_template
from llama_index_bge_finetune.generation.result import GenerationResult, NodeFailure, Usage
from llama_index_bge_finetune.retries import RetryPolicy, redact_secrets

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
Send = Callable[[str], Awaitable[Answer]]
#: Requests in flight by default. Against a server answering in 100 ms, 200 nodes cannot take less
#: than 200 x 0.1 / 16 = 1.25 s at 16 in flight, 0.63 s at 32. OpenAI's usage tiers 2 and up allow
#: 5,000 requests a minute for gpt-4o-mini, far above 32 requests of ~1-2 s each; on tier 1 (500 a
#: minute) the server answers 429 with Retry-After, which is honoured (see ``_ask``).
DEFAULT_MAX_IN_FLIGHT = 32


class _NoQuestions(Exception):
    """The answer held no usable question (retried like a transient error)."""


class QuestionGenerator:
    """Writes ``num_questions_per_chunk`` questions per node with an LLM, many requests at once.

    Up to ``max_in_flight`` requests run concurrently; a failed request is retried with
    exponential back-off and jitter (a 429's ``Retry-After`` is honoured), each request has a
    time-out, and a node that still fails is reported in ``result.failures`` with its reason
    instead of being skipped silently. With ``checkpoint_path`` every finished node is
    appended to a JSONL file at once, so a rerun after a crash asks only for what is missing.

    Args:
        llm: any LlamaIndex LLM; ``None`` uses ``Settings.llm`` (OpenAI by default).
        num_questions_per_chunk: questions asked per node.
        qa_generate_prompt_tmpl: prompt with ``{context_str}`` and ``{num_questions_per_chunk}``.
        max_in_flight: requests running at once.
        timeout: seconds before one request is abandoned (and retried); overrides ``retry_policy``'s.
        max_retries: retries per node after the first attempt; overrides ``retry_policy``'s.
        backoff_base: first back-off delay in seconds, doubling per retry; overrides ``retry_policy``'s.
        backoff_max: longest back-off delay (and ``Retry-After`` honoured); overrides ``retry_policy``'s.
        direct_requests: send a stock ``OpenAI`` chat model's requests straight through its own
            openai client when no LlamaIndex handler traces LLM calls (about half the CPU per
            request; see :mod:`~llama_index_bge_finetune.generation.openai_direct`). ``False``
            always calls ``llm.acomplete``.
        retry_policy: attempts per node, time-out per request, back-off and what is retried
            (default: :class:`~llama_index_bge_finetune.retries.RetryPolicy`'s defaults: 7 attempts,
            60 s per request, back-off from 1 s up to 60 s).

    Example::

        from llama_index.core.schema import TextNode
        from llama_index.llms.openai import OpenAI
        from llama_index_bge_finetune.generation import QuestionGenerator

        gen = QuestionGenerator(llm=OpenAI(model="gpt-4o-mini"), max_in_flight=32)
        result = gen.generate([TextNode(text="...")], checkpoint_path="train.checkpoint.jsonl")
        result.dataset.save_json("train.json")
        print(result.usage.summary(), result.failures)
    """

    query_source = "llm"

    def __init__(
        self,
        llm: Optional[LLM] = None,
        num_questions_per_chunk: int = 2,
        qa_generate_prompt_tmpl: str = DEFAULT_QA_GENERATE_PROMPT_TMPL,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        backoff_base: Optional[float] = None,
        backoff_max: Optional[float] = None,
        direct_requests: bool = True,
        retry_policy: Optional[RetryPolicy] = None,
    ) -> None:
        if not isinstance(num_questions_per_chunk, int) or num_questions_per_chunk < 1:
            raise GenerationError(f"num_questions_per_chunk must be a positive integer, got {num_questions_per_chunk!r}.")
        if not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise GenerationError(f"max_in_flight must be a positive integer, got {max_in_flight!r}.")
        if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
            raise GenerationError(f"retry_policy must be a RetryPolicy, got {type(retry_policy).__name__}.")
        try:
            self.retry_policy = (retry_policy or RetryPolicy()).with_options(
                max_retries=max_retries, timeout=timeout, backoff_base=backoff_base, backoff_max=backoff_max)
        except ValueError as exc:
            raise GenerationError(str(exc)) from None
        self.llm = llm if llm is not None else _settings_llm()
        self.num_questions_per_chunk = num_questions_per_chunk
        self.qa_generate_prompt_tmpl = check_prompt_template(qa_generate_prompt_tmpl)
        self.max_in_flight = max_in_flight
        self.direct_requests = direct_requests

    @property
    def timeout(self) -> float:
        """Seconds before one request is abandoned (the retry policy's)."""
        return self.retry_policy.timeout

    @property
    def max_retries(self) -> int:
        """Retries per node after the first attempt (the retry policy's)."""
        return self.retry_policy.max_retries

    @property
    def model_name(self) -> str:
        """The model's name as the checkpoint key and the cost estimate see it."""
        try:
            name = self.llm.metadata.model_name
        except (AttributeError, NotImplementedError):
            name = ""
        return f"{type(self.llm).__name__}:{name or 'unknown'}"

    def describe(self) -> str:
        """A short label for the CLI, e.g. ``OpenAI gpt-4o-mini``."""
        return self.model_name.replace(":", " ")

    # ------------------------------------------------------------------ public
    def generate(
        self,
        nodes: Sequence[BaseNode],
        checkpoint_path: Optional[Union[str, Path]] = None,
        on_progress: Optional[ProgressCallback] = None,
    ) -> GenerationResult:
        """Generate questions for ``nodes`` (blocking); see :meth:`agenerate`."""
        return run_sync(self.agenerate(nodes, checkpoint_path=checkpoint_path, on_progress=on_progress))

    async def agenerate(
        self,
        nodes: Sequence[BaseNode],
        checkpoint_path: Optional[Union[str, Path]] = None,
        on_progress: Optional[ProgressCallback] = None,
    ) -> GenerationResult:
        """Generate questions for ``nodes``; ``on_progress(done, total)`` is called as nodes finish.

        Nodes already in the checkpoint (same text, prompt, model and question count) are not
        asked again. The dataset holds the nodes that got questions, in input order.
        """
        pairs, skipped = skip_empty(unique_nodes(nodes))  # empty or near-empty nodes are never paid for
        model = self.model_name
        usage = Usage(model=model.split(":", 1)[1])
        failures: List[NodeFailure] = []
        ckpt = Checkpoint(checkpoint_path) if checkpoint_path is not None else None
        questions, todo = self._plan(pairs, ckpt, usage)
        total = len(pairs)
        done = total - sum(len(ids) for _, ids in todo.values())
        if on_progress:
            on_progress(done, total)
        logger.info("Generating questions for %d nodes (%d from the checkpoint).", len(todo), done)
        llm = _without_inner_retries(self.llm, self.timeout)
        send = self._sender(llm)
        semaphore = asyncio.Semaphore(self.max_in_flight)

        async def one(key: str, text: str, node_ids: List[str]) -> None:
            nonlocal done
            async with semaphore:
                outcome = await self._ask(send, text, usage)
            if isinstance(outcome, NodeFailure):
                for node_id in node_ids:
                    failures.append(NodeFailure(node_id=node_id, reason=outcome.reason, attempts=outcome.attempts))
                logger.warning("No questions for node %s after %d attempts: %s", node_ids[0], outcome.attempts, outcome.reason)
            else:
                for node_id in node_ids:
                    questions[node_id] = outcome
                if ckpt is not None:
                    ckpt.append(key, {"questions": outcome, "model": model})
            done += len(node_ids)
            if on_progress:
                on_progress(done, total)

        try:
            await asyncio.gather(*(one(key, text, ids) for key, (text, ids) in todo.items()))
        finally:
            if ckpt is not None:
                ckpt.close()
            await _close_async_client(llm, self.llm)
        order = {node_id: i for i, (node_id, _) in enumerate(pairs)}
        failures.sort(key=lambda f: order[f.node_id])
        logger.info("Generation done: %s; %d nodes failed.", usage.summary(), len(failures))
        return GenerationResult(dataset=build_dataset(pairs, questions, self.query_source), failures=failures + skipped,
                                usage=usage)

    # ------------------------------------------------------------------ internals
    def _plan(self, pairs: Sequence[Tuple[str, str]], ckpt: Optional[Checkpoint],
              usage: Usage) -> Tuple[Dict[str, List[str]], Dict[str, Tuple[str, List[str]]]]:
        """(node id -> questions found in the checkpoint, key -> (text, node ids) still to ask).

        Equal texts share one key and are asked once; ``usage.cached_nodes`` counts the checkpoint's.
        """
        questions: Dict[str, List[str]] = {}
        todo: Dict[str, Tuple[str, List[str]]] = {}
        model = self.model_name
        for node_id, text in pairs:
            key = entry_key(text, self.qa_generate_prompt_tmpl, model, self.num_questions_per_chunk)
            cached = ckpt.get(key) if ckpt else None
            if cached is not None:
                questions[node_id] = list(cached["questions"])
                usage.cached_nodes += 1
            else:
                todo.setdefault(key, (text, []))[1].append(node_id)
        return questions, todo

    def _prompt(self, text: str) -> str:
        """The prompt that asks for one node's questions."""
        return self.qa_generate_prompt_tmpl.format(context_str=text, num_questions_per_chunk=self.num_questions_per_chunk)

    def _parse_answer(self, answer: str, text: str) -> List[str]:
        """The usable items in one answer (an empty list is retried); subclasses parse other answers."""
        return parse_questions(answer, passage=text, limit=self.num_questions_per_chunk)

    def _sender(self, llm: LLM) -> Send:
        """How one prompt is sent: straight through the openai client when allowed, else ``llm.acomplete``."""
        direct = direct_chat(llm) if self.direct_requests else None
        if direct is not None:
            logger.debug("Sending chat requests straight through %s's openai client.", type(llm).__name__)
            return direct

        async def through_llm(prompt: str) -> Answer:
            response = await llm.acomplete(prompt)
            prompt_tokens, completion_tokens = _token_counts(response)
            return Answer(text=response.text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

        return through_llm

    async def _ask(self, send: Send, text: str, usage: Usage) -> Union[List[str], NodeFailure]:
        prompt = self._prompt(text)
        policy = self.retry_policy
        reason = ""
        for attempt in range(policy.max_attempts):
            wait: Optional[float] = None
            try:
                usage.requests += 1
                answer = await _within(send(prompt), policy.timeout + 1.0)
                usage.prompt_tokens += answer.prompt_tokens
                usage.completion_tokens += answer.completion_tokens
                found = self._parse_answer(answer.text, text)
                if not found:
                    raise _NoQuestions(f"the answer held no usable question: {answer.text[:80]!r}")
                return found
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any LLM SDK's error: classified, retried or recorded per node
                retryable, wait = _classify(exc, policy)
                reason = f"{type(exc).__name__}: {redact_secrets(str(exc))[:200]}"
                if not retryable:
                    return NodeFailure(node_id="", reason=reason, attempts=attempt + 1)
            if attempt + 1 < policy.max_attempts:  # the server's Retry-After, else exponential back-off, with jitter
                await asyncio.sleep(policy.delay(attempt, wait))
        return NodeFailure(node_id="", reason=reason, attempts=policy.max_attempts)


if sys.version_info >= (3, 11):
    async def _within(awaitable: Any, seconds: float) -> Any:
        """``await awaitable``, raising ``TimeoutError`` after ``seconds`` (no extra task per request)."""
        async with asyncio.timeout(seconds):
            return await awaitable
else:  # pragma: no cover - Python 3.10
    _within = asyncio.wait_for


def _settings_llm() -> LLM:
    from llama_index.core import Settings

    try:
        return Settings.llm
    except (ValueError, ImportError) as exc:
        raise GenerationError(
            f"No LLM to write questions ({exc}). Pass llm=..., set Settings.llm, set OPENAI_API_KEY, "
            "or use OfflineQuestionGenerator, which needs no LLM."
        ) from exc


def _classify(exc: BaseException, policy: RetryPolicy) -> Tuple[bool, Optional[float]]:
    """(retry it?, seconds the server asked us to wait); an answer without questions is retried too."""
    if isinstance(exc, (_NoQuestions, MalformedAnswer)):
        return True, None
    return policy.classify(exc)


def _token_counts(response: Any) -> Tuple[int, int]:
    """(prompt tokens, completion tokens) of a LlamaIndex completion response, 0 where not reported."""
    raw = getattr(response, "raw", None)
    info = getattr(raw, "usage", None) if raw is not None and not isinstance(raw, dict) else (raw or {}).get("usage")
    if info is not None:
        get = info.get if isinstance(info, dict) else lambda k: getattr(info, k, None)
        return int(get("prompt_tokens") or 0), int(get("completion_tokens") or 0)
    extra = getattr(response, "additional_kwargs", None) or {}
    return int(extra.get("prompt_tokens") or 0), int(extra.get("completion_tokens") or 0)


def _without_inner_retries(llm: LLM, timeout: float) -> LLM:
    """A copy of ``llm`` whose own client neither retries nor waits longer than ``timeout``.

    Retrying happens here (with Retry-After and per-node failure records); a client that also
    retries would multiply requests and hide failures. The copy gets fresh HTTP clients so
    they bind to the running event loop.
    """
    fields = type(llm).model_fields
    updates: Dict[str, Any] = {}
    if "max_retries" in fields:
        updates["max_retries"] = 0
    if "timeout" in fields:
        updates["timeout"] = timeout
    if "reuse_client" in fields:  # one client for the run, not one (with its own connection pool) per request
        updates["reuse_client"] = True
    if not updates:
        return llm
    clone = llm.model_copy(update=updates)
    private = getattr(clone, "__pydantic_private__", None) or {}
    if "_client" in private or "_aclient" in private:
        fresh = {k: None for k in ("_client", "_aclient") if k in private}
        if "_async_http_client" in private and private["_async_http_client"] is None:
            fresh["_async_http_client"] = aiohttp_client(str(getattr(clone, "api_base", "") or ""))
        clone.__pydantic_private__ = {**private, **fresh}
    return clone


async def _close_async_client(clone: LLM, original: LLM) -> None:
    if clone is original:
        return
    private = getattr(clone, "__pydantic_private__", None) or {}
    http = private.get("_async_http_client")
    if http is not None and http is (getattr(original, "__pydantic_private__", None) or {}).get("_async_http_client"):
        return  # the user's own HTTP client (which closing the openai client would close too) stays open
    for client, method in ((private.get("_aclient"), "close"), (http, "aclose")):
        close = getattr(client, method, None)
        if close is not None:
            try:
                await close()
            except (RuntimeError, OSError) as exc:
                logger.debug("Closing the LLM's async client failed: %s", exc)
