"""Render a :class:`~llama_index_bge_finetune.evaluation.comparison.ModelComparison` as Markdown, one function per section."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional

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


def _pct(cmp: "ModelComparison") -> int:
    """The interval level in percent (95)."""
    return int(round(cmp.confidence * 100))


def render_markdown(cmp: "ModelComparison", chart: Optional[str] = None) -> str:
    """The whole report: dataset and query source, results with intervals, paired tests, worst queries."""
    lines: List[str] = _dataset_lines(cmp)
    lines += _verdict_lines(cmp)
    lines += _models_lines(cmp)
    lines += cost_lines(cmp)
    lines += _reranking_lines(cmp)
    lines += _hybrid_lines(cmp)
    lines += _results_lines(cmp, chart)
    lines += _held_out_lines(cmp)
    lines += _difference_lines(cmp)
    lines += _worst_lines(cmp)
    lines += _extra_lines(cmp)
    lines += ["", "## Method", "", METHOD_NOTE, ""]
    return "\n".join(lines)


def _dataset_lines(cmp: "ModelComparison") -> List[str]:
    """The title, the dataset's sizes, the query source and any excluded queries."""
    ds = cmp.dataset
    name = f" `{ds.name}`" if ds.name else ""
    lines = ["# Retrieval evaluation", "",
             f"Dataset{name}: {ds.n_queries} queries evaluated over {ds.n_corpus} passages.", "",
             f"**Query source:** `{ds.query_source or 'unknown'}`. {ds.query_source_note}"]
    if ds.excluded:
        reasons: Dict[str, int] = {}
        for why in ds.excluded.values():
            reasons[why] = reasons.get(why, 0) + 1
        detail = "; ".join(f"{n} {why}" for why, n in reasons.items())
        lines += ["", f"**Excluded queries:** {len(ds.excluded)} ({detail})."]
    return lines


def _verdict_lines(cmp: "ModelComparison") -> List[str]:
    """The "Verdict": the best row overall and whether it beats the next best beyond noise, then the pipeline to ship."""
    lines = ["", "## Verdict", "", cmp.best_retriever().sentence]
    for paragraph in shipped_paragraphs(cmp):
        lines += ["", paragraph]
    return lines


def shipped_paragraphs(cmp: "ModelComparison") -> List[str]:
    """One paragraph per hybrid row: the retrieval to ship (chosen on all the questions) and why."""
    out = []
    for label, r in cmp.results.items():
        info = r.model_info
        shipped = info.get("shipped") if info.get("kind") == "hybrid" else None
        if not shipped:
            continue
        chosen = info.get("shipped_pipeline", "")
        what = {"dense": f"{info.get('dense')} alone (dense)", "bm25": f"{info.get('bm25')} alone (BM25)"}.get(
            chosen, f"hybrid of {info.get('dense')} and {info.get('bm25')}, {chosen}")
        out.append(f"**Shipped pipeline: {what}.** Chosen on all {shipped.get('questions')} questions with the "
                   f"beyond-noise rule: {shipped.get('reason')}. The {label} row estimates this choice honestly: "
                   f"each fold of the questions is ranked by the choice made on the other folds "
                   f"({', '.join(info.get('fusion_per_fold') or [])}).")
    return out


def _models_lines(cmp: "ModelComparison") -> List[str]:
    """The "Models" table: each model's source, backend, query instruction, fingerprint, encode time and search."""
    lines = ["", "## Models", "", "| label | model | backend | query instruction | fingerprint | corpus encode (s) | search |",
             "|---|---|---|---|---|---|---|"]
    for label, r in cmp.results.items():
        info = r.model_info
        qi = info.get("query_instruction")
        lines.append(f"| {label} | {_one_line(info.get('source') or info.get('encoder', ''))} | {info.get('backend', '')} | "
                     f"{repr(qi) if qi else 'none'} | `{str(info.get('fingerprint', ''))[:12]}` | "
                     f"{r.timings.get('encode_corpus', 0.0):.1f} | {r.search.get('note', '')} |")
    return lines


