"""Keep a transformer's embeddings and bottom layers fixed while training, and release them after.

A training step's backward pass costs about twice its forward pass, layer by layer. Parameters
that need no gradient below every trained layer need no backward at all: with the token
embeddings and the bottom 2 of all-MiniLM-L6-v2's 6 layers fixed, a SciFact step (31 claims,
their abstracts and one hard negative each) took 12.8 s instead of 16.4 s on an AVX2 CPU. The
price on the 809 SciFact claims was real, though: nDCG@10 0.7037 instead of 0.7335
(benchmarks/RESULTS.md): with enough data, a domain far from the base model's needs its lower
layers too. On a few hundred questions it is the other way round: training only the top layers
overfits less and gains more, in half the time. So by default (``frozen_layers="auto"``) the engine
fixes two thirds of the layers below 200 training pairs and none above
(:func:`~llama_index_bge_finetune.training.schedule.layers_to_freeze`).

Example::

    from sentence_transformers import SentenceTransformer
    from llama_index_bge_finetune.training.freezing import freeze_lower_layers

    model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
    frozen = freeze_lower_layers(model, 4)  # the embeddings and layers 0-3 of 6; 4 and 5 train
    ...  # train
    frozen.release()
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

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


def layer_count(model: "torch.nn.Module") -> int:  # noqa: F821
    """How many transformer layers :func:`freeze_lower_layers` can fix in ``model`` (0 when none is recognised)."""
    found = layer_stack(model)
    return len(found[1]) if found is not None else 0


def freeze_lower_layers(model: "torch.nn.Module", layers: int) -> FrozenLayers:  # noqa: F821
    """Turn off gradients of the embeddings and the bottom ``layers`` layers.

    ``layers=0`` changes nothing; otherwise at least one layer must stay trainable. Models whose
    layer stack is not recognised are trained whole (with a warning).
    """
    found = layer_stack(model)
    if found is None:
        if layers:
            logger.warning("No transformer layer stack recognised in %s; frozen_layers=%s ignored, every layer trains.",
                           type(model).__name__, layers)
        return FrozenLayers(layers=0)
    owner, stack = found
    count = int(layers)
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
