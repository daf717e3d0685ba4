"""The reranker engine's options: each one checked where it is declared.

:class:`RerankingOptions` holds every argument of
:class:`~llama_index_bge_finetune.reranking.engine.CrossEncoderFinetuneEngine` except the datasets,
with the meaning documented there; it works as the embedding engine's
:class:`~llama_index_bge_finetune.training.options.TrainingOptions` does (same checks, same
``engine.options`` with each option an engine attribute under its own name).

Example::

    from llama_index_bge_finetune.reranking.options import RerankingOptions

    RerankingOptions.field_names()  # ('model_id', 'model_output_path', 'batch_size', ...)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

from llama_index_bge_finetune.errors import TrainingError
from llama_index_bge_finetune.reranking.losses import CE_LOSS_NAMES
from llama_index_bge_finetune.training.options import (EngineOptions, check_options, loss_name_in, option, positive,
                                                       precision_name)

PathLike = Union[str, os.PathLike]
#: The head's learning rate over the encoder's when the head is new (a start from a bi-encoder).
NEW_HEAD_LR_FACTOR = 30


def _validation_fraction(name: str, value: Any) -> None:
    if not 0.0 <= value < 1.0:
        raise TrainingError(f"{name} must be in [0, 1), got {value}.")


@dataclass
class RerankingOptions(EngineOptions):
    """Every setting of the reranker engine but its datasets; see the engine's docstring for each one's meaning.

    Built from the engine's arguments (which hold the defaults), checked on construction, then
    normalised: ``model_id`` and ``model_output_path`` become strings, ``blend_weights`` a tuple.
    """

    model_id: str = option()
    model_output_path: PathLike = option()
    batch_size: int = option(check=positive)
    loss: Optional[Any] = option(check=loss_name_in(CE_LOSS_NAMES))
    epochs: float = option(check=positive)
    show_progress_bar: bool = option()
    evaluation_steps: int = option(check=positive)
    learning_rate: float = option(check=positive)
    head_learning_rate: Optional[float] = option()
    max_length: int = option(check=positive)  # set to the loaded model's limit when that is lower
    warmup_ratio: float = option()
    weight_decay: float = option()
    lr_scheduler_type: str = option()
    seed: int = option()
    precision: str = option(check=precision_name)
    attention_dropout: Optional[float] = option()
    validation_fraction: float = option(check=_validation_fraction)
    blend_weights: Sequence[float] = option()
    save_checkpoints: Optional[bool] = option()
    resume_from_checkpoint: Union[bool, PathLike] = option()
    checkpoint_save_steps: Optional[int] = option()
    checkpoint_save_seconds: Optional[float] = option()
    checkpoint_save_total_limit: int = option()
    device: Optional[str] = option()
    trust_remote_code: bool = option()
    logging_steps: int = option(check=positive)

    def __post_init__(self) -> None:
        check_options(self)
        self.model_id = str(self.model_id)
        self.model_output_path = os.fspath(self.model_output_path)
        self.blend_weights = tuple(self.blend_weights)

    @property
    def loss_name(self) -> str:
        """The loss's name for reports: ``"listwise"`` by default, the name given, or a loss object's class name."""
        if self.loss is None:
            return "listwise"
        return self.loss if isinstance(self.loss, str) else type(self.loss).__name__

    def head_lr(self, new_head: bool) -> float:
        """The head's learning rate: ``head_learning_rate``, else 30x ``learning_rate`` for a new head, else the same."""
        if self.head_learning_rate is not None:
            return self.head_learning_rate
        return self.learning_rate * NEW_HEAD_LR_FACTOR if new_head else self.learning_rate
