"""Putting a fine-tuned model into an existing LlamaIndex app."""

from llama_index_bge_finetune.integration.embedding import from_finetuned

__all__ = ["from_finetuned"]
