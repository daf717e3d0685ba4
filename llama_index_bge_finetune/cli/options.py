"""Options shared by several subcommands, declared once so their defaults and help stay in step."""

from __future__ import annotations

import typer

DOCUMENTS = typer.Argument(..., help="Folder of PDF, Markdown (.md) and text (.txt) files.")
GENERATOR = typer.Option("auto", help="Question generator: auto (OpenAI when OPENAI_API_KEY is set, else offline), openai, offline, local (SmolLM2 on the CPU).")
LLM_MODEL = typer.Option("gpt-4o-mini", help="OpenAI model that writes the questions (generator openai).")
QUESTIONS_PER_CHUNK = typer.Option(2, min=1, help="Questions generated per chunk.")
CHUNK_SIZE = typer.Option(512, min=32, help="Chunk size in tokens (LlamaIndex SentenceSplitter).")
CHUNK_OVERLAP = typer.Option(32, min=0, help="Overlap between chunks in tokens.")
VAL_FRACTION = typer.Option(0.2, min=0.01, max=0.9, help="Share of chunks held out for evaluation.")
MAX_NODES = typer.Option(None, min=2, help="Use only the first N chunks (a quick try).")
PRECISION = typer.Option("auto", help="Training precision: auto (bf16 autocast on a CPU that computes bfloat16 natively, else fp32; bf16 or fp16 on a GPU), fp32, bf16 (also on other CPUs, slower) or fp16 (GPU only).")
MAX_SEQ_LENGTH = typer.Option("auto", "--max-seq-length", help="Tokens of a passage the fine-tuned model reads: auto (enough for 90% of the training chunks, up to the model's position limit; training keeps the base's window), base (the base model's window) or a number.")
VERBOSE = typer.Option(False, "--verbose", "-v", help="Debug logging, and other libraries' progress bars and notices (off by default).")
BATCH_API = typer.Option(False, "--batch-api", help="Send the questions through OpenAI's Batch API: half the price, no live rate limits, done within 24 h. The estimated cost is printed before submitting; a stopped run reattaches to its batch when rerun (generator openai).")
BATCH_POLL_SECONDS = typer.Option(30.0, min=0.01, help="Seconds between two status checks of a running batch (--batch-api).")
MAX_RETRIES = typer.Option(6, min=0, help="Retries per chunk after a failed LLM request (with back-off; generator openai/local).")
CHECKPOINT_STEPS = typer.Option(None, min=1, help="Save a training checkpoint every N optimizer steps (default: every 10% of the run). A killed run resumes from the last one when rerun.")
CHECKPOINT_MINUTES = typer.Option(None, min=0.0, help="Also save a checkpoint when this many minutes passed since the last one (default 5; 0 turns the timer off).")
API_BASE = typer.Option(None, "--api-base", help="Base URL of the OpenAI-compatible embeddings endpoint for openai: models (default: $OPENAI_BASE_URL, else OpenAI's). The key is read from OPENAI_API_KEY only.")
RAY = typer.Option(False, "--ray", help="Encode corpora on a Ray cluster (Ray Data actors): the one at $RAY_ADDRESS (setting it alone also turns this on), else a local one. Needs pip install \"llama-index-bge-finetune[scale]\".")
