"""What a set of chat requests will cost, at the live and at the Batch API price, before it is sent.

Prompt tokens are counted on the request bodies with tiktoken when it is installed and knows the
model (the encodings llama-index ships are used, nothing is downloaded), else estimated as
characters / 4. Completion tokens are the request's ``max_tokens`` when set (an upper bound), else
the average of the answers already in the checkpoint, else :data:`TOKENS_PER_QUESTION` per question.

Example::

    estimate = estimate_cost([line["body"] for line in lines], "gpt-4o-mini", num_questions=2)
    print(estimate.summary())  # "Estimated cost of 120 requests to gpt-4o-mini: ... $0.0049 at the Batch API price ..."
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

from llama_index_bge_finetune.generation.result import BATCH_PRICE_FACTOR, PRICES_PER_MTOK, price_per_mtok

logger = logging.getLogger(__name__)

#: Completion tokens per question assumed when nothing better is known (a numbered line of ~20 words).
TOKENS_PER_QUESTION = 30
#: Tokens a chat request adds around each message (role, separators), as OpenAI's cookbook counts them.
_TOKENS_PER_MESSAGE = 4
PRICES_TAKEN = "April 2025"
#: Requests whose prompts are counted token by token; more are estimated from an even sample of this size.
SAMPLE_REQUESTS = 2000


@dataclass(frozen=True)
class CostEstimate:
    """Estimated tokens and US$ of a set of requests; ``live_usd``/``batch_usd`` are ``None`` for an unknown model."""

    model: str
    requests: int
    prompt_tokens: int
    completion_tokens: int
    prompt_basis: str
    completion_basis: str
    live_usd: Optional[float]
    batch_usd: Optional[float]

    def summary(self) -> str:
        """One line for logs and the CLI."""
        tokens = (f"~{self.prompt_tokens:,} prompt tokens ({self.prompt_basis}) + ~{self.completion_tokens:,} "
                  f"completion tokens ({self.completion_basis})")
        if self.live_usd is None or self.batch_usd is None:
            money = (f"the price of {self.model!r} is unknown (known: {', '.join(sorted(PRICES_PER_MTOK))}), "
                     "so no cost can be given")
        else:
            money = (f"${self.live_usd:.4f} at the live price, ${self.batch_usd:.4f} at the Batch API price "
                     f"(OpenAI prices of {PRICES_TAKEN})")
        return f"Estimated cost of {self.requests:,} requests to {self.model}: {tokens}; {money}."


def estimate_cost(bodies: Sequence[Dict[str, Any]], model: str, num_questions: int,
                  checkpoint: Optional[Any] = None) -> CostEstimate:
    """The :class:`CostEstimate` of sending ``bodies`` (chat-completions request bodies) to ``model``.

    ``checkpoint`` (a :class:`~llama_index_bge_finetune.generation.checkpoint.Checkpoint`) supplies
    the measured answer length when the bodies set no ``max_tokens``.
    """
    count, prompt_basis = _token_counter(model)
    texts = [[str(m.get("content") or "") for m in b.get("messages", [])] for b in bodies]
    overhead = _TOKENS_PER_MESSAGE * sum(len(t) for t in texts)
    if len(texts) <= SAMPLE_REQUESTS:
        prompt_tokens = overhead + sum(count(x) for t in texts for x in t)
    else:  # counting a million prompts would take minutes: tokens per character of an even sample
        sample = texts[:: len(texts) // SAMPLE_REQUESTS]
        per_char = sum(count(x) for t in sample for x in t) / max(1, sum(len(x) for t in sample for x in t))
        prompt_tokens = overhead + round(per_char * sum(len(x) for t in texts for x in t))
        prompt_basis += f" on a sample of {len(sample):,} requests"
    per_request, completion_basis = _completion_tokens(bodies, num_questions, checkpoint, count)
    completion_tokens = per_request * len(bodies)
    price = price_per_mtok(model)
    live = (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6 if price else None
    return CostEstimate(model=model, requests=len(bodies), prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens, prompt_basis=prompt_basis,
                        completion_basis=completion_basis, live_usd=live,
                        batch_usd=live * BATCH_PRICE_FACTOR if live is not None else None)


def _completion_tokens(bodies: Sequence[Dict[str, Any]], num_questions: int, checkpoint: Optional[Any],
                       count: Callable[[str], int]) -> Tuple[int, str]:
    caps = [b.get("max_completion_tokens") or b.get("max_tokens") for b in bodies[:1]]
    if caps and caps[0]:
        return int(caps[0]), "max_tokens, an upper bound"
    answers = [entry.get("questions") or [] for entry in (getattr(checkpoint, "entries", None) or {}).values()]
    answers = [qs for qs in answers if qs][:1000]
    if answers:
        mean = sum(count("\n".join(f"{i}. {q}" for i, q in enumerate(qs, 1))) for qs in answers) / len(answers)
        return max(1, round(mean)), f"mean of {len(answers)} answers in the checkpoint"
    return TOKENS_PER_QUESTION * num_questions, f"{TOKENS_PER_QUESTION} per question, none measured yet"


def _token_counter(model: str) -> Tuple[Callable[[str], int], str]:
    """(text -> tokens, how they are counted): tiktoken's encoding for ``model`` when available, else chars / 4."""
    try:
        import tiktoken
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return _chars_over_4, "characters / 4, tiktoken is not installed"
    try:
        name = encoding_name_for_model(model.split("/")[-1])
    except KeyError:
        return _chars_over_4, "characters / 4, tiktoken does not know the model"
    encoding = _shipped_encoding(tiktoken, name)
    if encoding is None:
        return _chars_over_4, f"characters / 4, the {name} encoding is not available offline"
    return (lambda text: len(encoding.encode(text, disallowed_special=()))), f"tiktoken {name}"


def _shipped_encoding(tiktoken: Any, name: str) -> Any:
    """tiktoken's ``name`` encoding from its cache or llama-index's bundled copy; ``None`` rather than a download."""
    import llama_index.core

    bundled = os.path.join(os.path.dirname(os.path.abspath(llama_index.core.__file__)), "_static", "tiktoken_cache")
    cache = os.environ.get("TIKTOKEN_CACHE_DIR") or bundled
    blob = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
    if not os.path.isfile(os.path.join(cache, hashlib.sha1(blob.encode()).hexdigest())):
        return None
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = cache
    try:
        return tiktoken.get_encoding(name)
    except Exception as exc:  # tiktoken's own errors vary by version; any of them means: estimate instead
        logger.debug("tiktoken could not load %s: %s", name, exc)
        return None
    finally:
        if previous is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous


def _chars_over_4(text: str) -> int:
    return (len(text) + 3) // 4
