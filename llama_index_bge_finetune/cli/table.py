"""The before/after table the CLI prints: a few headline metrics, each model, the change and its p-value."""

from __future__ import annotations

from typing import Any, Dict, List

from rich.table import Table


def headline_metrics(report: Dict[str, Any]) -> List[str]:
    """Hit rate at every k, then MRR and nDCG at the largest k."""
    ks = report["k_values"]
    top = max(ks)
    return [f"hit_rate@{k}" for k in ks] + [f"mrr@{top}", f"ndcg@{top}"]


def comparison_table(report: Dict[str, Any]) -> Table:
    """A rich table from ``ModelComparison.to_dict()``: value per model, change vs the base with CI and p."""
    models = report["models"]
    base = report["base"]
    others = [m for m in models if m != base]
    ds = report["dataset"]
    title = f"{ds.get('name') or 'dataset'}: {ds['n_queries']} questions ({ds.get('query_source') or 'unknown source'})"
    table = Table(title=title)
    table.add_column("metric")
    for name in models:
        table.add_column(name, justify="right")
    for name in others:
        table.add_column(f"{name} - {base} [95% CI]", justify="right")
        table.add_column("p", justify="right")
    for metric in headline_metrics(report):
        row = [metric] + [f"{models[m]['metrics'][metric]['value']:.4f}" for m in models]
        for name in others:
            diff = models[name]["vs_base"][metric]
            row += [f"{diff['mean_diff']:+.4f} [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}]", f"{diff['p_value']:.3f}"]
        table.add_row(*row)
    return table


def verdict_lines(report: Dict[str, Any]) -> List[str]:
    """The conclusion under the table: the best row overall (BM25 and hybrids included) against the next best,
    then each hybrid row's pipeline to ship, from ``ModelComparison.to_dict()``."""
    best = report.get("best_retriever")
    lines = [best["sentence"]] if best else []
    for name, row in report["models"].items():
        info = row.get("model") or {}
        shipped = info.get("shipped") if info.get("kind") == "hybrid" else None
        if shipped:
            lines.append(f"Shipped pipeline (from {name}, chosen on all {shipped.get('questions')} questions): "
                         f"{info.get('shipped_pipeline')}: {shipped.get('reason')}.")
    return lines
