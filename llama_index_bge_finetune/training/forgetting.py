"""The forgetting guard: measure a general dataset before and after; blend weights back if it dropped.

Fine-tuning on a narrow corpus can cost quality elsewhere. The guard scores the base model and
the fine-tuned model on a second, general dataset (nDCG@10); when the drop is larger than
``threshold``, it replaces the fine-tuned weights by ``alpha * fine_tuned + (1 - alpha) * base``
(weight interpolation, as in WiSE-FT) and scores that too. Every score is reported.

Example::

    guard = ForgettingGuard(general_dataset, threshold=0.02, alpha=0.5)
    before = guard.measure(base_model, query_prompt)          # before training
    report = guard.check(model, base_state, before, query_prompt)  # after; may blend `model` in place
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Mapping, Optional

from llama_index_bge_finetune.errors import TrainingError
from llama_index_bge_finetune.training.retrieval_metrics import retrieval_scores

logger = logging.getLogger(__name__)


class ForgettingGuard:
    """Compares a model on a general dataset before and after fine-tuning, and interpolates on a drop.

    Args:
        dataset: the general dataset (an ``EmbeddingQAFinetuneDataset`` or anything it coerces).
        threshold: largest acceptable drop of nDCG@10 (absolute, e.g. 0.02 = 2 points).
        alpha: weight of the fine-tuned model in the interpolation (0 = base, 1 = fine-tuned).
    """

    def __init__(self, dataset: Any, threshold: float = 0.02, alpha: float = 0.5) -> None:
        from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset

        if threshold < 0:
            raise TrainingError(f"forgetting_threshold must be >= 0, got {threshold}; 0.02 allows a 2-point drop.")
        if not 0.0 < alpha < 1.0:
            raise TrainingError(f"forgetting_alpha must be between 0 and 1 (exclusive), got {alpha}; 0.5 is the usual value.")
        self.dataset = EmbeddingQAFinetuneDataset.coerce(dataset).validate_or_raise("forgetting-guard dataset")
        self.threshold = threshold
        self.alpha = alpha

    def measure(self, model: "SentenceTransformer", query_prompt: Optional[str]) -> Dict[str, float]:  # noqa: F821
        """nDCG@10 etc. of ``model`` on the general dataset."""
        return retrieval_scores(model, self.dataset, query_prompt=query_prompt)

    def check(
        self,
        model: "SentenceTransformer",  # noqa: F821
        base_state: Mapping[str, "torch.Tensor"],  # noqa: F821
        before: Mapping[str, float],
        query_prompt: Optional[str],
    ) -> Dict[str, Any]:
        """Score the fine-tuned ``model``; blend it with ``base_state`` in place if it dropped too far.

        Returns ``{"base": scores, "fine_tuned": scores, "interpolated": scores or None,
        "drop": float, "interpolated_applied": bool, ...}``.
        """
        import torch

        after = self.measure(model, query_prompt)
        drop = before["ndcg@10"] - after["ndcg@10"]
        report: Dict[str, Any] = {
            "base": dict(before), "fine_tuned": after, "interpolated": None, "drop": drop,
            "threshold": self.threshold, "alpha": self.alpha, "interpolated_applied": False,
        }
        if drop <= self.threshold:
            logger.info("Forgetting guard: general nDCG@10 %.4f -> %.4f (drop %.4f within %.4f).",
                        before["ndcg@10"], after["ndcg@10"], drop, self.threshold)
            return report
        with torch.no_grad():
            for name, tensor in model.state_dict().items():
                if name in base_state and tensor.dtype.is_floating_point:
                    tensor.copy_(self.alpha * tensor + (1.0 - self.alpha) * base_state[name].to(tensor.device, tensor.dtype))
        report["interpolated"] = self.measure(model, query_prompt)
        report["interpolated_applied"] = True
        logger.warning(
            "Forgetting guard: general nDCG@10 fell %.4f -> %.4f (more than %.4f); saved weights are "
            "%.2f x fine-tuned + %.2f x base, scoring %.4f.",
            before["ndcg@10"], after["ndcg@10"], self.threshold, self.alpha, 1 - self.alpha,
            report["interpolated"]["ndcg@10"],
        )
        return report
