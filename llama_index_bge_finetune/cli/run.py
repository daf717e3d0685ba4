"""``bge-finetune run`` and ``bge-finetune demo``: the whole loop in one command."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import typer

from llama_index_bge_finetune import pipeline
from llama_index_bge_finetune.cli import bm25_options, options
from llama_index_bge_finetune.cli.table import comparison_table, verdict_lines
from llama_index_bge_finetune.cli.progress import console, results, setup_logging, stage
from llama_index_bge_finetune.encoding.backends import backend_from_cli
from llama_index_bge_finetune.errors import EvaluationError, GenerationError
from llama_index_bge_finetune.window_settings import parse_window_setting

logger = logging.getLogger("llama_index_bge_finetune.cli")

RUN_HELP = """Run the whole loop on a folder of documents: chunk, generate questions, split, fine-tune, evaluate.

Writes to OUTPUT: the model (model/), the datasets (train_dataset.json, val_dataset.json),
report.html, report.md, report.json and chart.png. Rerunning an interrupted run resumes it.
The report adds BM25 and the fine-tuned model fused with BM25 (each half of the questions ranked by
the fusion chosen on the other half); model/retrieval.json names the retrieval to ship (dense, BM25
or a hybrid), chosen on all validation questions. --no-bm25 leaves both rows out.
--model NAME=openai:MODEL adds a hosted embedding model to the report (key from OPENAI_API_KEY;
its cost is printed before any request, its vectors are cached so each text is paid for once).
With --ray (or RAY_ADDRESS set), mining and evaluation encode their corpus on a Ray cluster.

Example: bge-finetune run docs/ --output runs/docs --epochs 2
"""

DEMO_HELP = """Run the whole loop on the Python Language Reference that CPython ships (no download, no API key).

