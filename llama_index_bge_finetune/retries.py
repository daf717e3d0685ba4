"""When to retry a request to a hosted API, how long to wait, and how to quote its error without the key.

Shared by the question generator (chat requests) and the hosted embedding encoder (embedding
requests): a 429 or 5xx, a time-out or a dropped connection is retried after the server's
``Retry-After`` (when it sends one) or an exponential back-off with jitter; a 400/401/403/404 is not.

Example::

    from llama_index_bge_finetune.retries import backoff_delay, classify_error

    retryable, wait = classify_error(exc)
    if retryable:
        time.sleep(backoff_delay(attempt, wait, base=1.0, maximum=60.0))
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import time
from typing import Any, Optional, Tuple

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
"""HTTP statuses worth a retry: time-outs, conflicts, rate limits and server errors."""

_SECRET = re.compile(r"sk-[A-Za-z0-9_*-]{6,}")


def redact_secrets(text: str) -> str:
    """``text`` with every OpenAI-style API key (``sk-...``) replaced by ``sk-***``."""
    return _SECRET.sub("sk-***", text)


def classify_error(exc: BaseException) -> Tuple[bool, Optional[float]]:
    """(retry it?, seconds the server asked us to wait) for an exception from any HTTP or LLM client."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, ConnectionError)):
        return True, None
    response = getattr(exc, "response", None)
    status = getattr(exc, "status_code", None) or getattr(response, "status_code", None)
    if isinstance(status, int):
        wait = retry_after(getattr(response, "headers", None)) if status == 429 else None
        return status in RETRYABLE_STATUS, wait
    name = type(exc).__name__.lower()
    return any(word in name for word in ("timeout", "connection", "ratelimit", "unavailable", "overloaded")), None


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
