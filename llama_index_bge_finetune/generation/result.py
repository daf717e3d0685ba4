"""What a generation run returns: the dataset, the per-node failures, and the usage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset

# US$ per million (input, output) tokens, for the models whose price we know.
PRICES_PER_MTOK: Dict[str, Tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-3.5-turbo": (0.50, 1.50),
}


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
    """Requests and tokens spent by a run (cached nodes cost nothing); ``cost_usd`` when the price is known."""

    model: str = ""
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_nodes: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_usd(self) -> Optional[float]:
        """Estimated cost in US$, or ``None`` when the model's price is unknown."""
        name = self.model.split("/")[-1]
        price = PRICES_PER_MTOK.get(name) or next(
            (p for m, p in sorted(PRICES_PER_MTOK.items(), key=lambda kv: -len(kv[0])) if name.startswith(m + "-")), None
        )
        if price is None:
            return None
        return (self.prompt_tokens * price[0] + self.completion_tokens * price[1]) / 1e6

    def summary(self) -> str:
        """One line for logs and the CLI, e.g. ``42 requests, 12,345 tokens, ~$0.0021 (gpt-4o-mini)``."""
        cost = self.cost_usd
        money = f", ~${cost:.4f}" if cost is not None else ""
        cached = f", {self.cached_nodes} nodes from the checkpoint" if self.cached_nodes else ""
        return f"{self.requests} requests, {self.total_tokens:,} tokens{money} ({self.model or 'unknown model'}){cached}"


@dataclass
class GenerationResult:
    """The generated dataset, the nodes that failed (with reasons), and the usage."""

    dataset: EmbeddingQAFinetuneDataset
    failures: List[NodeFailure] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
