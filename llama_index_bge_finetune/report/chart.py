"""Draw a :class:`~llama_index_bge_finetune.evaluation.comparison.ModelComparison` as a PNG bar chart (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence

from llama_index_bge_finetune.evaluation.metrics import METRIC_NAMES

if TYPE_CHECKING:
    from llama_index_bge_finetune.evaluation.comparison import ModelComparison


def plot_comparison(cmp: "ModelComparison", path: Path, metrics: Optional[Sequence[str]] = None) -> Path:
    """Grouped bars (metrics at the largest k by default) with CI error bars, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    kmax = max(cmp.k_values)
    metrics = list(metrics or [f"{m}@{kmax}" for m in METRIC_NAMES])
    labels = list(cmp.results)
    width = 0.8 / max(1, len(labels))
    x = np.arange(len(metrics))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(metrics) + 1), 4.0), dpi=110)
    for i, label in enumerate(labels):
        est = [cmp.estimates[label][m] for m in metrics]
        vals = np.array([e.value for e in est])
        err = np.array([[e.value - e.ci_low for e in est], [e.ci_high - e.value for e in est]])
        ax.bar(x + (i - (len(labels) - 1) / 2) * width, vals, width, yerr=err, capsize=3, label=label)
    ax.set_xticks(x)
    ax.set_xticklabels(metrics)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    src = cmp.dataset.query_source or "unknown"
    ax.set_title(f"{cmp.dataset.n_queries} queries ({src}), {int(round(cmp.confidence * 100))}% bootstrap CI")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return path
