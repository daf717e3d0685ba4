"""The default training loss: in-batch negatives with hard negatives, one forward pass per column.

Kept apart from :mod:`~llama_index_bge_finetune.training.losses` because it subclasses a
sentence-transformers loss, and importing sentence-transformers costs seconds.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss


class HardNegativeRankingLoss(MultipleNegativesRankingLoss):
    """In-batch negatives loss over (anchor, positive, negative...) columns, one forward per column.

    The objective is ``MultipleNegativesRankingLoss``'s. Two things change its cost:

    - every column gets its own forward pass, so a column of short texts (queries, hard negatives
      cut to 64 tokens by default) is padded to its own longest text, not to the longest positive;
    - with ``negative_gradients=False`` the hard-negative columns are embedded under
      ``torch.no_grad()``: they still sit in every anchor's softmax and push the query encoding
      away from them, but cost one forward pass instead of forward plus backward and keep no
      activations. On SciFact (256-token positives, 128-token negatives, batch 31, AVX2 CPU) a step
      took 19.6 s merged, 15.3 s per column, 12.7 s per column with detached negatives, against
      11.6 s with no negative at all; but detaching cost 0.0235 nDCG@10 (0.7335 -> 0.7100), so
      negatives keep their gradients by default (benchmarks/RESULTS.md).

    Example::

        loss = HardNegativeRankingLoss(model, scale=20.0)
    """

    def __init__(self, model: SentenceTransformer, scale: float = 20.0,
                 negative_gradients: bool = True, gather_across_devices: bool = False) -> None:
        super().__init__(model, scale=scale, gather_across_devices=gather_across_devices)
        self.negative_gradients = negative_gradients

    def forward(self, sentence_features: Iterable[Dict[str, Any]], labels: Any) -> Any:
        features = list(sentence_features)
        embeddings = [self.model(f)["sentence_embedding"] for f in features[:2]]
        with torch.set_grad_enabled(self.negative_gradients and torch.is_grad_enabled()):
            embeddings += [self.model(f)["sentence_embedding"] for f in features[2:]]
        return self.compute_loss_from_embeddings(embeddings, labels)
