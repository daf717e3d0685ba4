"""Render a :class:`~llama_index_bge_finetune.evaluation.comparison.ModelComparison` as Markdown and a PNG chart."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Sequence

from llama_index_bge_finetune.evaluation.metrics import METRIC_NAMES

if TYPE_CHECKING:
    from llama_index_bge_finetune.evaluation.comparison import ModelComparison

METHOD_NOTE = (
    "Metrics are means over the evaluated queries. nDCG uses the standard cut-off definition "
    "(trec_eval `ndcg_cut`, as BEIR and MTEB report): the ideal DCG is taken over the top k, so a perfect top k "
    "scores 1. llama-index-core's `NDCG` divides by an ideal DCG over *all* expected ids and ignores k, so it reads "
    "lower whenever a query has more relevant passages than retrieved slots (a perfect top-2 with 5 expected ids: "
    "0.553 there, 1.0 here). MAP@k divides by min(k, number of relevant) as sentence-transformers does. "
    "Intervals are percentile bootstraps over queries; the p-value of a difference is a paired sign-flip "
    "randomisation test on per-query differences."
)


def _fmt(x: float) -> str:
    return f"{x:.4f}"


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def render_markdown(cmp: "ModelComparison", chart: Optional[str] = None) -> str:
    """The whole report: dataset and query source, results with intervals, paired tests, worst queries."""
    ds = cmp.dataset
    pct = int(round(cmp.confidence * 100))
    lines: List[str] = ["# Retrieval evaluation", ""]
    name = f" `{ds.name}`" if ds.name else ""
    lines.append(f"Dataset{name}: {ds.n_queries} queries evaluated over {ds.n_corpus} passages.")
    lines.append("")
    lines.append(f"**Query source:** `{ds.query_source or 'unknown'}`. {ds.query_source_note}")
    if ds.excluded:
        reasons = {}
        for why in ds.excluded.values():
            reasons[why] = reasons.get(why, 0) + 1
        detail = "; ".join(f"{n} {why}" for why, n in reasons.items())
        lines += ["", f"**Excluded queries:** {len(ds.excluded)} ({detail})."]
    lines += ["", "## Models", "", "| label | model | backend | query instruction | fingerprint | corpus encode (s) | search |",
              "|---|---|---|---|---|---|---|"]
    for label, r in cmp.results.items():
        info = r.model_info
        qi = info.get("query_instruction")
        lines.append(f"| {label} | {_one_line(info.get('source') or info.get('encoder', ''))} | {info.get('backend', '')} | "
                     f"{repr(qi) if qi else 'none'} | `{str(info.get('fingerprint', ''))[:12]}` | "
                     f"{r.timings.get('encode_corpus', 0.0):.1f} | {r.search.get('note', '')} |")

    lines += cost_lines(cmp)
    reranked = {label: r for label, r in cmp.results.items() if "rerank_median_ms" in r.timings}
    if reranked:
        lines += ["", "## Reranking cost", "", "| label | reranks the top | of | blend weight | median ms / query | p95 ms / query |",
                  "|---|---|---|---|---|---|"]
        for label, r in reranked.items():
            info = r.model_info
            weight = info.get("blend_weight", "")
            if "blend_weights_per_fold" in info:  # chosen per half of these questions on the other half
                weight = f"{info['blend_weights_per_fold']} (each half's weight chosen on the other half)"
            lines.append(f"| {label} | {info.get('reranker_top_n', '')} | {info.get('first_stage', '')} | "
                         f"{weight} | {r.timings['rerank_median_ms']:.1f} | {r.timings['rerank_p95_ms']:.1f} |")
        guards = [f"- {label}, blend guard on half {fold}: {rule}." for label, r in reranked.items()
                  for fold, rule in enumerate(r.model_info.get("blend_rules_per_fold") or [], 1)]
        lines += ["", *guards] if guards else []
    lines += ["", f"## Results (mean [{pct}% CI])", ""]
    if chart:
        lines += [f"![metrics at k={max(cmp.k_values)}]({chart})", ""]
    labels = list(cmp.results)
    lines.append("| metric | " + " | ".join(labels) + " |")
    lines.append("|---" * (len(labels) + 1) + "|")
    for m in cmp.metric_names:
        cells = []
        for label in labels:
            e = cmp.estimates[label][m]
            cells.append(f"{_fmt(e.value)} [{_fmt(e.ci_low)}, {_fmt(e.ci_high)}]")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")

    held = getattr(cmp, "held_out", None)
    if held is not None:
        lines += ["", f"## The same questions over the held-out passages only ({held.dataset.n_corpus} passages)", "",
                  f"The figures above search the whole corpus ({ds.n_corpus} passages, as the app's index holds them). "
                  "Searching only the held-out passages is easier (no distractor from the training chunks):", ""]
        for label in held.results:
            e = held.estimates[label][cmp.primary_metric]
            lines.append(f"- {label}: {cmp.primary_metric} {_fmt(e.value)} [{_fmt(e.ci_low)}, {_fmt(e.ci_high)}]")

    if cmp.differences:
        primary = cmp.primary_metric
        lines += ["", f"## Difference vs `{cmp.base}` (paired, same queries)", ""]
        for label, diffs in cmp.differences.items():
            t = diffs[primary]
            verdict = ("a real difference (p < 0.05)" if t.significant(0.05)
                       else "not distinguishable from noise at this number of queries (p >= 0.05)")
            lines.append(f"- **{label}** {primary}: {t.mean_diff:+.4f} [{t.ci_low:+.4f}, {t.ci_high:+.4f}], "
                         f"p = {_p(t.p_value)}: {verdict}. Better on {t.wins} queries, worse on {t.losses}, "
                         f"tied on {t.ties}.")
        lines += ["", f"| metric | model | difference | {pct}% CI | p |", "|---|---|---|---|---|"]
        for label, diffs in cmp.differences.items():
            for m in cmp.metric_names:
                t = diffs[m]
                lines.append(f"| {m} | {label} | {t.mean_diff:+.4f} | [{t.ci_low:+.4f}, {t.ci_high:+.4f}] | {_p(t.p_value)} |")

    if any(cmp.worst.values()):
        lines += ["", f"## Worst queries (lowest {cmp.primary_metric})"]
        for label, entries in cmp.worst.items():
            lines += ["", f"### {label}", ""]
            for e in entries:
                lines.append(f"- `{e['query_id']}` {_one_line(e['query'])} ({cmp.primary_metric} = "
                             f"{e['metrics'][cmp.primary_metric]:.3f})")
                rel = ", ".join(f"`{r['id']}`" for r in e["relevant"])
                lines.append(f"  - expected: {rel}")
                for r in e["retrieved"]:
                    mark = "relevant" if r["relevant"] else "retrieved instead"
                    lines.append(f"  - {mark}: `{r['id']}` ({r['score']:.3f}) {_one_line(r['text'])}")

    for title, body in cmp.extra_sections.items():
        lines += ["", f"## {title}", "", body.strip()]
    lines += ["", "## Method", "", METHOD_NOTE, ""]
    return "\n".join(lines)


def cost_lines(cmp: "ModelComparison") -> List[str]:
    """The "Hosted embedding cost" section: each hosted model's cost line (estimated before any request) and usage."""
    hosted = {label: r.model_info["cost"] for label, r in cmp.results.items() if r.model_info.get("cost")}
    if not hosted:
        return []
    lines = ["", "## Hosted embedding cost", ""]
    for label, cost in hosted.items():
        lines.append(f"- **{label}**: {hosted_usage(cost)}")
    return lines


def hosted_usage(cost: dict) -> str:
    """A hosted model's cost line and what was actually sent, as one sentence."""
    line = cost.get("line") or "no estimate was made."
    return (f"{line} Sent {cost.get('requests', 0)} requests ({cost.get('texts_sent', 0)} texts, "
            f"{cost.get('tokens_reported', 0):,} tokens reported by the endpoint).")


def _one_line(text: str, limit: int = 120) -> str:
    t = " ".join(str(text).split()).replace("|", "\\|")
    return t[:limit] + ("..." if len(t) > limit else "")


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