Example: bge-finetune demo --output bge-finetune-demo
"""

Output = typer.Option("bge-finetune-output", "--output", "-o", help="Folder for the model, datasets and report.")


def run(
    documents: Path = options.DOCUMENTS,
    output: Path = Output,
    base_model: Optional[str] = typer.Option(None, help="Model to fine-tune (hub id or folder). Default: BAAI/bge-small-en-v1.5 when reachable, else the packaged all-MiniLM-L6-v2."),
    generator: str = options.GENERATOR,
    llm_model: str = options.LLM_MODEL,
    questions_per_chunk: int = options.QUESTIONS_PER_CHUNK,
    chunk_size: int = options.CHUNK_SIZE,
    chunk_overlap: int = options.CHUNK_OVERLAP,
    val_fraction: float = options.VAL_FRACTION,
    seed: int = typer.Option(0, help="Seed for the split and training."),
    epochs: Optional[int] = typer.Option(None, min=1, help="Training epochs (default: the engine's)."),
    batch_size: Optional[int] = typer.Option(None, min=2, help="Training batch size (default: the engine's)."),
    learning_rate: Optional[float] = typer.Option(None, help="Learning rate (default: the engine's)."),
    k: List[int] = typer.Option([1, 3, 5, 10], "--k", help="Cut-offs for the metrics; repeat for several."),
    max_nodes: Optional[int] = options.MAX_NODES,
    max_retries: int = options.MAX_RETRIES,
    batch_api: bool = options.BATCH_API,
    batch_poll_seconds: float = options.BATCH_POLL_SECONDS,
    checkpoint_steps: Optional[int] = options.CHECKPOINT_STEPS,
    checkpoint_minutes: Optional[float] = options.CHECKPOINT_MINUTES,
    overwrite: bool = typer.Option(False, help="Replace a finished run in OUTPUT (the generation cache is reused)."),
    reranker: bool = typer.Option(False, "--reranker", help="Also fine-tune a reranker (cross-encoder) on the same questions; the report adds fine-tuned + reranker."),
    model: List[str] = typer.Option([], "--model", "-m", help="Also compare NAME=MODEL in the report: a folder, a hub id, or openai:MODEL for a hosted embedding model (e.g. ada=openai:text-embedding-3-small); repeat for several."),
    no_bm25: bool = bm25_options.NO_BM25,
    bm25_language: str = bm25_options.BM25_LANGUAGE,
    bm25_stopwords: str = bm25_options.BM25_STOPWORDS,
    api_base: Optional[str] = options.API_BASE,
    ray: bool = options.RAY,
    precision: str = options.PRECISION,
    max_seq_length: str = options.MAX_SEQ_LENGTH,
    verbose: bool = options.VERBOSE,
) -> None:
    setup_logging(verbose)
    from llama_index_bge_finetune.cli.evaluate import parse_models

    extra_models = parse_models(model, api_base=api_base) if model else {}
    taken = {"base", "fine-tuned", "fine-tuned + reranker", HYBRID_ROW} & set(extra_models)
    if taken:
        raise EvaluationError(f"--model names {sorted(taken)} are the run's own rows; choose other NAMEs.")
    config = pipeline.RunConfig(
        output=str(output), documents=str(documents.resolve()), base_model=base_model, generator=generator,
        reranker=reranker, precision=precision, max_seq_length=parse_window_setting(max_seq_length),
        llm_model=llm_model, questions_per_chunk=questions_per_chunk, chunk_size=chunk_size,
        chunk_overlap=chunk_overlap, val_fraction=val_fraction, seed=seed, epochs=epochs,
        batch_size=batch_size, learning_rate=learning_rate, k_values=tuple(k), max_nodes=max_nodes,
    )
    from llama_index_bge_finetune.ingest import load_documents

    run_loop(config, lambda: load_documents(documents), overwrite=overwrite, max_retries=max_retries,
             checkpoint_steps=checkpoint_steps, checkpoint_minutes=checkpoint_minutes, batch_api=batch_api,
             batch_poll_seconds=batch_poll_seconds, extra_models=extra_models, encode_backend=backend_from_cli(ray),
             verbose=verbose, bm25=bm25_options.bm25_from_cli(no_bm25, bm25_language, bm25_stopwords))


DEMO_CHUNK_SIZE = 256  # the packaged MiniLM reads 256 tokens: a question never points past what it sees
DEMO_MAX_NODES = 160
DEMO_ALL_CHUNKS = 544  # pydoc_data.topics in chunks of DEMO_CHUNK_SIZE tokens


def demo(
    output: Path = typer.Option("bge-finetune-demo", "--output", "-o", help="Folder for the model, datasets and report."),
    base_model: Optional[str] = typer.Option(None, help="Model to fine-tune (default as for `run`)."),
    generator: str = typer.Option("auto", help="auto, openai, offline or local (as for `run`)."),
    epochs: int = typer.Option(1, min=1, help="Training epochs (the demo prints its time estimate for this CPU)."),
    max_nodes: Optional[int] = typer.Option(DEMO_MAX_NODES, min=2, help=f"Use the first N chunks of 256 tokens (all: {DEMO_ALL_CHUNKS})."),
    overwrite: bool = typer.Option(False, help="Replace a finished demo run in OUTPUT."),
    no_bm25: bool = bm25_options.NO_BM25,
    bm25_language: str = bm25_options.BM25_LANGUAGE,
    bm25_stopwords: str = bm25_options.BM25_STOPWORDS,
    verbose: bool = options.VERBOSE,
) -> None:
    setup_logging(verbose)
    from llama_index_bge_finetune.cli.estimate import demo_estimate_line
    from llama_index_bge_finetune.ingest import demo_documents
    from llama_index_bge_finetune.models import offline_model_path

    config = pipeline.RunConfig(output=str(output), documents="pydoc_data.topics (CPython's Language Reference)",
                                base_model=base_model, generator=generator, epochs=epochs, max_nodes=max_nodes,
                                chunk_size=DEMO_CHUNK_SIZE)

    def announce(model: str) -> None:
        line = demo_estimate_line(min(max_nodes or DEMO_ALL_CHUNKS, DEMO_ALL_CHUNKS), epochs,
                                  packaged_model=model == offline_model_path())
        console.print(line, highlight=False)

    run_loop(config, demo_documents, overwrite=overwrite, verbose=verbose, announce=announce,
             bm25=bm25_options.bm25_from_cli(no_bm25, bm25_language, bm25_stopwords))


def run_loop(config: pipeline.RunConfig, load: Callable[[], List[Any]], overwrite: bool,
             max_retries: Optional[int] = None, checkpoint_steps: Optional[int] = None,
             checkpoint_minutes: Optional[float] = None, batch_api: bool = False,
             batch_poll_seconds: float = 30.0, extra_models: Optional[Dict[str, Any]] = None,
             encode_backend: str = "local", verbose: bool = False,
             announce: Optional[Callable[[str], None]] = None, bm25: Any = True) -> None:
    """The stages of `run`, each with a progress bar, ending with the before/after table.

    ``extra_models`` (label -> model spec or encoder) are compared too, after base and fine-tuned.
    ``verbose`` shows the model libraries' own progress bars too; ``announce`` is called with the
    chosen base model before the documents are read (the demo prints its time estimate).
    ``bm25`` (True, a ``BM25Settings``, or False for none) adds the BM25 row and the fine-tuned + bm25
    hybrid, whose choice on all validation questions is written to ``model/retrieval.json``.

    Every argument and the output folder are checked before the documents are read, without loading a
    model library, so a refused argument answers at once; a rerun of an interrupted run resumes it
    (generation from its cache, training from its last checkpoint).
    """
    out = Path(config.output)
    started = time.perf_counter()
    checkpoint_seconds = checkpoint_minutes * 60 if checkpoint_minutes is not None else None
    settings, choice = _check_run(config, out, overwrite, checkpoint_steps, checkpoint_seconds, batch_api,
                                  encode_backend)
    if announce is not None:
        announce(choice.model)
    docs = _read_documents(load)
    gen, gen_description = pipeline.make_generator(config.generator, config.llm_model, config.questions_per_chunk,
                                                   max_retries=max_retries, batch_api=batch_api,
                                                   batch_poll_seconds=batch_poll_seconds)
    nodes = _chunk(config, docs)
    pipeline.prepare_output(out, overwrite, settings)
    console.print(f"Questions: {gen_description}", highlight=False)
    pipeline.save_run_config(config, {"base_model_resolved": choice.model, "base_model_reason": choice.reason,
                                      "question_generator": gen_description, "n_chunks": len(nodes)})
    dataset, failures = _generate_questions(nodes, gen, out)
    train, val = pipeline.split_dataset(dataset, out, config.val_fraction, config.seed)
    model_dir = out / "model"
    training = _fine_tune(config, choice.model, train, model_dir, checkpoint_steps, checkpoint_seconds,
                          encode_backend, verbose)
    rerank = _fine_tune_reranker(config, train, val, out, encode_backend, verbose) if config.reranker else None
    models = pipeline.with_bm25({"base": choice.model, "fine-tuned": str(model_dir), **(extra_models or {})}, bm25)
    with stage("Evaluating base vs fine-tuned"):
        comparison = pipeline.evaluate_models(
            models, val, out, k_values=config.k_values, hybrid=_hybrid_rows(models),
            bm25_settings=bm25 if not isinstance(bm25, bool) else None,
            extra_sections=_report_sections(config, choice, gen_description, train, val, training, len(nodes),
                                            failures),
            overwrite=True,  # the run's own folder, already checked by prepare_output
            whole_corpus=pipeline.node_corpus(nodes),
            rerank=rerank,
            encode_backend=encode_backend,
        )
    shipped = pipeline.write_retrieval_config(comparison, model_dir, hybrid=HYBRID_ROW)
    _print_results(comparison, started, out, model_dir)
    console.print(f"Retrieval to ship with the model: {shipped.describe()} ({model_dir / 'retrieval.json'}).",
                  highlight=False)


HYBRID_ROW = "fine-tuned + bm25"


def _hybrid_rows(models: Dict[str, Any]) -> Dict[str, Tuple[str, str]]:
    """The run's hybrid row, the fine-tuned model fused with the BM25 row, when there is a BM25 row."""
    from llama_index_bge_finetune.evaluation.bm25_evaluator import is_bm25_spec

    lexical = next((label for label, spec in models.items() if is_bm25_spec(spec)), None)
    return {HYBRID_ROW: ("fine-tuned", lexical)} if lexical else {}


