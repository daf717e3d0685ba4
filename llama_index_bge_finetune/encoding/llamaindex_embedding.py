"""Load a fine-tuned model folder as a LlamaIndex embedding that applies its saved instruction."""

from __future__ import annotations

import os
from typing import Any, Optional, Union

from llama_index_bge_finetune.models import query_instruction_for

PathLike = Union[str, os.PathLike]


def from_finetuned(path: PathLike, query_instruction: Optional[str] = None, **kwargs: Any) -> "HuggingFaceEmbedding":  # noqa: F821
    """Return a ``HuggingFaceEmbedding`` for a model folder, with the query instruction it was trained with.

    ``HuggingFaceEmbedding`` passes an empty query prompt for any model name that is not a known
    BGE hub id, and that empty prompt overrides the one saved in the folder. This reads the saved
    ``query`` prompt and passes it explicitly, so training and inference agree.

    Example::

        from llama_index.core import VectorStoreIndex
        from llama_index_bge_finetune import from_finetuned

        index = VectorStoreIndex(nodes, embed_model=from_finetuned("out/model"))
    """
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    path = os.fspath(path)
    instruction = query_instruction if query_instruction is not None else query_instruction_for(path)
    if instruction:
        kwargs.setdefault("query_instruction", instruction)
    kwargs.setdefault("device", "cpu" if not _cuda() else None)
    return HuggingFaceEmbedding(model_name=path, **kwargs)


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
