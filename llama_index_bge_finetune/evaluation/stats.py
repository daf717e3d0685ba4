"""Bootstrap confidence intervals and a paired test, so a gain can be told from noise.

Both resample *queries*: the uncertainty of a retrieval metric comes from which questions happened
to be asked. Comparisons are paired (the same queries for every model), which is far more sensitive
than comparing two independent intervals.

- :func:`bootstrap_ci`: percentile bootstrap interval of a mean.
- :func:`paired_test`: mean per-query difference, its bootstrap interval, and a two-sided (or
  one-sided) p-value from a sign-flip randomisation test (exact in distribution under "no difference", no normality
  assumption, robust to the many zero differences of hit rate).

Example::

    import numpy as np
    from llama_index_bge_finetune.evaluation.stats import paired_test

    base = np.array([0.0, 1.0, 0.5, 0.0]); tuned = np.array([1.0, 1.0, 1.0, 0.5])
    paired_test(tuned, base).p_value
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from llama_index_bge_finetune.errors import EvaluationError


def bootstrap_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(n_resamples, n) query indices drawn with replacement; reuse them to keep models paired."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, size=(n_resamples, n), dtype=np.int32)


def bootstrap_ci(values: np.ndarray, indices: np.ndarray, confidence: float = 0.95) -> Tuple[float, float]:
    """Percentile interval of the mean of ``values`` over the resamples in ``indices``."""
    _check_confidence(confidence)
    if len(values) == 0:
        return 0.0, 0.0
    means = np.asarray(values, dtype=np.float64)[indices].mean(axis=1)
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(lo), float(hi)


@dataclass(frozen=True)
class PairedTest:
    """Model minus base on the same queries."""

    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    wins: int
    losses: int
    ties: int

    def significant(self, alpha: float = 0.05) -> bool:
        """True when the p-value is below ``alpha``."""
        return self.p_value < alpha


def paired_test(model: np.ndarray, base: np.ndarray, indices: np.ndarray | None = None, confidence: float = 0.95,
                n_permutations: int = 10_000, seed: int = 0, alternative: str = "two-sided") -> PairedTest:
    """Compare per-query scores of a model with a base model on the same queries.

    Args:
        model, base: per-query metric values, same order and length.
        indices: bootstrap resamples from :func:`bootstrap_indices` (drawn here when ``None``).
        confidence: level of the interval of the mean difference.
        n_permutations: random sign flips for the p-value; the p-value is ``(extreme + 1) / (n + 1)``,
            never 0.
        seed: random seed, for reproducible reports.
        alternative: ``"two-sided"`` (any difference) or ``"greater"`` (one-sided: the model is better;
            for deciding whether to adopt it).
    """
    if alternative not in ("two-sided", "greater"):
        raise EvaluationError(f"alternative must be 'two-sided' or 'greater', got {alternative!r}.")
    a, b = np.asarray(model, dtype=np.float64), np.asarray(base, dtype=np.float64)
    if a.shape != b.shape:
        raise EvaluationError(f"Paired test needs the same queries for both models, got {a.shape} and {b.shape}.")
    d = a - b
    n = len(d)
    if n == 0:
        raise EvaluationError("Paired test needs at least one query.")
    if indices is None:
        indices = bootstrap_indices(n, 1000, seed)
    lo, hi = bootstrap_ci(d, indices, confidence)
    two_sided = alternative == "two-sided"
    observed = abs(d.mean()) if two_sided else d.mean()
    rng = np.random.default_rng(seed + 1)
    extreme = 0
    nz = d[d != 0]
    if len(nz) == 0:
        p = 1.0
    else:
        done = 0
        chunk = max(1, 4_000_000 // len(nz))
        while done < n_permutations:
            m = min(chunk, n_permutations - done)
            signs = rng.integers(0, 2, size=(m, len(nz)), dtype=np.int8) * 2 - 1
            flipped = (signs * nz).sum(axis=1) / n
            extreme += int(((np.abs(flipped) if two_sided else flipped) >= observed - 1e-12).sum())
            done += m
        p = (extreme + 1) / (n_permutations + 1)
    return PairedTest(float(d.mean()), lo, hi, float(p), int((d > 0).sum()), int((d < 0).sum()), int((d == 0).sum()))


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise EvaluationError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}.")
