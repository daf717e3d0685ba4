"""A hosted embedding model (OpenAI or any OpenAI-compatible ``/embeddings`` endpoint) as an evaluation encoder.

Every text is paid for once: vectors are cached on disk per text
(:class:`~llama_index_bge_finetune.encoding.hosted_text_cache.HostedVectorCache`) batch by batch, so
a second run sends nothing and an interrupted run re-sends only what it never got back. Before
the first request the encoder logs what the texts not yet cached will cost
(:mod:`~llama_index_bge_finetune.encoding.hosted_cost`). Requests go out in batches (by count
and tokens), several at once, through the ``openai`` client; a 429 waits the server's
``Retry-After``, a 5xx, a time-out or a malformed answer is retried with exponential back-off.

The API key comes from ``api_key`` or ``OPENAI_API_KEY`` and goes only into the request header:
never into the cache, the report or a log line.

Example::

    from llama_index_bge_finetune.evaluation import HostedEmbeddingEncoder, compare_models

    ada = HostedEmbeddingEncoder("text-embedding-3-small")   # OPENAI_API_KEY, OPENAI_BASE_URL from the environment
    report = compare_models({"base": "BAAI/bge-small-en-v1.5", "tuned": "out/model", "ada": ada}, "val.json")
    report.save("report/")   # the report carries ada's cost line
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.encoding.encoders import Encoder
from llama_index_bge_finetune.encoding.hosted_text_cache import HostedVectorCache
from llama_index_bge_finetune.encoding.hosted_cost import CostEstimate, approx_tokens, estimate_cost
from llama_index_bge_finetune.retries import RetryPolicy, redact_secrets

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://api.openai.com/v1"
#: OpenAI accepts up to 2,048 inputs and 300,000 tokens per embeddings request; these stay well below.
DEFAULT_BATCH_SIZE = 256
DEFAULT_BATCH_TOKENS = 100_000


class MalformedEmbeddings(ValueError):
    """A 200 answer that is not one vector per input (bad JSON, missing or ragged vectors): retried."""


class HostedEmbeddingEncoder(Encoder):
    """Embeds texts with a hosted model over an OpenAI-compatible ``POST /embeddings`` endpoint.

    Args:
        model: the hosted model, e.g. ``"text-embedding-3-small"``.
        name: its label in reports (default: ``model``).
        api_base: the endpoint's base URL (default ``$OPENAI_BASE_URL``, else OpenAI's).
        api_key: the API key (default ``$OPENAI_API_KEY``); required.
        dimensions: ask the model for shorter vectors (text-embedding-3 models); part of the cache key.
        cache_dir: the embedding cache folder (default ``$BGE_FINETUNE_CACHE_DIR`` or
            ``~/.cache/llama-index-bge-finetune/embeddings``); vectors go to ``hosted/vectors.sqlite`` there.
        max_in_flight: requests running at once.
        batch_size: texts per request at most.
        max_batch_tokens: estimated tokens per request at most (characters / 4).
        retry_policy: attempts per batch, time-out per request, back-off and what is retried
            (default: :class:`~llama_index_bge_finetune.retries.RetryPolicy`'s defaults).
        timeout: seconds before one request is abandoned (and retried); overrides ``retry_policy``'s.
        max_retries: retries per batch after the first attempt; overrides ``retry_policy``'s.
        backoff_base: first back-off delay in seconds, doubling per retry; overrides ``retry_policy``'s.
        backoff_max: longest back-off delay (and ``Retry-After`` honoured); overrides ``retry_policy``'s.
        on_estimate: called with the cost line before the first request of an evaluation (it is
            also logged at INFO).

    Raises:
        EvaluationError: no API key, or a bad option.
    """

    backend = "hosted"

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        name: str = "",
        api_base: Optional[str] = None,
        api_key: Optional[str] = None,
        dimensions: Optional[int] = None,
        cache_dir: Union[str, "os.PathLike[str]", None] = None,
        max_in_flight: int = 8,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_batch_tokens: int = DEFAULT_BATCH_TOKENS,
        retry_policy: Optional[RetryPolicy] = None,
        timeout: Optional[float] = None,
        max_retries: Optional[int] = None,
        backoff_base: Optional[float] = None,
        backoff_max: Optional[float] = None,
        on_estimate: Optional[Callable[[str], None]] = None,
    ) -> None:
        if not model or not isinstance(model, str):
            raise EvaluationError(f"model must name a hosted embedding model, e.g. 'text-embedding-3-small'; got {model!r}.")
        for option, value in (("max_in_flight", max_in_flight), ("batch_size", batch_size),
                              ("max_batch_tokens", max_batch_tokens)):
            if not isinstance(value, int) or value < 1:
                raise EvaluationError(f"{option} must be a positive integer, got {value!r}.")
        if dimensions is not None and (not isinstance(dimensions, int) or dimensions < 1):
            raise EvaluationError(f"dimensions must be a positive integer or None, got {dimensions!r}.")
        if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
            raise EvaluationError(f"retry_policy must be a RetryPolicy, got {type(retry_policy).__name__}.")
        try:
            self.retry_policy = (retry_policy or RetryPolicy()).with_options(
                max_retries=max_retries, timeout=timeout, backoff_base=backoff_base, backoff_max=backoff_max)
        except ValueError as exc:
            raise EvaluationError(str(exc)) from None
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY", "")
        if not key:
            raise EvaluationError(
                f"The hosted model {model!r} needs an API key: set the OPENAI_API_KEY environment variable "
                "(it is read from the environment only and never written to a file)."
            )
        self.model = model
        self.name = name or model
        self.api_base = (api_base or os.environ.get("OPENAI_BASE_URL") or DEFAULT_API_BASE).rstrip("/")
        self.dimensions = dimensions
        self.source = f"openai:{model}"
        self.query_instruction = None
        self.max_in_flight = max_in_flight
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.on_estimate = on_estimate
        self.estimate: Optional[CostEstimate] = None
        self.requests = 0  # every request sent, failed ones included
        self.tokens_reported = 0  # input tokens the server says it embedded
        self.texts_sent = 0
        self._key = key
        self._cache = HostedVectorCache(cache_dir)
        self._lock = threading.Lock()
        self._client: Any = None
        self._fp: Optional[str] = None

    @property
    def timeout(self) -> float:
        """Seconds before one request is abandoned (the retry policy's)."""
        return self.retry_policy.timeout

    @property
    def max_retries(self) -> int:
        """Retries per batch after the first attempt (the retry policy's)."""
        return self.retry_policy.max_retries

    # ------------------------------------------------------------------ the Encoder contract
    @property
    def cache_key(self) -> str:
        """What the cached vectors are filed under: the model, and the dimensions when asked for."""
        return self.model if self.dimensions is None else f"{self.model}@{self.dimensions}"

    def plan(self, texts: Sequence[str]) -> CostEstimate:
        """Estimate (and log, and pass to ``on_estimate``) the cost of the texts not yet cached; sends nothing."""
        unique = list(dict.fromkeys(texts))
        cached = self._cache.get_many(self.cache_key, unique)
        todo = [t for t in unique if t not in cached]
        self.estimate = estimate_cost(self.model, todo, n_cached=len(cached))
        line = f"{self.name}, {self.estimate.line()}" if self.name != self.model else self.estimate.line()
        logger.info("Hosted embedding cost, before any request: %s", line)
        if self.on_estimate is not None:
            self.on_estimate(line)
        return self.estimate

    def describe(self) -> dict:
        """The report's view: model, endpoint (without credentials), and the cost line and usage."""
        info = super().describe()
        info["endpoint"] = _public_url(self.api_base)
        cost = self.estimate.to_dict() if self.estimate is not None else {}
        info["cost"] = {**cost, "requests": self.requests, "texts_sent": self.texts_sent,
                        "tokens_reported": self.tokens_reported}
        return info

    def _fingerprint_parts(self) -> Sequence[Any]:
        return [self.cache_key]

    def _encode(self, texts: List[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        unique = list(dict.fromkeys(texts))
        found = self._cache.get_many(self.cache_key, unique)
        todo = [t for t in unique if t not in found]
        if todo and self.estimate is None:  # called outside an evaluation: say the cost before paying it
            self.plan(unique)
        if todo:
            found.update(self._fetch(todo))
        return np.stack([found[t] for t in texts])

    # ------------------------------------------------------------------ requests
    def _batches(self, texts: List[str]) -> List[List[str]]:
        batches: List[List[str]] = []
        current: List[str] = []
        tokens = 0
        for text in texts:
            n = approx_tokens(text)
            if current and (len(current) >= self.batch_size or tokens + n > self.max_batch_tokens):
                batches.append(current)
                current, tokens = [], 0
            current.append(text)
            tokens += n
        if current:
            batches.append(current)
        return batches

    def _fetch(self, texts: List[str]) -> Dict[str, np.ndarray]:
        """Vectors of ``texts`` from the endpoint; each batch is cached as soon as it arrives."""
        batches = self._batches(texts)
        logger.info("Embedding %d texts with %s in %d requests (%d at once) ...", len(texts), self.model,
                    len(batches), self.max_in_flight)
        pool = ThreadPoolExecutor(max_workers=self.max_in_flight, thread_name_prefix="hosted-embeddings")
        try:
            futures = {pool.submit(self._request, batch): batch for batch in batches}
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            failed = next((f for f in done if f.exception() is not None), None)
            if failed is not None:  # stop sending; requests already running finish and are cached
                for future in pending:
                    future.cancel()
                wait(pending)
                raise failed.exception()  # type: ignore[misc]
            found: Dict[str, np.ndarray] = {}
            for future, batch in futures.items():
                found.update(zip(batch, future.result()))
            return found
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _request(self, batch: List[str]) -> np.ndarray:
        """One batch's vectors, retried on 429 (after ``Retry-After``), 5xx, time-outs and malformed answers."""
        body: Dict[str, Any] = {"model": self.model, "input": batch, "encoding_format": "base64"}
        if self.dimensions is not None:
            body["dimensions"] = self.dimensions
        client, raw = self._openai()
        policy = self.retry_policy
        for attempt in range(policy.max_attempts):
            with self._lock:
                self.requests += 1
            try:
                response = client.post("/embeddings", cast_to=raw, body=body)
                vectors, tokens = parse_embeddings(response.content, len(batch))
                self._cache.put_many(self.cache_key, batch, vectors)  # paid for: kept even if the run stops now
                with self._lock:
                    self.tokens_reported += tokens
                    self.texts_sent += len(batch)
                return vectors
            except Exception as exc:  # openai's errors and our MalformedEmbeddings: classified below
                retryable, wait_s = (True, None) if isinstance(exc, MalformedEmbeddings) else policy.classify(exc)
                reason = f"{type(exc).__name__}: {redact_secrets(str(exc))[:300]}"
                if not retryable or attempt + 1 == policy.max_attempts:
                    tries = "" if not retryable else f" after {attempt + 1} attempts"
                    raise EvaluationError(
                        f"The embeddings endpoint {_public_url(self.api_base)} failed for {self.model!r}{tries}: {reason}. "
                        "Vectors received so far are cached; rerun to continue (check the model name, the key and "
                        "--api-base if this is not a temporary error)."
                    ) from None
                delay = policy.delay(attempt, wait_s)
                logger.debug("Embedding request failed (%s); retry %d in %.2f s.", reason, attempt + 1, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _openai(self) -> Tuple[Any, Any]:
        """The openai client (built once, without its own retries: they happen here) and httpx's raw response type."""
        import httpx
        import openai

        with self._lock:
            if self._client is None:
                self._client = openai.OpenAI(api_key=self._key, base_url=self.api_base, max_retries=0,
                                             timeout=self.timeout)
        return self._client, httpx.Response


def parse_embeddings(content: bytes, n_inputs: int) -> Tuple[np.ndarray, int]:
    """(vectors in input order, tokens reported) of an embeddings answer; :class:`MalformedEmbeddings` if it is not one."""
    try:
        data = json.loads(content)
        items = sorted(data["data"], key=lambda d: int(d["index"]))
        rows = [_vector(item["embedding"]) for item in items]
        tokens = int((data.get("usage") or {}).get("prompt_tokens") or 0)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise MalformedEmbeddings(f"the answer is not an embeddings list ({type(exc).__name__}): {content[:80]!r}") from exc
    if len(rows) != n_inputs or len({len(r) for r in rows}) > 1 or (rows and not len(rows[0])):
        raise MalformedEmbeddings(f"the answer holds {len(rows)} vectors of sizes {sorted({len(r) for r in rows})} "
                                  f"for {n_inputs} inputs")
    return np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32), tokens


def _vector(embedding: Any) -> np.ndarray:
    if isinstance(embedding, str):  # encoding_format="base64": little-endian float32
        return np.frombuffer(base64.b64decode(embedding, validate=True), dtype="<f4").astype(np.float32)
    return np.asarray(embedding, dtype=np.float32)


def _public_url(url: str) -> str:
    """``url`` without user, password or query (where credentials could hide)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
