"""What a generation run returns: the dataset, the per-node failures, and the usage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset

#: US$ per million (input, output) tokens of live requests, for the models whose price we know.
#: Taken from openai.com/api/pricing as listed in April 2025 (the gpt-4.1 family's launch prices).
PRICES_PER_MTOK: Dict[str, Tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-3.5-turbo": (0.50, 1.50),
}
#: The Batch API's price as a share of the live price (half, for every model above; April 2025).
BATCH_PRICE_FACTOR = 0.5


def price_per_mtok(model: str) -> Optional[Tuple[float, float]]:
    """Live US$ per million (input, output) tokens of ``model`` (``"gpt-4o-mini-2024-07-18"`` too), or ``None``."""
    name = model.split("/")[-1]
    return PRICES_PER_MTOK.get(name) or next(
        (p for m, p in sorted(PRICES_PER_MTOK.items(), key=lambda kv: -len(kv[0])) if name.startswith(m + "-")), None
    )


@dataclass
class NodeFailure:
    """A node that got no questions, and why (the last error or the parser's complaint).

    ``kind`` is ``"failed"`` (asked, no usable answer after ``attempts`` requests) or ``"skipped"``
    (empty or near-empty, never sent to the LLM; ``chars`` is the length of its stripped text).
    """

    node_id: str
    reason: str
    attempts: int = 0
    kind: str = "failed"
    chars: Optional[int] = None


@dataclass
class Usage:
    """Requests and tokens spent by a run (cached nodes cost nothing); ``cost_usd`` when the price is known.

    ``batch_api`` marks tokens paid at the Batch API's price (:data:`BATCH_PRICE_FACTOR` of the live one).
    """

    model: str = ""
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_nodes: int = 0
    batch_api: bool = False

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_usd(self) -> Optional[float]:
        """Estimated cost in US$, or ``None`` when the model's price is unknown."""
        price = price_per_mtok(self.model)
        if price is None:
            return None
        factor = BATCH_PRICE_FACTOR if self.batch_api else 1.0
        return factor * (self.prompt_tokens * price[0] + self.completion_tokens * price[1]) / 1e6

    def summary(self) -> str:
        """One line for logs and the CLI, e.g. ``42 requests, 12,345 tokens, ~$0.0021 (gpt-4o-mini)``."""
        cost = self.cost_usd
        money = f", ~${cost:.4f}{' at the Batch API price' if self.batch_api else ''}" if cost is not None else ""
        cached = f", {self.cached_nodes} nodes from the checkpoint" if self.cached_nodes else ""
        return f"{self.requests} requests, {self.total_tokens:,} tokens{money} ({self.model or 'unknown model'}){cached}"


@dataclass
class GenerationResult:
    """The generated dataset, the nodes that failed (with reasons), and the usage."""

    dataset: EmbeddingQAFinetuneDataset
    failures: List[NodeFailure] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
