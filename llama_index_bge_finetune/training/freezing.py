"""Keep a transformer's embeddings and bottom layers fixed while training, and release them after.

A training step's backward pass costs about twice its forward pass, layer by layer. Parameters
that need no gradient below every trained layer need no backward at all: with the token
embeddings and the bottom 2 of all-MiniLM-L6-v2's 6 layers fixed, a SciFact step (31 claims,
their abstracts and one hard negative each) took 12.8 s instead of 16.4 s on an AVX2 CPU. The
price on SciFact was real, though: nDCG@10 0.7037 instead of 0.7335 (benchmarks/RESULTS.md): a
domain far from the base model's needs its lower layers too. So the engine freezes nothing
unless asked (``frozen_layers``).

Example::

    from sentence_transformers import SentenceTransformer
    from llama_index_bge_finetune.training.freezing import freeze_lower_layers

    model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
    frozen = freeze_lower_layers(model, 2)
    ...  # train
    frozen.release()
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple, Union

logger = logging.getLogger(__name__)


def layer_stack(model: "torch.nn.Module") -> Optional[Tuple["torch.nn.Module", "torch.nn.ModuleList"]]:  # noqa: F821
    """(the transformer, its layers): the outermost Hugging Face model with a ``config.num_hidden_layers``
    and its first ``ModuleList`` of that length; ``None`` when there is none."""
    import torch
    from transformers import PreTrainedModel

    for module in model.modules():
        depth = getattr(getattr(module, "config", None), "num_hidden_layers", None)
        if depth is None or not isinstance(module, PreTrainedModel):
            continue
        for child in module.modules():
            if isinstance(child, torch.nn.ModuleList) and len(child) == depth:
                return module, child
        return None
    return None


@dataclass
class FrozenLayers:
    """What :func:`freeze_lower_layers` fixed: ``layers`` bottom layers (plus the embeddings)."""

    layers: int
    parameters: List[Any] = field(default_factory=list)

    def release(self) -> None:
        """Give the frozen parameters their gradients back."""
        for p in self.parameters:
            p.requires_grad_(True)
        self.parameters = []


def freeze_lower_layers(model: "torch.nn.Module", layers: Union[int, str]) -> FrozenLayers:  # noqa: F821
    """Turn off gradients of the embeddings and the bottom ``layers`` layers (``"auto"``: a third of them).

    ``layers=0`` changes nothing; an int must leave at least one layer trainable. Models whose
    layer stack is not recognised are trained whole (with a warning).
    """
    found = layer_stack(model)
    if found is None:
        if layers not in (0, "auto"):
            logger.warning("No transformer layer stack recognised in %s; frozen_layers=%s ignored, every layer trains.",
                           type(model).__name__, layers)
        return FrozenLayers(layers=0)
    owner, stack = found
    count = len(stack) // 3 if layers == "auto" else int(layers)
    if count < 0 or count >= len(stack):
        raise ValueError(f"frozen_layers={layers} must leave some of the model's {len(stack)} layers to train; "
                         f"use 0 to {len(stack) - 1}, or 'auto'.")
    if count == 0:
        return FrozenLayers(layers=0)
    embeddings = getattr(owner, "embeddings", None) or owner.get_input_embeddings()
    frozen = [p for module in (embeddings, *stack[:count]) for p in module.parameters() if p.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    return FrozenLayers(layers=count, parameters=frozen)
