"""What embedding texts with a hosted model will cost, said before the first request.

Tokens are counted with tiktoken's ``cl100k_base`` (the tokenizer of OpenAI's embedding models)
when it can load, else estimated as characters / 4, and the line says which. Prices are OpenAI's
list prices in :data:`EMBEDDING_PRICES_PER_MTOK`, as of :data:`PRICES_AS_OF`; a model not in the
table gets a token count and "price unknown".

Example::

    from llama_index_bge_finetune.encoding.hosted_cost import estimate_cost

    print(estimate_cost("text-embedding-3-small", ["a passage", "a question"]).line())
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

EMBEDDING_PRICES_PER_MTOK: Dict[str, float] = {
    "text-embedding-3-small": 0.02,
    "text-embedding-3-large": 0.13,
    "text-embedding-ada-002": 0.10,
}
"""US$ per million input tokens of OpenAI's embedding models (standard, not batch, pricing)."""

PRICES_AS_OF = "2024-01"
"""The month of :data:`EMBEDDING_PRICES_PER_MTOK` (OpenAI's list prices since the text-embedding-3 release)."""

CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class CostEstimate:
    """Texts to embed, their tokens and price, for one hosted model, before any request.

    Attributes:
        model: the hosted model's name.
        n_texts: distinct texts the evaluation needs.
        n_cached: of which already in the on-disk cache (not sent, not paid).
        tokens: estimated input tokens of the texts to send.
        token_method: how ``tokens`` was counted (``"tiktoken cl100k_base"`` or ``"characters / 4"``).
        usd: the estimated price in US$, ``None`` when the model's price is unknown.
        price_per_mtok: US$ per million tokens used, ``None`` when unknown.
    """

    model: str
    n_texts: int
    n_cached: int
    tokens: int
    token_method: str
    usd: Optional[float]
    price_per_mtok: Optional[float]

    @property
    def n_to_send(self) -> int:
        """Texts that will be sent (and paid for)."""
        return self.n_texts - self.n_cached

    def line(self) -> str:
        """One sentence for the console and the report, e.g. ``text-embedding-3-small: 120 of 130 texts to embed ...``."""
        head = f"{self.model}: {self.n_to_send} of {self.n_texts} texts to embed ({self.n_cached} cached, not paid again)"
        if not self.n_to_send:
            return f"{head}: no request, $0."
        if self.usd is None:
            money = f"price unknown for {self.model!r} (known: {', '.join(EMBEDDING_PRICES_PER_MTOK)})"
        else:
            usd = f"~${self.usd:.4f}" if self.usd >= 0.0001 else "<$0.0001"
            money = f"{usd} at ${self.price_per_mtok:g} per 1M tokens (OpenAI list price, {PRICES_AS_OF})"
        return f"{head}, ~{self.tokens:,} tokens ({self.token_method}), {money}."

    def to_dict(self) -> Dict[str, Any]:
        """JSON-able, with the sentence as ``line``."""
        return {**asdict(self), "prices_as_of": PRICES_AS_OF, "line": self.line()}


def price_per_mtok(model: str) -> Optional[float]:
    """US$ per million tokens of ``model`` (a dated snapshot such as ``...-2024-01-25`` takes its family's price)."""
    name = model.split("/")[-1]
    if name in EMBEDDING_PRICES_PER_MTOK:
        return EMBEDDING_PRICES_PER_MTOK[name]
    return next((p for m, p in sorted(EMBEDDING_PRICES_PER_MTOK.items(), key=lambda kv: -len(kv[0]))
                 if name.startswith(m + "-")), None)


def count_tokens(texts: Sequence[str]) -> Tuple[List[int], str]:
    """Tokens of every text and how they were counted (tiktoken when it loads, else characters / 4)."""
    encode = _tiktoken_batch()
    if encode is not None:
        return [len(ids) for ids in encode(list(texts))], "tiktoken cl100k_base"
    return [approx_tokens(t) for t in texts], "characters / 4"


def approx_tokens(text: str) -> int:
    """A quick upper-side token estimate used for batching: characters / 4, at least 1."""
    return max(1, len(text) // CHARS_PER_TOKEN + 1)


def estimate_cost(model: str, texts: Sequence[str], n_cached: int = 0) -> CostEstimate:
    """The :class:`CostEstimate` of sending ``texts`` (the uncached ones) to ``model``; ``n_cached`` more need nothing."""
    counts, method = count_tokens(texts) if texts else ([], "nothing to count")
    tokens = sum(counts)
    price = price_per_mtok(model)
    usd = tokens * price / 1e6 if price is not None else None
    return CostEstimate(model=model, n_texts=len(texts) + n_cached, n_cached=n_cached, tokens=tokens,
                        token_method=method, usd=usd, price_per_mtok=price)


@lru_cache(maxsize=1)
def _tiktoken_batch() -> Optional[Callable[[List[str]], List[List[int]]]]:
    """tiktoken's ``cl100k_base`` batch encoder, or ``None`` when tiktoken or its vocabulary is unavailable.

    llama-index-core ships the vocabulary file; like llama-index's own tokenizer, it is read from
    there (``TIKTOKEN_CACHE_DIR`` set only while loading) unless the user set that variable.
    """
    try:
        import importlib.util

        import tiktoken

        spec = importlib.util.find_spec("llama_index.core")  # located, not imported (that takes seconds)
        origin = spec.origin if spec is not None and spec.origin else ""
        bundled = os.path.join(os.path.dirname(os.path.abspath(origin)), "_static", "tiktoken_cache")
        revert = "TIKTOKEN_CACHE_DIR" not in os.environ and os.path.isdir(bundled)
        if revert:
            os.environ["TIKTOKEN_CACHE_DIR"] = bundled
        try:
            encoding = tiktoken.get_encoding("cl100k_base")
        finally:
            if revert:
                del os.environ["TIKTOKEN_CACHE_DIR"]
    except Exception as exc:  # ImportError, or no vocabulary file and no network: fall back to characters / 4
        logger.debug("tiktoken is unavailable (%s: %s); estimating tokens as characters / 4.", type(exc).__name__, exc)
        return None
    return lambda texts: encoding.encode_ordinary_batch(texts)