def _check_run(config: pipeline.RunConfig, out: Path, overwrite: bool, checkpoint_steps: Optional[int],
               checkpoint_seconds: Optional[float], batch_api: bool, encode_backend: str) -> Tuple[dict, Any]:
    """Check every argument and the output folder before any document is read; return the run's settings and base model."""
    from llama_index_bge_finetune.evaluation.metrics import check_k_values
    from llama_index_bge_finetune.ingest import check_chunking
    from llama_index_bge_finetune.models import resolve_base_model

    check_k_values(config.k_values)
    check_chunking(config.chunk_size, config.chunk_overlap)
    pipeline.check_training_args(config.learning_rate, config.epochs, checkpoint_steps, checkpoint_seconds,
                                 config.precision)
    settings = pipeline.run_settings(config)
    pipeline.check_run_output(out, overwrite, settings)
    pipeline.check_generator(config.generator, batch_api)
    choice = resolve_base_model(config.base_model)
    pipeline.check_base_model(choice.model)
    pipeline.check_encode_backend(encode_backend)
    return settings, choice


def _read_documents(load: Callable[[], List[Any]]) -> List[Any]:
    """The documents, read under a progress line."""
    with stage("Reading documents"):
        return load()


def _chunk(config: pipeline.RunConfig, docs: List[Any]) -> List[Any]:
    """The documents' chunks (the first ``max_nodes`` when set), with the counts printed."""
    from llama_index_bge_finetune.ingest import chunk_documents

    with stage("Chunking"):
        nodes = chunk_documents(docs, chunk_size=config.chunk_size, chunk_overlap=config.chunk_overlap)
    if config.max_nodes:
        nodes = nodes[: config.max_nodes]
    console.print(f"{len(docs)} documents, {len(nodes)} chunks.")
    return nodes