def _reranking_lines(cmp: "ModelComparison") -> List[str]:
    """The "Reranking cost" section (rows that rerank a first stage), with each half's blend guard; none without such rows."""
    reranked = {label: r for label, r in cmp.results.items() if "rerank_median_ms" in r.timings}
    if not reranked:
        return []
    lines = ["", "## Reranking cost", "", "| label | reranks the top | of | blend weight | median ms / query | p95 ms / query |",
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
    return lines + (["", *guards] if guards else [])


def _hybrid_lines(cmp: "ModelComparison") -> List[str]:
    """The "Hybrid retrieval" section: each hybrid row's fusion per fold and what decided it; none without hybrids."""
    hybrids = {label: r.model_info for label, r in cmp.results.items() if r.model_info.get("kind") == "hybrid"}
    if not hybrids:
        return []
    lines = ["", "## Hybrid retrieval (dense + BM25)", "",
             "| label | dense | BM25 | fusion per fold (chosen on the other folds) | shipped (chosen on all) |",
             "|---|---|---|---|---|"]
    for label, info in hybrids.items():
        lines.append(f"| {label} | {info.get('dense')} | {info.get('bm25')} | "
                     f"{', '.join(info.get('fusion_per_fold') or [])} | {info.get('shipped_pipeline')} |")
    lines.append("")
    for label, info in hybrids.items():
        lines += [f"- {label}, fold {f}: {reason}." for f, reason in
                  enumerate(info.get("fusion_reasons_per_fold") or [], 1)]
    return lines


def _results_lines(cmp: "ModelComparison", chart: Optional[str]) -> List[str]:
    """The "Results" table: every metric's mean and interval per model, after the chart when there is one."""
    lines = ["", f"## Results (mean [{_pct(cmp)}% CI])", ""]
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
    return lines


def _held_out_lines(cmp: "ModelComparison") -> List[str]:
    """The primary metric over the held-out passages only (a run's evaluation); none otherwise."""
    held = getattr(cmp, "held_out", None)
    if held is None:
        return []
    lines = ["", f"## The same questions over the held-out passages only ({held.dataset.n_corpus} passages)", "",
             f"The figures above search the whole corpus ({cmp.dataset.n_corpus} passages, as the app's index holds them). "
             "Searching only the held-out passages is easier (no distractor from the training chunks):", ""]
    for label in held.results:
        e = held.estimates[label][cmp.primary_metric]
        lines.append(f"- {label}: {cmp.primary_metric} {_fmt(e.value)} [{_fmt(e.ci_low)}, {_fmt(e.ci_high)}]")
    return lines


def _difference_lines(cmp: "ModelComparison") -> List[str]:
    """The paired differences vs the base: a verdict per model on the primary metric, then every metric's table."""
    if not cmp.differences:
        return []
    primary = cmp.primary_metric
    lines = ["", f"## Difference vs `{cmp.base}` (paired, same queries)", ""]
    for label, diffs in cmp.differences.items():
        t = diffs[primary]
        verdict = ("a real difference (p < 0.05)" if t.significant(0.05)
                   else "not distinguishable from noise at this number of queries (p >= 0.05)")
        lines.append(f"- **{label}** {primary}: {t.mean_diff:+.4f} [{t.ci_low:+.4f}, {t.ci_high:+.4f}], "
                     f"p = {_p(t.p_value)}: {verdict}. Better on {t.wins} queries, worse on {t.losses}, "
                     f"tied on {t.ties}.")
    lines += ["", f"| metric | model | difference | {_pct(cmp)}% CI | p |", "|---|---|---|---|---|"]
    for label, diffs in cmp.differences.items():
        for m in cmp.metric_names:
            t = diffs[m]
            lines.append(f"| {m} | {label} | {t.mean_diff:+.4f} | [{t.ci_low:+.4f}, {t.ci_high:+.4f}] | {_p(t.p_value)} |")
    return lines


def _worst_lines(cmp: "ModelComparison") -> List[str]:
    """Each model's worst queries: what was expected and what was retrieved instead; none when no model has any."""
    if not any(cmp.worst.values()):
        return []
    primary = cmp.primary_metric
    lines = ["", f"## Worst queries (lowest {primary})"]
    for label, entries in cmp.worst.items():
        lines += ["", f"### {label}", ""]
        for e in entries:
            lines.append(f"- `{e['query_id']}` {_one_line(e['query'])} ({primary} = {e['metrics'][primary]:.3f})")
            rel = ", ".join(f"`{r['id']}`" for r in e["relevant"])
            lines.append(f"  - expected: {rel}")
            for r in e["retrieved"]:
                mark = "relevant" if r["relevant"] else "retrieved instead"
                lines.append(f"  - {mark}: `{r['id']}` ({r['score']:.3f}) {_one_line(r['text'])}")
    return lines


def _extra_lines(cmp: "ModelComparison") -> List[str]:
    """The caller's extra sections (title -> Markdown body), in order."""
    lines: List[str] = []
    for title, body in cmp.extra_sections.items():
        lines += ["", f"## {title}", "", body.strip()]
    return lines


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
