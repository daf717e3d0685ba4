"""``bge-finetune train``: a training dataset in, a fine-tuned model folder out."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from llama_index_bge_finetune import pipeline
from llama_index_bge_finetune.cli import options
from llama_index_bge_finetune.cli.progress import console, setup_logging
from llama_index_bge_finetune.cli.progress import stage
from llama_index_bge_finetune.encoding.backends import backend_from_cli
from llama_index_bge_finetune.window_settings import parse_window_setting

HELP = """Fine-tune a model on a dataset JSON (ours or llama-index-finetuning's).

Writes a sentence-transformers folder to OUTPUT that SentenceTransformer(OUTPUT) and
HuggingFaceEmbedding(model_name=OUTPUT) load. Checkpoints are saved every 10% of the steps and
every 5 minutes (see --checkpoint-steps, --checkpoint-minutes); a killed run resumes from its last
checkpoint when the same command is run again. A finished model in OUTPUT is kept unless --overwrite.
With --ray (or RAY_ADDRESS set), hard-negative mining encodes the corpus on a Ray cluster.

Example: bge-finetune train runs/docs/train_dataset.json --val runs/docs/val_dataset.json --output runs/docs/model
"""


def train(
    dataset: Path = typer.Argument(..., help="Training dataset (EmbeddingQAFinetuneDataset JSON or JSONL)."),
    output: Path = typer.Option(..., "--output", "-o", help="Folder for the fine-tuned model."),
    val: Optional[Path] = typer.Option(None, help="Validation dataset, evaluated during training."),
    base_model: Optional[str] = typer.Option(None, help="Model to fine-tune (default: BGE when reachable, else the packaged MiniLM)."),
    epochs: Optional[float] = typer.Option(None, help="Epochs (default: the engine's)."),
    batch_size: Optional[int] = typer.Option(None, min=2, help="Batch size (default: the engine's)."),
    learning_rate: Optional[float] = typer.Option(None, help="Learning rate (default: the engine's)."),
    seed: int = typer.Option(0, help="Seed."),
    checkpoint_steps: Optional[int] = options.CHECKPOINT_STEPS,
    checkpoint_minutes: Optional[float] = options.CHECKPOINT_MINUTES,
    overwrite: bool = typer.Option(False, help="Replace a finished model (or restart unfinished training) in OUTPUT."),
    ray: bool = options.RAY,
    precision: str = options.PRECISION,
    max_seq_length: str = options.MAX_SEQ_LENGTH,
    verbose: bool = options.VERBOSE,
) -> None:
    setup_logging(verbose)
    from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
    from llama_index_bge_finetune.models import resolve_base_model

    checkpoint_seconds = checkpoint_minutes * 60 if checkpoint_minutes is not None else None
    pipeline.check_training_args(learning_rate, epochs, checkpoint_steps, checkpoint_seconds, precision)
    window = parse_window_setting(max_seq_length)
    pipeline.check_model_output(output, overwrite)  # a file or a finished model: refused before any loading
    train_ds = EmbeddingQAFinetuneDataset.from_json(dataset)
    val_ds = EmbeddingQAFinetuneDataset.from_json(val) if val else None
    choice = resolve_base_model(base_model)
    pipeline.check_base_model(choice.model)
    encode_backend = backend_from_cli(ray)
    pipeline.check_encode_backend(encode_backend)
    with stage("Fine-tuning (optimizer steps)") as update:
        engine = pipeline.train_model(train_ds, choice.model, output, val=val_ds, epochs=epochs, batch_size=batch_size,
                                      learning_rate=learning_rate, seed=seed, overwrite=overwrite,
                                      checkpoint_steps=checkpoint_steps, checkpoint_seconds=checkpoint_seconds,
                                      encode_backend=encode_backend, precision=precision, max_seq_length=window,
                                      show_progress_bar=verbose, on_progress=update)
    result = engine.result
    resumed = f", resumed from step {result.resumed_from_step}" if result and result.resumed_from_step else ""
    console.print(f"Model saved to {output}{resumed}", highlight=False)
