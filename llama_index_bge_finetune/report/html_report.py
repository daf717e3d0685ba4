"""``report.html``: one self-contained page to look at a run, not just read it.

Sections: a verdict in plain words, metrics at every k (an interactive Vega-Lite chart and the
table), a per-question browser (what each model retrieved, wins and losses), the data (what the
generated questions look like, which chunks got none and why), the training (loss and validation
metric per step), and the run's settings, package versions and machine.

The file inlines its styles, its script and the chart libraries (Vega, Vega-Lite and vega-embed,
vendored in ``html/vendor`` with their licences), so it opens offline from disk and fetches
nothing. Per-question data is gzip-compressed JSON, decoded in the page and rendered one page of
rows at a time, so 10,000 questions open instantly.

Example::

    from llama_index_bge_finetune.report.html_report import write_html_report

    write_html_report(comparison, "runs/docs/report.html")   # reads run.json etc. beside it
"""

from __future__ import annotations

import base64
import datetime as _dt
import gzip
import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Union

from llama_index_bge_finetune.report.dataset_profile import profile_dataset, read_failures
from llama_index_bge_finetune.evaluation.metrics import METRIC_NAMES
from llama_index_bge_finetune.report.markdown import hosted_usage, shipped_paragraphs
from llama_index_bge_finetune.report.run_context import (environment, read_json, read_training, redact, scrub_text,
                                                              secret_values)

if TYPE_CHECKING:
    from llama_index_bge_finetune.evaluation.comparison import ModelComparison

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("html")
VENDOR = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")
PASSAGE_CHARS = 1000  # passage text kept per passage in the question browser
MAX_RETRIEVED = 10  # retrieved passages kept per question and model
FAILURES_FILE = "failures.jsonl"


