"""RetryPolicy: one description of attempts, time-outs, back-off and what is retried, for every hosted client."""

from __future__ import annotations

import dataclasses

import pytest

from llama_index_bge_finetune.retries import RetryPolicy, classify_error


class _StatusError(Exception):
    def __init__(self, status: int, headers=None) -> None:
        super().__init__(f"HTTP {status} from sk-secret-key-123456")
        self.status_code = status
        self.response = type("Response", (), {"status_code": status, "headers": headers or {}})()


def test_defaults_are_the_clients_former_defaults_and_the_policy_is_frozen():
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.max_retries, policy.timeout, policy.backoff_base, policy.backoff_max) == \
        (7, 6, 60.0, 1.0, 60.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.timeout = 5.0  # type: ignore[misc]
    assert hash(policy) == hash(RetryPolicy())


@pytest.mark.parametrize("bad, message", [
    ({"max_attempts": 0}, "max_attempts"), ({"max_attempts": 2.5}, "max_attempts"), ({"timeout": 0}, "timeout"),
    ({"backoff_base": -1}, "backoff"), ({"backoff_base": 5, "backoff_max": 1}, "backoff"),
    ({"retry_statuses": {"429"}}, "retry_statuses"), ({"retry_exceptions": (int,)}, "retry_exceptions"),
])
def test_fields_out_of_range_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**bad)


def test_the_older_arguments_map_onto_the_fields():
    policy = RetryPolicy(max_attempts=3, timeout=10.0)
    assert policy.with_options() is policy
    changed = policy.with_options(max_retries=0, backoff_base=0.0, backoff_max=5.0)
    assert (changed.max_attempts, changed.timeout, changed.backoff_base, changed.backoff_max) == (1, 10.0, 0.0, 5.0)
    with pytest.raises(ValueError, match="max_retries"):
        policy.with_options(max_retries=-1)


def test_what_is_retried_and_how_long_to_wait():
    policy = RetryPolicy()
    assert policy.classify(_StatusError(429, {"retry-after": "2"})) == (True, 2.0)
    assert policy.classify(_StatusError(503, {"retry-after-ms": "250"})) == (True, 0.25)
    assert policy.classify(_StatusError(500)) == (True, None)
    assert policy.classify(_StatusError(401)) == (False, None)
    assert policy.classify(TimeoutError()) == (True, None)
    assert policy.classify(type("APIConnectionError", (Exception,), {})()) == (True, None)
    assert policy.classify(ValueError("no")) == (False, None)
    assert classify_error(_StatusError(429, {"retry-after": "2"})) == (True, 2.0)  # the default policy

    strict = RetryPolicy(retry_statuses=frozenset({500}), retry_exceptions=(KeyError,), honour_retry_after=False)
    assert strict.classify(_StatusError(429, {"retry-after": "2"})) == (False, None)
    assert strict.classify(KeyError("x")) == (True, None)
    assert strict.delay(0, wait=30.0) <= strict.backoff_base  # Retry-After ignored: the back-off applies
    assert 29.9 < RetryPolicy(backoff_max=60.0).delay(0, wait=30.0) <= 33.0  # honoured, plus jitter


def test_call_retries_what_the_policy_retries_and_raises_the_last_error():
    policy = RetryPolicy(max_attempts=3, backoff_base=0.0, backoff_max=0.0)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise _StatusError(503)
        return "ok"

    assert policy.call(flaky) == "ok" and len(calls) == 3
    calls.clear()
    with pytest.raises(_StatusError):
        policy.call(lambda: calls.append(1) or (_ for _ in ()).throw(_StatusError(500)))
    assert len(calls) == 3, "three attempts, then the error"
    calls.clear()
    with pytest.raises(_StatusError):
        policy.call(lambda: calls.append(1) or (_ for _ in ()).throw(_StatusError(400)))
    assert len(calls) == 1, "a final error is not retried"
    calls.clear()
    assert policy.call(lambda: calls.append(1) or (1 / 0 if len(calls) < 2 else "ok"),
                       classify=lambda exc: (isinstance(exc, ZeroDivisionError), None)) == "ok"
