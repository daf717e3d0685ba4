"""Shared parts of the fine-tuning benchmarks: data loading and the base / peer / ours comparison."""

from __future__ import annotations

import gc
import json
import logging
import os
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset  # noqa: E402
from llama_index_bge_finetune.precisions import cpu_description  # noqa: E402
from llama_index_bge_finetune.training.retrieval_metrics import retrieval_scores  # noqa: E402

logger = logging.getLogger("bench_finetune")
# The real data lies beside the checkout; BENCH_DATA points elsewhere (e.g. from a second worktree).
SHARED = Path(os.environ.get("BENCH_DATA", ROOT.parent / "shared" / "data"))


def load_scifact(root: Path = SHARED / "scifact") -> Tuple[EmbeddingQAFinetuneDataset, EmbeddingQAFinetuneDataset]:
    """(train, test): the 809 train / 300 test claims, each against the full 5,183-abstract corpus."""
    corpus: Dict[str, str] = {}
    with open(root / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            corpus[str(r["_id"])] = (r.get("title", "") + " " + r["text"]).strip()
    texts = {}
    with open(root / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            texts[str(r["_id"])] = r["text"]

    def split(name: str) -> EmbeddingQAFinetuneDataset:
        rel: Dict[str, List[str]] = {}
        with open(root / "qrels" / f"{name}.tsv", encoding="utf-8") as f:
            next(f)
            for line in f:
                q, d, score = line.strip().split("\t")
                if int(score) > 0:
                    rel.setdefault(q, []).append(d)
        return EmbeddingQAFinetuneDataset(
            queries={q: texts[q] for q in rel}, corpus=corpus, relevant_docs=rel, query_source="user"
        )

    return split("train"), split("test")


def load_llamaindex_10k(root: Path = SHARED / "llamaindex_10k") -> Tuple[EmbeddingQAFinetuneDataset, EmbeddingQAFinetuneDataset]:
    """(train on Lyft, validate on Uber), the published LlamaIndex experiment's files."""
    return (
        EmbeddingQAFinetuneDataset.from_json(root / "data" / "train_dataset.json"),
        EmbeddingQAFinetuneDataset.from_json(root / "data" / "val_dataset.json"),
    )


def _cpu_seconds() -> float:
    """User + system CPU time of this process (less sensitive than wall time to other jobs on a shared machine)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def compare(
    train: EmbeddingQAFinetuneDataset,
    test: EmbeddingQAFinetuneDataset,
    base_model: str,
    work_dir: Path,
    cache_dir: Path,
    ours_kwargs: Dict[str, Any] | None = None,
    include_peer: bool = True,
) -> Dict[str, Dict[str, Any]]:
    """Base, the peer engine with its defaults and ours with its defaults, on the same data in one process."""
    from sentence_transformers import SentenceTransformer

    rows: Dict[str, Dict[str, Any]] = {}
    work_dir.mkdir(parents=True, exist_ok=True)

    base = SentenceTransformer(base_model, device="cpu")
    t = time.perf_counter()
    rows["base"] = retrieval_scores(base, test, cache_dir=cache_dir)
    logger.info("base: %s (%.0f s)", rows["base"], time.perf_counter() - t)
    rows["base"]["mining_encode_seconds"] = _warm_mining_cache(base, train, cache_dir, ours_kwargs or {})
    del base
    gc.collect()

    if include_peer:
        rows["peer"] = _run_peer(train, test, base_model, work_dir)
    rows["ours"] = _run_ours(train, test, base_model, work_dir, cache_dir, ours_kwargs)
    return rows


def _warm_mining_cache(model: Any, train: EmbeddingQAFinetuneDataset, cache_dir: Path,
                       ours_kwargs: Dict[str, Any]) -> float:
    """Encode the training corpus as our miner does (its opening only), into the shared cache; the seconds it took.

    The corpus vectors are a one-off cost that a rerun, a resume or an evaluation over the same
    corpus shares, like the base evaluation's: the training time compares training with training,
    and this cost is reported beside it (0 when the cache already held the vectors).
    """
    import inspect

    from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine
    from llama_index_bge_finetune.retrieval.corpus_cache import encode_cached

    if ours_kwargs.get("hard_negatives", 1) == 0:
        return 0.0
    default = inspect.signature(SentenceTransformersFinetuneEngine).parameters["hard_negative_max_tokens"].default
    length = ours_kwargs.get("hard_negative_max_tokens", default)
    full = model.max_seq_length
    model.max_seq_length = min(full, length) if length else full
    t = time.perf_counter()
    try:
        encode_cached(model, list(train.corpus.values()), cache_dir, batch_size=64)
    finally:
        model.max_seq_length = full
    return time.perf_counter() - t


def _run_peer(train: EmbeddingQAFinetuneDataset, test: EmbeddingQAFinetuneDataset, base_model: str, work_dir: Path) -> Dict[str, Any]:
    from llama_index.finetuning import EmbeddingQAFinetuneDataset as PeerDataset
    from llama_index.finetuning import SentenceTransformersFinetuneEngine as PeerEngine
    from sentence_transformers import SentenceTransformer

    peer_out = work_dir / "peer"
    shutil.rmtree(peer_out, ignore_errors=True)
    peer_ds = PeerDataset(queries=train.queries, corpus=train.corpus, relevant_docs=train.relevant_docs)
    peer = PeerEngine(peer_ds, model_id=base_model, model_output_path=str(peer_out))
    peer_note = "defaults"
    t, c = time.perf_counter(), _cpu_seconds()
    try:
        peer.finetune()
    except ValueError as exc:  # its default evaluation_steps=50 without a validation set
        logger.warning("peer crashed with its defaults (%s); rerunning with evaluation_steps=0", exc)
        peer_note = f"defaults crash without val set ({str(exc)[:80]}); rerun with evaluation_steps=0"
        peer.evaluation_steps = 0
        t, c = time.perf_counter(), _cpu_seconds()
        peer.finetune()
    peer_seconds, peer_cpu = time.perf_counter() - t, _cpu_seconds() - c
    n_peer = len(peer.examples) * peer.epochs
    row = retrieval_scores(SentenceTransformer(str(peer_out), device="cpu"), test)
    row.update(note=peer_note, train_seconds=peer_seconds, train_cpu_seconds=peer_cpu, examples_per_second=n_peer / peer_seconds, steps=len(peer.loader) * peer.epochs)
    logger.info("peer: %s", row)
    del peer
    gc.collect()
    return row


def _run_ours(train: EmbeddingQAFinetuneDataset, test: EmbeddingQAFinetuneDataset, base_model: str, work_dir: Path,
              cache_dir: Path, ours_kwargs: Dict[str, Any] | None) -> Dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine

    ours_out = work_dir / "ours"
    shutil.rmtree(ours_out, ignore_errors=True)
    ours = SentenceTransformersFinetuneEngine(
        train, model_id=base_model, model_output_path=str(ours_out), cache_dir=cache_dir, **(ours_kwargs or {})
    )
    t, c = time.perf_counter(), _cpu_seconds()
    ours.finetune()
    ours_seconds, ours_cpu = time.perf_counter() - t, _cpu_seconds() - c
    res = ours.result
    model = SentenceTransformer(str(ours_out), device="cpu")
    row = retrieval_scores(model, test, query_prompt=ours.query_instruction)
    row.update(
        train_seconds=ours_seconds, train_cpu_seconds=ours_cpu, trainer_seconds=res.train_seconds, mining_seconds=res.mining_seconds,
        examples_per_second=res.examples_per_second, steps=res.steps, final_loss=res.final_loss,
        pairs=res.pairs, pairs_with_negatives=res.pairs_with_negatives, hyperparameters=res.hyperparameters,
    )
    logger.info("ours: %s", row)
    return row


def parse_overrides(items: List[str]) -> Dict[str, Any]:
    """``["epochs=1", "train_max_seq_length=128"]`` -> keyword arguments (values parsed as JSON when possible)."""
    out: Dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects NAME=VALUE, got {item!r}")
        try:
            out[name] = json.loads(value)
        except json.JSONDecodeError:
            out[name] = value
    return out


def machine() -> str:
    """One line describing where the benchmark ran."""
    import torch

    return f"{cpu_description()}; {platform.machine()} {os.cpu_count()} visible cores (shared), torch {torch.__version__}, no GPU"