def write_html_report(cmp: "ModelComparison", path: Union[str, os.PathLike],
                      run_dir: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Write ``report.html`` for ``cmp``; the run's files are looked up in ``run_dir`` (default: beside it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    html = render_html(cmp, Path(run_dir) if run_dir is not None else path.parent)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    os.replace(tmp, path)
    return path


def render_html(cmp: "ModelComparison", run_dir: Optional[Path] = None) -> str:
    """The whole page as one string."""
    data = report_data(cmp, run_dir)
    questions = question_data(cmp)
    secrets = secret_values()
    data_json = json.dumps(redact(data, secrets), ensure_ascii=False, separators=(",", ":"), default=str)
    q_json = scrub_text(json.dumps(questions, ensure_ascii=False, separators=(",", ":")), secrets)
    q_blob = base64.b64encode(gzip.compress(q_json.encode("utf-8"), compresslevel=4, mtime=0)).decode("ascii")
    parts = {
        "TITLE": _escape(f"Retrieval report: {cmp.dataset.name or 'evaluation'}"),
        "CSS": (ASSETS / "report.css").read_text(encoding="utf-8"),
        "VENDOR": "\n".join(_script_safe((ASSETS / "vendor" / f).read_text(encoding="utf-8")) for f in VENDOR),
        "APP": _script_safe((ASSETS / "report.js").read_text(encoding="utf-8")),
        "DATA": data_json.replace("<", "\\u003c"),
        "QDATA": q_blob,
    }
    template = (ASSETS / "template.html").read_text(encoding="utf-8")
    return re.sub(r"\{\{(TITLE|CSS|VENDOR|APP|DATA|QDATA)\}\}", lambda m: parts[m.group(1)], template)


def _script_safe(code: str) -> str:
    """Script code that cannot end the ``<script>`` element it is inlined in (``</script`` or ``<!--``)."""
    return re.sub(r"<(/script|!--)", lambda m: "<\\" + m.group(1), code, flags=re.IGNORECASE)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# --------------------------------------------------------------------------- the small part
def report_data(cmp: "ModelComparison", run_dir: Optional[Path] = None) -> Dict[str, Any]:
    """Everything but the per-question data, JSON-able: verdict, metrics, data, training, run."""
    labels = list(cmp.results)
    primary = cmp.primary_metric
    best = cmp.best_retriever().best
    held_out = getattr(cmp, "held_out", None)
    scopes = [_scope(cmp, "whole corpus" if held_out is not None else "evaluated corpus")]
    if held_out is not None:
        scopes.append(_scope(held_out, "held-out passages only"))
    run = read_json(run_dir / "run.json") if run_dir else None
    return {
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "dataset": {
            "name": cmp.dataset.name, "n_queries": cmp.dataset.n_queries, "n_corpus": cmp.dataset.n_corpus,
            "query_source": cmp.dataset.query_source or "unknown", "query_source_note": cmp.dataset.query_source_note,
            "excluded": len(cmp.dataset.excluded),
        },
        "base": cmp.base,
        "best": best,
        "models": labels,
        "primary": primary,
        "confidence": cmp.confidence,
        "k_values": list(cmp.k_values),
        "metric_names": list(METRIC_NAMES),
        "verdict": verdict(cmp, best),
        "scopes": scopes,
        "model_info": [{"label": m, "source": str(r.model_info.get("source") or r.model_info.get("encoder") or ""),
                        "backend": r.model_info.get("backend"), "query_instruction": r.model_info.get("query_instruction"),
                        "seconds": {k: round(v, 2) for k, v in r.timings.items()},
                        "cost": hosted_usage(r.model_info["cost"]) if r.model_info.get("cost") else None,
                        "search": r.search.get("note", "")} for m, r in cmp.results.items()],
        "data": _data_section(cmp, run_dir, run),
        "training": _training_section(cmp, run_dir, run),
        "run": run,
        "extra_sections": dict(cmp.extra_sections),
        "environment": environment(),
    }


def _scope(cmp: "ModelComparison", name: str) -> Dict[str, Any]:
    rows, diffs = [], []
    for model, per_metric in cmp.estimates.items():
        for key, e in per_metric.items():
            metric, k = key.rsplit("@", 1)
            rows.append({"model": model, "metric": metric, "k": int(k), "value": e.value, "lo": e.ci_low, "hi": e.ci_high})
    for model, per_metric in cmp.differences.items():
        for key, t in per_metric.items():
            metric, k = key.rsplit("@", 1)
            diffs.append({"model": model, "metric": metric, "k": int(k), "diff": t.mean_diff, "lo": t.ci_low,
                          "hi": t.ci_high, "p": t.p_value, "wins": t.wins, "losses": t.losses, "ties": t.ties})
    return {"name": name, "dataset": cmp.dataset.name, "n_queries": cmp.dataset.n_queries,
            "n_corpus": cmp.dataset.n_corpus, "estimates": rows, "differences": diffs}


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def verdict(cmp: "ModelComparison", best: Optional[str] = None) -> Dict[str, Any]:
    """The verdict in plain sentences: the best retriever and its lead, the pipeline to ship, each model, each difference."""
    primary, kmax = cmp.primary_metric, max(cmp.k_values)
    hit = f"hit_rate@{kmax}"
    pct = int(round(cmp.confidence * 100))
    ranked = cmp.best_retriever()
    best = best or ranked.best
    ds = cmp.dataset
    where = (f"searching all {ds.n_corpus} passages" if getattr(cmp, "held_out", None) is None
             else f"searching the whole corpus ({ds.n_corpus} passages, as the app's index holds them)")
    lines = []
    for m in cmp.results:
        e, h = cmp.estimates[m][primary], cmp.estimates[m].get(hit)
        found = f"finds the expected passage in its top {kmax} for {_pct(h.value)} of questions; " if h else ""
        lines.append(f"{m} {found}{primary} {e.value:.3f} ({pct}% interval {e.ci_low:.3f} to {e.ci_high:.3f}).")
    differences = []
    for m, per_metric in cmp.differences.items():
        t = per_metric[primary]
        direction = "better" if t.mean_diff > 0 else "worse"
        if t.significant(0.05):
            head = (f"{m} is {direction} than {cmp.base}: {primary} {t.mean_diff:+.3f} ({pct}% interval "
                    f"{t.ci_low:+.3f} to {t.ci_high:+.3f}). This is a real difference: one this large would "
                    f"arise by chance less than {max(t.p_value, 0.001):.3g} of the time (p = {_p(t.p_value)}).")
        else:
            head = (f"{m} vs {cmp.base}: {primary} {t.mean_diff:+.3f} ({pct}% interval {t.ci_low:+.3f} to "
                    f"{t.ci_high:+.3f}). This could be chance (p = {_p(t.p_value)}): with {ds.n_queries} questions the "
                    "two cannot be told apart; more evaluation questions would settle it.")
        differences.append({"model": m, "significant": t.significant(0.05), "better": t.mean_diff > 0,
                            "text": f"{head} {m} ranks the expected passage higher for {t.wins} questions, lower for "
                                    f"{t.losses}, the same for {t.ties}."})
    held = getattr(cmp, "held_out", None)
    scope_note = ""
    if held is not None:
        figs = ", ".join(f"{m} {held.estimates[m][primary].value:.3f}" for m in held.results)
        scope_note = (f"Searching only the {held.dataset.n_corpus} held-out passages (an easier task: no distractor "
                      f"from the training chunks), {primary} is {figs}.")
    return {
        "headline": f"On {ds.n_queries} evaluation questions, {where}, the best retriever is {best}.",
        "best": ranked.sentence,
        "best_beyond_noise": ranked.beyond_noise,
        "pipelines": [p.replace("**", "") for p in shipped_paragraphs(cmp)],
        "models": lines,
        "differences": differences,
        "scope": scope_note,
        "query_source": ds.query_source_note,
        "metric_help": (f"{primary} is a ranking score from 0 to 1: 1 when the expected passage comes first, less "
                        "the lower it is ranked, 0 when it is not retrieved at all."),
    }


def _p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _data_section(cmp: "ModelComparison", run_dir: Optional[Path], run: Optional[dict]) -> Dict[str, Any]:
    """Profile the run's generated questions (``dataset.json``) or, without one, the evaluated questions."""
    failures = read_failures(run_dir / FAILURES_FILE) if run_dir else []
    n_chunks = (run or {}).get("n_chunks")
    generated = run_dir / "dataset.json" if run_dir else None
    if generated is not None and generated.is_file():
        try:  # plain JSON: the report only reads it (validating 10,000 questions would cost a second)
            ds = json.loads(generated.read_text(encoding="utf-8"))
            return profile_dataset(ds["queries"], ds["corpus"], ds["relevant_docs"], failures, n_chunks,
                                   source="dataset.json (every generated question)")
        except Exception as exc:  # noqa: BLE001 - a broken file must not cost the user the report
            logger.warning("Could not profile %s: %s", generated, exc)
    first = cmp.results[cmp.base]
    queries = {q.query_id: q.query for q in first.queries}
    relevant = {q.query_id: list(q.relevant) for q in first.queries}
    return profile_dataset(queries, cmp.corpus, relevant, failures, n_chunks,
                           source="the evaluated questions (no dataset.json beside the report)")


def _training_section(cmp: "ModelComparison", run_dir: Optional[Path], run: Optional[dict]) -> Optional[Dict[str, Any]]:
    folders: List[Path] = [run_dir / "model"] if run_dir else []
    for r in cmp.results.values():
        src = r.model_info.get("source")
        if isinstance(src, str) and src and Path(src).is_dir():
            folders.append(Path(src))
    training = read_training(folders)
    if training is None and not run:
        return None
    training = training or {}
    if run:
        training["base_model"] = run.get("base_model_resolved") or run.get("base_model")
        training["base_model_reason"] = run.get("base_model_reason")
        training["question_generator"] = run.get("question_generator")
    return training


# --------------------------------------------------------------------------- the large part
def question_data(cmp: "ModelComparison") -> Dict[str, Any]:
    """Per-question results, compact: passages once in a table, rows as arrays.

    ``q`` rows are ``[query_id, text, [expected passage indices], [primary metric per model],
    [[passage index, score * 1000, ...] per model]]``; ``p`` is the passage texts (clipped to
    1,000 characters), ``pid`` their ids.
    """
    labels = list(cmp.results)
    primary = cmp.primary_metric
    passages: Dict[str, int] = {}

    def pidx(doc: str) -> int:
        i = passages.get(doc)
        if i is None:
            i = passages[doc] = len(passages)
        return i

    per_model = [cmp.results[m].queries for m in labels]
    rows = []
    for i, q in enumerate(per_model[0]):
        expected = [pidx(d) for d in q.relevant]
        scores, retrieved = [], []
        for queries in per_model:
            r = queries[i]
            scores.append(round(r.metrics[primary], 4))
            ids = r.retrieved_ids[:MAX_RETRIEVED]
            for d in ids:
                if d not in passages:
                    passages[d] = len(passages)
            retrieved.append([x for d, sc in zip(ids, r.retrieved_scores) for x in (passages[d], round(sc * 1000))])
        rows.append([q.query_id, q.query, expected, scores, retrieved])
    corpus: Mapping[str, str] = cmp.corpus
    texts = []
    for doc in passages:
        t = " ".join(str(corpus.get(doc, "")).split())
        texts.append(t[:PASSAGE_CHARS] + ("…" if len(t) > PASSAGE_CHARS else ""))
    return {"models": labels, "metric": primary, "pid": list(passages), "p": texts, "q": rows}
