"""``bge-finetune generate``: documents in, question/passage datasets out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from llama_index_bge_finetune import outputs, pipeline
from llama_index_bge_finetune.cli import options
from llama_index_bge_finetune.cli.progress import console, setup_logging, stage

HELP = """Generate question/passage pairs from a folder of documents and split them by chunk.

Writes dataset.json, train_dataset.json and val_dataset.json (llama-index EmbeddingQAFinetuneDataset
JSON) and failures.jsonl (chunks that got no question, and why) to OUTPUT; an interrupted run resumes
from OUTPUT/cache/generation.jsonl when rerun with the same settings. Exits 2 when no question was written.
With --batch-api the questions go through OpenAI's Batch API (half the price); the batch id is kept in
OUTPUT/cache/generation.batches.json, so a rerun after a stop waits for the same batch.

Example: bge-finetune generate docs/ --output runs/docs --generator openai
Example: bge-finetune generate docs/ --output runs/docs --generator openai --batch-api
"""


def generate(
    documents: Path = options.DOCUMENTS,
    output: Path = typer.Option("bge-finetune-output", "--output", "-o", help="Folder for the datasets."),
    generator: str = options.GENERATOR,
    llm_model: str = options.LLM_MODEL,
    questions_per_chunk: int = options.QUESTIONS_PER_CHUNK,
    chunk_size: int = options.CHUNK_SIZE,
    chunk_overlap: int = options.CHUNK_OVERLAP,
    val_fraction: float = options.VAL_FRACTION,
    seed: int = typer.Option(0, help="Seed for the split."),
    max_nodes: Optional[int] = options.MAX_NODES,
    max_retries: int = options.MAX_RETRIES,
    batch_api: bool = options.BATCH_API,
    batch_poll_seconds: float = options.BATCH_POLL_SECONDS,
    overwrite: bool = typer.Option(False, help="Replace datasets of a finished run in OUTPUT."),
    verbose: bool = options.VERBOSE,
) -> None:
    setup_logging(verbose)
    from llama_index_bge_finetune.ingest import check_chunking, chunk_documents, load_documents

    config = pipeline.RunConfig(
        output=str(output), documents=str(documents.resolve()), generator=generator, llm_model=llm_model,
        questions_per_chunk=questions_per_chunk, chunk_size=chunk_size, chunk_overlap=chunk_overlap,
        val_fraction=val_fraction, seed=seed, max_nodes=max_nodes,
    )
    settings = pipeline.generation_settings(config)
    finished = dict(finished=("train_dataset.json", pipeline.REPORT_FILE),
                    what="finished datasets (train_dataset.json, val_dataset.json)")
    check_chunking(chunk_size, chunk_overlap)
    pipeline.check_run_output(output, overwrite, settings, **finished)
    pipeline.check_generator(generator, batch_api)
    with stage("Reading and chunking documents"):
        nodes = chunk_documents(load_documents(documents), chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    gen, description = pipeline.make_generator(generator, llm_model, questions_per_chunk, max_retries=max_retries,
                                               batch_api=batch_api, batch_poll_seconds=batch_poll_seconds)
    console.print(f"Questions: {description}", highlight=False)
    nodes = nodes[:max_nodes] if max_nodes else nodes
    pipeline.prepare_output(output, overwrite, settings, **finished)
    if not (output / pipeline.RUN_FILE).exists() or overwrite:
        outputs.write_settings(output / pipeline.RUN_FILE, {**settings, "command": "generate"})
    with stage("Generating questions", total=len(nodes)) as update:
        dataset, failures = pipeline.generate_dataset(nodes, gen, output, on_progress=update)
    train, val = pipeline.split_dataset(dataset, output, val_fraction, seed)
    failed = f" ({pipeline.failure_summary(failures)}; see {output / pipeline.FAILURES_FILE})" if failures else ""
    console.print(f"{len(dataset.queries)} questions from {len(nodes)} chunks{failed}; "
                  f"train {len(train.queries)}, val {len(val.queries)} -> {output}", highlight=False)
