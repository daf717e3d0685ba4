"""``bge-finetune generate``: documents in, question/passage datasets out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from llama_index_bge_finetune import pipeline
from llama_index_bge_finetune.cli import options
from llama_index_bge_finetune.cli.progress import console, setup_logging, stage

HELP = """Generate question/passage pairs from a folder of documents and split them by chunk.

Writes dataset.json, train_dataset.json and val_dataset.json (llama-index EmbeddingQAFinetuneDataset
JSON) to OUTPUT; an interrupted run resumes from OUTPUT/cache/generation.jsonl.

Example: bge-finetune generate docs/ --output runs/docs --generator openai
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
    overwrite: bool = typer.Option(False, help="Replace datasets of a finished run in OUTPUT."),
    verbose: bool = options.VERBOSE,
) -> None:
    setup_logging(verbose)
    from llama_index_bge_finetune.ingest import chunk_documents, load_documents

    pipeline.prepare_output(output, overwrite)
    gen, description = pipeline.make_generator(generator, llm_model, questions_per_chunk)
    console.print(f"Questions: {description}", highlight=False)
    with stage("Reading and chunking documents"):
        nodes = chunk_documents(load_documents(documents), chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    nodes = nodes[:max_nodes] if max_nodes else nodes
    with stage("Generating questions", total=len(nodes)) as update:
        dataset, failures = pipeline.generate_dataset(nodes, gen, output, on_progress=update)
    train, val = pipeline.split_dataset(dataset, output, val_fraction, seed)
    console.print(f"{len(dataset.queries)} questions from {len(nodes)} chunks ({len(failures)} chunks failed); "
                  f"train {len(train.queries)}, val {len(val.queries)} -> {output}")
