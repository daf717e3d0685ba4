"""The table the CLI prints (a row per model: headline metrics, the change vs the base and its p-value) and the verdict."""

from __future__ import annotations

from typing import Any, Dict, List

from rich.table import Table


def headline_metrics(report: Dict[str, Any]) -> List[str]:
    """Hit rate at every k, then MRR and nDCG at the largest k."""
    ks = report["k_values"]
    top = max(ks)
    return [f"hit_rate@{k}" for k in ks] + [f"mrr@{top}", f"ndcg@{top}"]


def comparison_table(report: Dict[str, Any]) -> Table:
    """A rich table from ``ModelComparison.to_dict()``: one row per model (BM25 and hybrids too), its headline
    metrics, and its change vs the base on the primary metric with the interval and p-value.

    One row per model keeps the table as wide with six rows as with two; every metric's difference is in the report.
    """
    models = report["models"]
    base = report["base"]
    ds = report["dataset"]
    primary = f"ndcg@{max(report['k_values'])}"
    title = f"{ds.get('name') or 'dataset'}: {ds['n_queries']} questions ({ds.get('query_source') or 'unknown source'})"
    table = Table(title=title)
    table.add_column("model")
    metrics = headline_metrics(report)
    for metric in metrics:
        table.add_column(metric.replace("hit_rate@", "hit@"), justify="right")
    table.add_column(f"{primary} - {base} [95% CI]", justify="right", no_wrap=True)
    table.add_column("p", justify="right")
    for name, row in models.items():
        cells = [name] + [f"{row['metrics'][m]['value']:.4f}" for m in metrics]
        diff = row.get("vs_base", {}).get(primary)
        cells += ([f"{diff['mean_diff']:+.3f} [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}]", f"{diff['p_value']:.3f}"]
                  if diff else ["(base)", ""])
        table.add_row(*cells)
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