def _generate_questions(nodes: List[Any], gen: Any, out: Path) -> Tuple[Any, List[Any]]:
    """Questions for every chunk (resumed from the run's cache) and the chunks that got none.

    Raises:
        GenerationError: fewer than 4 questions, too few to train and evaluate.
    """
    with stage("Generating questions", total=len(nodes)) as update:
        dataset, failures = pipeline.generate_dataset(nodes, gen, out, on_progress=update)
    if failures:
        console.print(f"[yellow]{len(failures)} of {len(nodes)} chunks got no questions[/yellow]: "
                      f"{pipeline.failure_summary(failures)} (details in {out / pipeline.FAILURES_FILE}).",
                      highlight=False)
    if len(dataset.queries) < 4:
        raise GenerationError(
            f"Only {len(dataset.queries)} questions were generated from {len(nodes)} chunks: too few to "
            "train and evaluate. Add documents, lower --chunk-size, or raise --questions-per-chunk."
        )
    return dataset, failures


def _fine_tune(config: pipeline.RunConfig, base_model: str, train: Any, model_dir: Path,
               checkpoint_steps: Optional[int], checkpoint_seconds: Optional[float], encode_backend: str,
               verbose: bool) -> Any:
    """The run's training result: trained now (one progress bar of optimizer steps), or read back from a finished model."""
    if (model_dir / "training_result.json").is_file():
        console.print(f"Reusing the model this run already fine-tuned in {model_dir}.")
        return pipeline.load_training_result(model_dir)
    console.print(f"Fine-tuning on {len(train.queries)} questions over {len(train.corpus)} chunks ...")
    with stage("Fine-tuning (optimizer steps)") as update:
        training = pipeline.train_model(
            train, base_model, model_dir, val=None, epochs=config.epochs, batch_size=config.batch_size,
            learning_rate=config.learning_rate, seed=config.seed, checkpoint_steps=checkpoint_steps,
            checkpoint_seconds=checkpoint_seconds, encode_backend=encode_backend, precision=config.precision,
            max_seq_length=config.max_seq_length, show_progress_bar=verbose, on_progress=update,
            overwrite=(model_dir / "modules.json").exists(),  # saved but killed before training_result.json
        ).result
    if training.resumed_from_step:
        console.print(f"Training resumed from step {training.resumed_from_step}.")
    return training


