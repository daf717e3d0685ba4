"""Attention-probability dropout of a transformer, changed for training and restored afterwards.

With dropout on the attention probabilities, PyTorch's scaled-dot-product attention cannot use its
fused kernels and falls back to materialising and masking the full attention matrix. On CPU this
made a training step of all-MiniLM-L6-v2 (32 queries, 64 passages of 256 tokens) 2-3x slower
(benchmarks/RESULTS.md), while SciFact quality did not depend on it; so the engine turns it off by
default. Dropout on hidden states is left as the model configures it.

Example::

    from sentence_transformers import SentenceTransformer
    from llama_index_bge_finetune.training.attention_dropout import set_attention_dropout

    model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
    restore = set_attention_dropout(model, 0.0)
    ...  # train
    restore()
"""

from __future__ import annotations

import logging
from typing import Callable, List, Tuple

logger = logging.getLogger(__name__)


def attention_dropout_layers(model: "torch.nn.Module") -> List["torch.nn.Dropout"]:  # noqa: F821
    """The dropout layers applied to attention probabilities (the ``dropout`` of every ``*SelfAttention``)."""
    import torch

    layers = []
    for module in model.modules():
        name = type(module).__name__
        drop = getattr(module, "dropout", None)
        if name.endswith("SelfAttention") and isinstance(drop, torch.nn.Dropout):
            layers.append(drop)
    return layers


def set_attention_dropout(model: "torch.nn.Module", p: float) -> Callable[[], None]:  # noqa: F821
    """Set attention dropout to ``p`` in every attention layer; return a function that restores it.

    Models whose attention layers are not recognised are left unchanged (with a debug log line).
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"attention dropout must be in [0, 1), got {p}.")
    saved: List[Tuple["torch.nn.Dropout", float]] = [(d, d.p) for d in attention_dropout_layers(model)]  # noqa: F821
    if not saved:
        logger.debug("No attention dropout layers recognised in %s; left unchanged.", type(model).__name__)
    for layer, _ in saved:
        layer.p = p

    def restore() -> None:
        for layer, old in saved:
            layer.p = old

    return restore
