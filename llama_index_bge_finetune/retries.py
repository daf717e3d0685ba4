"""When to retry a request to a hosted API, how long to wait, and how to quote its error without the key.

One :class:`RetryPolicy` says it for every client of a hosted API: the question generator (chat
requests), the hosted embedding encoder (embedding requests) and the Batch API client (file and
batch calls). A 429 or 5xx, a time-out or a dropped connection is retried after the server's
``Retry-After`` (when it sends one) or an exponential back-off with jitter; a 400/401/403/404 is not.

Example::

    from llama_index_bge_finetune.retries import RetryPolicy

    policy = RetryPolicy(max_attempts=4, timeout=30.0, backoff_base=0.5, backoff_max=20.0)
    retryable, wait = policy.classify(exc)
    if retryable and attempt + 1 < policy.max_attempts:
        time.sleep(policy.delay(attempt, wait))
    answer = policy.call(lambda: client.files.retrieve(file_id))   # or the whole loop in one call
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import logging
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, FrozenSet, Optional, Tuple, Type, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
Classify = Callable[[BaseException], Tuple[bool, Optional[float]]]

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
"""HTTP statuses worth a retry: time-outs, conflicts, rate limits and server errors."""

_SECRET = re.compile(r"sk-[A-Za-z0-9_*-]{6,}")


def redact_secrets(text: str) -> str:
    """``text`` with every OpenAI-style API key (``sk-...``) replaced by ``sk-***``."""
    return _SECRET.sub("sk-***", text)


#: Exceptions retried whatever their message: time-outs and dropped connections.
RETRYABLE_EXCEPTIONS: Tuple[Type[BaseException], ...] = tuple(dict.fromkeys(
    (asyncio.TimeoutError, TimeoutError, ConnectionError)))  # one class on Python 3.11+

#: Words in the class name of an error without an HTTP status (an SDK's own time-out or connection
#: error, say) that make it worth a retry.
RETRYABLE_ERROR_NAMES: Tuple[str, ...] = ("timeout", "connection", "ratelimit", "unavailable", "overloaded")

#: Statuses whose ``Retry-After`` header says how long to wait (RFC 9110 defines it for these).
_RETRY_AFTER_STATUSES = frozenset({429, 503})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class RetryPolicy:
    """How a client of a hosted API retries: attempts, time-out per request, back-off, what is retried.

    Args:
        max_attempts: requests per item at most, the first one included (``1``: never retry).
        timeout: seconds before one request is abandoned (and retried).
        backoff_base: first back-off delay in seconds; doubles per retry, with jitter.
        backoff_max: longest back-off delay, and longest ``Retry-After`` honoured, in seconds.
        honour_retry_after: wait what a 429's or 503's ``Retry-After`` asks instead of backing off.
        retry_statuses: HTTP statuses that are retried (others, like 400 or 401, are final).
        retry_exceptions: exception classes that are retried whatever they say.
        retry_error_names: words in an exception's class name that make an error without an HTTP
            status retryable (``APITimeoutError``, ``ServiceUnavailableError``, ...).

    Raises:
        ValueError: a field out of range.

    Example::

        from llama_index_bge_finetune.evaluation import HostedEmbeddingEncoder
        from llama_index_bge_finetune.generation import QuestionGenerator
        from llama_index_bge_finetune.retries import RetryPolicy

        patient = RetryPolicy(max_attempts=10, timeout=120.0, backoff_max=120.0)
        gen = QuestionGenerator(llm=llm, retry_policy=patient)
        ada = HostedEmbeddingEncoder("text-embedding-3-small", retry_policy=patient)
        RetryPolicy().with_options(max_retries=2).max_attempts   # 3: the older arguments map onto the fields
    """

    max_attempts: int = 7
    timeout: float = 60.0
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    honour_retry_after: bool = True
    retry_statuses: FrozenSet[int] = RETRYABLE_STATUS
    retry_exceptions: Tuple[Type[BaseException], ...] = RETRYABLE_EXCEPTIONS
    retry_error_names: Tuple[str, ...] = RETRYABLE_ERROR_NAMES

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ValueError(f"max_attempts must be a positive integer (1 never retries), got {self.max_attempts!r}.")
        if not _is_number(self.timeout) or self.timeout <= 0:
            raise ValueError(f"timeout must be a number of seconds > 0, got {self.timeout!r}.")
        if not _is_number(self.backoff_base) or not _is_number(self.backoff_max) \
                or not 0 <= self.backoff_base <= self.backoff_max:
            raise ValueError(f"backoff must satisfy 0 <= backoff_base <= backoff_max, got backoff_base="
                             f"{self.backoff_base!r}, backoff_max={self.backoff_max!r}.")
        statuses = frozenset(self.retry_statuses)
        if not all(isinstance(s, int) and 100 <= s <= 599 for s in statuses):
            raise ValueError(f"retry_statuses must be HTTP status codes, got {sorted(statuses, key=str)!r}.")
        exceptions = tuple(self.retry_exceptions)
        if not all(isinstance(e, type) and issubclass(e, BaseException) for e in exceptions):
            raise ValueError(f"retry_exceptions must be exception classes, got {exceptions!r}.")
        names = tuple(self.retry_error_names)
        if not all(isinstance(w, str) and w for w in names):
            raise ValueError(f"retry_error_names must be non-empty words, got {names!r}.")
        object.__setattr__(self, "retry_statuses", statuses)
        object.__setattr__(self, "retry_exceptions", exceptions)
        object.__setattr__(self, "retry_error_names", tuple(w.lower() for w in names))

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt (``max_attempts - 1``)."""
        return self.max_attempts - 1

    def with_options(self, *, max_retries: Optional[int] = None, timeout: Optional[float] = None,
                     backoff_base: Optional[float] = None, backoff_max: Optional[float] = None) -> "RetryPolicy":
        """This policy with the clients' older keyword arguments applied (``None`` keeps a field).

        Raises:
            ValueError: ``max_retries`` is not a non-negative integer, or a field is out of range.
        """
        changes: dict = {}
        if max_retries is not None:
            if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
                raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}.")
            changes["max_attempts"] = max_retries + 1
        for name, value in (("timeout", timeout), ("backoff_base", backoff_base), ("backoff_max", backoff_max)):
            if value is not None:
                changes[name] = value
        return dataclasses.replace(self, **changes) if changes else self

    def classify(self, exc: BaseException) -> Tuple[bool, Optional[float]]:
        """(retry it?, seconds the server asked to wait or ``None``) for an exception from any HTTP or LLM client."""
        if isinstance(exc, self.retry_exceptions):
            return True, None
        response = getattr(exc, "response", None)
        status = getattr(exc, "status_code", None) or getattr(response, "status_code", None)
        if isinstance(status, int):
            wait = None
            if self.honour_retry_after and status in _RETRY_AFTER_STATUSES:
                wait = retry_after(getattr(response, "headers", None))
            return status in self.retry_statuses, wait
        name = type(exc).__name__.lower()
        return any(word in name for word in self.retry_error_names), None

    def delay(self, attempt: int, wait: Optional[float] = None) -> float:
        """Seconds to sleep after failed attempt number ``attempt`` (from 0), given the server's ``wait``."""
        return backoff_delay(attempt, wait if self.honour_retry_after else None, self.backoff_base, self.backoff_max)

    def call(self, fn: Callable[[], T], classify: Optional[Classify] = None) -> T:
        """``fn()``, retried as this policy says; the last error is raised when no attempt succeeds.

        Args:
            fn: one attempt (it should apply :attr:`timeout` itself, e.g. through its client).
            classify: replaces :meth:`classify` (to retry, say, a malformed answer too).
        """
        judge = classify or self.classify
        for attempt in range(self.max_attempts):
            try:
                return fn()
            except Exception as exc:
                retryable, wait = judge(exc)
                if not retryable or attempt + 1 >= self.max_attempts:
                    raise
                pause = self.delay(attempt, wait)
                logger.debug("Request failed (%s: %s); retry %d of %d in %.2f s.", type(exc).__name__,
                             redact_secrets(str(exc))[:200], attempt + 1, self.max_retries, pause)
                time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover


#: The policy used when a client is given none (and none of the older keyword arguments).
DEFAULT_POLICY = RetryPolicy()


def classify_error(exc: BaseException) -> Tuple[bool, Optional[float]]:
    """(retry it?, seconds the server asked us to wait) under the default :class:`RetryPolicy`."""
    return DEFAULT_POLICY.classify(exc)


def retry_after(headers: Any) -> Optional[float]:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), ``None`` when absent."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def backoff_delay(attempt: int, wait: Optional[float], base: float, maximum: float) -> float:
    """Seconds before retry number ``attempt + 1``: the server's ``wait`` plus a little jitter, else exponential."""
    if wait is not None:
        return min(maximum, wait) + random.uniform(0, 0.1 * wait)
    return min(maximum, base * 2**attempt) * random.uniform(0.5, 1.0)
