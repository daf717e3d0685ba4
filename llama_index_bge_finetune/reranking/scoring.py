"""Batched cross-encoder scoring and the blend of reranker and first-stage scores.

A reranker trained on a few hundred questions can be worse than the embedding model that fetched
the candidates. The blend guards against that: per query both score lists are standardised
(z-scores) and mixed, ``(1 - w) * first_stage + w * reranker``. ``w = 0`` is the first stage's order
exactly, ``w = 1`` the reranker's alone; :func:`choose_blend_weight` picks ``w`` on validation
queries and keeps 0 unless a larger weight is better beyond noise: its per-query nDCG gain over
the first stage must pass a one-sided paired sign-flip test (p < 0.05) on those queries, so a
+0.003 on 30 questions keeps the first stage.

Example::

    from llama_index_bge_finetune.reranking.scoring import CrossEncoderScorer, blend

    scorer = CrossEncoderScorer("exp_reranker")
    ce = scorer.score("What causes tides?", ["The Moon's gravity ...", "Tidal locking ..."])
    order = (-blend([0.71, 0.69], ce, 0.4)).argsort()
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation.stats import paired_test

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
CONFIG_NAME = "reranker_config.json"
DEFAULT_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
#: A blend weight above 0 is kept only when its gain over the first stage has a one-sided paired p below this.
BLEND_ALPHA = 0.05


def _z(x: np.ndarray) -> np.ndarray:
    std = float(x.std())
    return (x - x.mean()) / std if std > 1e-12 else np.zeros_like(x)


def blend(first_stage: Sequence[float], reranker: Sequence[float], weight: float) -> np.ndarray:
    """Per-query mix of standardised scores; ``weight`` 0 keeps the first stage's order, 1 the reranker's."""
    if not 0.0 <= weight <= 1.0:
        raise EvaluationError(f"The blend weight must be in [0, 1] (0 = first stage only), got {weight}.")
    a = np.asarray(first_stage, dtype=np.float64)
    b = np.asarray(reranker, dtype=np.float64)
    if weight == 0.0:
        return a.copy()
    if weight == 1.0:
        return b.copy()
    return (1.0 - weight) * _z(a) + weight * _z(b)


def ndcg_at(labels_in_order: Sequence[float], k: int = 10) -> float:
    """nDCG@k of one ranked list of relevance labels (ideal = the same labels sorted)."""
    gains = np.asarray(labels_in_order, dtype=np.float64)
    disc = 1.0 / np.log2(np.arange(2, min(k, len(gains)) + 2))
    dcg = float((gains[:k] * disc).sum())
    ideal = float((np.sort(gains)[::-1][:k] * disc).sum())
    return dcg / ideal if ideal > 0 else 0.0


@dataclass(frozen=True)
class BlendChoice:
    """The blend weight chosen on validation queries, and the evidence for it.

    Attributes:
        weight: the chosen weight (0 = the first stage's order).
        table: mean nDCG@k of every weight tried.
        queries: validation queries the choice was made on.
        best_weight: the weight with the best mean (the chosen one when its gain is beyond noise).
        gain: mean per-query nDCG@k of ``best_weight`` minus the first stage's.
        ci_low, ci_high: 95% bootstrap interval of that gain.
        p_value: one-sided paired sign-flip p-value of the gain (1.0 when no weight beats the first stage).
        alpha: the threshold ``p_value`` had to pass.
        rule: one sentence saying what decided, for logs, configs and model cards.

    Example::

        choice = choose_blend_weight(groups)
        print(choice.weight, choice.rule)
    """

    weight: float
    table: Dict[float, float]
    queries: int
    best_weight: float
    gain: float
    ci_low: float
    ci_high: float
    p_value: float
    alpha: float
    rule: str

    def as_dict(self) -> Dict[str, Any]:
        """Every field except the table, for ``reranker_config.json`` and reports."""
        return {k: v for k, v in asdict(self).items() if k != "table"}


def choose_blend_weight(
    groups: Sequence[Tuple[Sequence[float], Sequence[float], Sequence[float]]],
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    k: int = 10,
    alpha: float = BLEND_ALPHA,
) -> BlendChoice:
    """The blend weight for validation queries: the best mean nDCG@k, if its gain is beyond noise, else 0.

    Args:
        groups: per query ``(first_stage_scores, reranker_scores, relevance_labels)`` over its candidates.
        weights: the weights tried (0 is always tried).
        k: the nDCG cut-off.
        alpha: a weight above 0 is chosen only when its per-query gain over the first stage alone
            (weight 0) passes a one-sided paired sign-flip test with ``p < alpha``; ties go to the
            smaller weight. The test is of the best of several weights, so it is, if anything, lenient.
    """
    if 0.0 not in weights:
        weights = (0.0, *weights)
    per_query: Dict[float, np.ndarray] = {}
    for w in sorted(weights):
        vals = []
        for first, ce, labels in groups:
            order = np.argsort(-blend(first, ce, w), kind="stable")
            vals.append(ndcg_at(np.asarray(labels, dtype=np.float64)[order], k))
        per_query[float(w)] = np.asarray(vals, dtype=np.float64)
    table = {w: float(v.mean()) if len(v) else 0.0 for w, v in per_query.items()}
    best = 0.0
    for w, v in table.items():
        if v > table[best] + 1e-9:
            best = w
    n = len(groups)
    if best == 0.0:
        return BlendChoice(0.0, table, n, 0.0, 0.0, 0.0, 0.0, 1.0, alpha,
                           f"no blend weight beats the first stage on {n} validation queries: first stage kept")
    test = paired_test(per_query[best], per_query[0.0], alternative="greater")
    beyond = test.p_value < alpha
    gain = (f"weight {best} gains {test.mean_diff:+.4f} nDCG@{k} over the first stage on {n} validation queries "
            f"(95% CI [{test.ci_low:+.4f}, {test.ci_high:+.4f}], one-sided paired p = {test.p_value:.3g})")
    rule = f"{gain}: beyond noise (p < {alpha}), blend kept" if beyond else \
        f"{gain}: within noise (p >= {alpha}), first stage kept"
    return BlendChoice(best if beyond else 0.0, table, n, best, test.mean_diff, test.ci_low, test.ci_high,
                       test.p_value, alpha, rule)


class CrossEncoderScorer:
    """Scores (query, passage) pairs with a cross-encoder in batches; times every query.

    Args:
        model: a folder or hub id of a cross-encoder, or a loaded ``CrossEncoder``.
        batch_size: pairs per forward pass.
        max_length: token limit of a pair (``None``: the model's own).
        device: torch device (``None``: CPU unless given).
    """

    def __init__(self, model: Any, batch_size: int = 32, max_length: Optional[int] = None,
                 device: Optional[str] = None) -> None:
        from sentence_transformers.cross_encoder import CrossEncoder

        if isinstance(model, (str, os.PathLike)):
            self.name = os.fspath(model)
            model = CrossEncoder(self.name, device=device or "cpu", max_length=max_length)
        else:
            self.name = type(model).__name__
            if max_length is not None:
                model.max_seq_length = max_length
        self.model = model
        self.batch_size = batch_size
        self.seconds_per_query: List[float] = []

    def score(self, query: str, passages: Sequence[str]) -> np.ndarray:
        """Raw scores (logits) of ``query`` against each passage; the call's wall time is recorded."""
        if not passages:
            return np.zeros(0, dtype=np.float32)
        t = time.perf_counter()
        scores = self.model.predict([(query, p) for p in passages], batch_size=self.batch_size,
                                    activation_fn=_identity(), convert_to_numpy=True, show_progress_bar=False)
        self.seconds_per_query.append(time.perf_counter() - t)
        return np.asarray(scores, dtype=np.float32).reshape(-1)

    def latency_ms(self) -> Dict[str, float]:
        """Median and p95 milliseconds per scored query so far."""
        if not self.seconds_per_query:
            return {}
        ms = np.asarray(self.seconds_per_query) * 1000.0
        return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)), "queries": float(len(ms))}


def _identity() -> Any:
    import torch

    return torch.nn.Identity()


def read_reranker_config(model_dir: PathLike) -> Dict[str, Any]:
    """The engine's ``reranker_config.json`` in a saved reranker folder (``{}`` when absent)."""
    path = Path(model_dir) / CONFIG_NAME
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        logger.warning("Ignoring unreadable %s (%s).", path, exc)
        return {}
