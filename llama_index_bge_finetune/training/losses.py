"""The training losses by name: in-batch negatives, its cached (GradCache) variant, guided, Matryoshka.

- ``"mnrl"``: ``MultipleNegativesRankingLoss``, in-batch negatives plus any hard negatives, as
  ``ranking_loss.HardNegativeRankingLoss``: each column is embedded in its own forward pass
  (sentence-transformers merges the passage columns into one, which pads every 128-token hard
  negative to the positives' 256); ``negative_gradients=False`` embeds hard negatives without gradients.
- ``"cached_mnrl"``: the same objective computed with GradCache: the batch is embedded in
  mini-batches of ``mini_batch_size`` without gradients, then back-propagated chunk by chunk, so a
  batch of 256 needs about the memory of a batch of ``mini_batch_size`` (at ~1.3x the compute).
- ``"gist"`` / ``"cached_gist"``: GISTEmbed; a guide model (by default the frozen base model)
  removes in-batch negatives that the guide scores above the positive (false negatives).

``temperature`` is the softmax temperature (sentence-transformers' ``scale`` is its inverse).
``matryoshka_dims`` wraps any of these in ``MatryoshkaLoss`` so truncated embeddings also work.

Example::

    from llama_index_bge_finetune.training.losses import build_loss

    loss = build_loss("cached_mnrl", model, temperature=0.05, mini_batch_size=32)
"""

from __future__ import annotations

from typing import Optional, Sequence

LOSS_NAMES = ("mnrl", "cached_mnrl", "gist", "cached_gist")


def build_loss(
    name: str,
    model: "SentenceTransformer",  # noqa: F821
    temperature: float = 0.05,
    mini_batch_size: int = 32,
    matryoshka_dims: Optional[Sequence[int]] = None,
    guide: Optional["SentenceTransformer"] = None,  # noqa: F821
    gather_across_devices: bool = False,
    negative_gradients: bool = True,
) -> "torch.nn.Module":  # noqa: F821
    """Build the named loss around ``model``.

    Args:
        name: one of ``LOSS_NAMES``.
        model: the model being trained.
        temperature: softmax temperature of the contrastive objective (0.05 = scale 20).
        mini_batch_size: chunk size of the cached losses.
        matryoshka_dims: e.g. ``[384, 256, 128, 64]`` to also train truncated embeddings.
        guide: the guide model of the GIST losses (required for them).
        gather_across_devices: share in-batch negatives across processes in distributed training.
        negative_gradients: back-propagate through the hard-negative passages too (``"mnrl"`` only;
            see ``ranking_loss.HardNegativeRankingLoss``).
    """
    from sentence_transformers import losses

    from llama_index_bge_finetune.errors import TrainingError

    if name not in LOSS_NAMES:
        raise TrainingError(f"Unknown loss {name!r}; choose one of {', '.join(LOSS_NAMES)}, or pass a loss object.")
    if not temperature > 0:
        raise TrainingError(f"temperature must be positive, got {temperature}; 0.05 is the usual value.")
    if mini_batch_size < 1:
        raise TrainingError(f"mini_batch_size must be at least 1, got {mini_batch_size}.")
    if name == "mnrl":
        from llama_index_bge_finetune.training.ranking_loss import HardNegativeRankingLoss

        loss = HardNegativeRankingLoss(
            model, scale=1.0 / temperature, negative_gradients=negative_gradients,
            gather_across_devices=gather_across_devices,
        )
    elif name == "cached_mnrl":
        loss = losses.CachedMultipleNegativesRankingLoss(
            model, scale=1.0 / temperature, mini_batch_size=mini_batch_size, gather_across_devices=gather_across_devices
        )
    else:
        if guide is None:
            raise TrainingError(f"The {name!r} loss needs a guide model; pass guide_model_id or use loss='mnrl'.")
        if name == "gist":
            loss = losses.GISTEmbedLoss(model, guide, temperature=temperature, gather_across_devices=gather_across_devices)
        else:
            loss = losses.CachedGISTEmbedLoss(
                model, guide, temperature=temperature, mini_batch_size=mini_batch_size,
                gather_across_devices=gather_across_devices,
            )
    if matryoshka_dims:
        dims = sorted({int(d) for d in matryoshka_dims}, reverse=True)
        full = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        full = full()
        if dims[0] > full or dims[-1] < 1:
            raise TrainingError(f"matryoshka_dims must lie in 1..{full} (the model's dimension), got {list(matryoshka_dims)}.")
        loss = losses.MatryoshkaLoss(model, loss, matryoshka_dims=dims)
    return loss