def _fine_tune_reranker(config: pipeline.RunConfig, train: Any, val: Any, out: Path, encode_backend: str,
                        verbose: bool) -> Dict[str, Any]:
    """Train the reranker (one spinner) and return the report's reranked row."""
    from llama_index_bge_finetune.reranking import Reranking

    console.print(f"Fine-tuning a reranker on {len(train.queries)} questions ...")
    with stage("Fine-tuning the reranker"):
        pipeline.train_reranker(train, out / "model", out / "reranker", val=val, seed=config.seed,
                                encode_backend=encode_backend, precision=config.precision,
                                show_progress_bar=verbose)
    # the reranker's saved blend weight was chosen on these held-out questions: the report
    # reranks each half with the weight chosen on the other half instead (unbiased)
    return {"fine-tuned + reranker": ("fine-tuned", Reranking(str(out / "reranker"), blend_weight="cross-fit"))}


def _print_results(comparison: Any, started: float, out: Path, model_dir: Path) -> None:
    """The before/after table, the run's duration and where the model and report are."""
    console.print()
    report = comparison.to_dict()
    results.print(comparison_table(report))
    for line in verdict_lines(report):
        results.print(line, highlight=False)
    console.print(f"\nDone in {time.perf_counter() - started:.0f} s. Model: {model_dir}; report: {out / 'report.md'}")
    console.print(f"Open the report in a browser: {(out / 'report.html').resolve()}", highlight=False)


def _report_sections(config: pipeline.RunConfig, choice: Any, gen_description: str, train: Any, val: Any,
                     result: Any, n_nodes: int, failures: List[Any]) -> dict:
    """The report's "Run" section: documents, chunks, base model, questions, split, training and window."""
    lines = [
        f"- Documents: {config.documents}",
        f"- Chunks: {n_nodes} (chunk size {config.chunk_size}, overlap {config.chunk_overlap})",
        f"- Base model: {choice.model} ({choice.reason})",
        f"- Questions: {gen_description}",
        f"- Train: {len(train.queries)} questions over {len(train.corpus)} chunks; "
        f"validation: {len(val.queries)} questions over {len(val.corpus)} chunks (split by chunk, seed {config.seed})",
    ]
    if failures:
        lines.append(f"- Chunks without questions: {pipeline.failure_summary(failures)} "
                     f"(one line each in {pipeline.FAILURES_FILE})")
    hp = result.hyperparameters
    lines.append(
        f"- Training: {result.steps} steps, {hp.get('epochs')} epochs, batch {hp.get('batch_size')}, "
        f"learning rate {hp.get('learning_rate')}, loss {hp.get('loss')}; {result.pairs} pairs "
        f"({result.pairs_with_negatives} with a mined hard negative); {result.train_seconds:.0f} s "
        f"({result.examples_per_second:.1f} examples/s)"
    )
    window = result.window or {}
    if window.get("chosen") and window.get("chosen") != window.get("base"):
        lines.append(f"- Window: the fine-tuned model reads up to {window['chosen']} tokens of a chunk, the base "
                     f"{window['base']} ({window['reason']}; --max-seq-length): part of the difference is "
                     "the longer window")
    return {"Run": "\n".join(lines)}
