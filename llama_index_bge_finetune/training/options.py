"""The embedding engine's options: each one checked where it is declared, and resolved where no data is needed.

:class:`TrainingOptions` holds every argument of
:class:`~llama_index_bge_finetune.training.engine.SentenceTransformersFinetuneEngine` except the
datasets, with the meaning documented there. Each field names the check it must pass
(``option(check=...)``); ``__post_init__`` runs them in field order, so a bad value fails when the
engine is built, with a message that names the option and what it accepts. The engine keeps its
options in ``engine.options`` and exposes each one under its own name (``engine.batch_size``), see
:func:`option_attributes`.

The checks and helpers here are shared with the reranker's options
(:mod:`llama_index_bge_finetune.reranking.options`).

Example::

    from llama_index_bge_finetune.training.options import TrainingOptions

    TrainingOptions.field_names()  # ('model_id', 'model_output_path', 'batch_size', ...)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

from llama_index_bge_finetune.encoding.backends import EncodeBackendSpec
from llama_index_bge_finetune.errors import TrainingError
from llama_index_bge_finetune.models import query_instruction_for
from llama_index_bge_finetune.precisions import check_precision_name
from llama_index_bge_finetune.training.core import CHECKPOINT_DIR
from llama_index_bge_finetune.training.hard_negatives import HardNegativeMiner
from llama_index_bge_finetune.training.losses import LOSS_NAMES
from llama_index_bge_finetune.window_settings import WindowSetting, check_window_setting

PathLike = Union[str, os.PathLike]
#: A check of one option: called with the option's name and value, raises ``TrainingError`` when invalid.
Check = Callable[[str, Any], None]
#: ``query_instruction``'s default: "use the base model's own query instruction".
FROM_MODEL = object()

EngineClass = TypeVar("EngineClass", bound=type)


# ---------------------------------------------------------------------------------------------- shared checks
def option(check: Optional[Check] = None) -> Any:
    """A required dataclass field that ``check_options`` checks with ``check`` (no default: the engine's signature has it)."""
    return field(metadata={"check": check} if check is not None else {})


def check_options(options: Any) -> None:
    """Run every field's check, in field order (the first invalid option raises)."""
    for f in fields(options):
        check = f.metadata.get("check")
        if check is not None:
            check(f.name, getattr(options, f.name))


def positive(name: str, value: Any) -> None:
    """The option must be above zero."""
    if not value > 0:
        raise TrainingError(f"{name} must be positive, got {value}.")


def positive_or_none(name: str, value: Any) -> None:
    """The option must be above zero, or ``None`` (its automatic or off setting)."""
    if value is not None:
        positive(name, value)


def precision_name(name: str, value: Any) -> None:
    """The option must be one of the precision names (``"auto"``, ``"fp32"``, ...)."""
    check_precision_name(value)


def loss_name_in(names: Sequence[str]) -> Check:
    """A check that a loss given by name is one of ``names`` (a loss object or ``None`` passes)."""
    def check(name: str, value: Any) -> None:
        if isinstance(value, str) and value not in names:
            raise TrainingError(f"Unknown loss {value!r}; choose one of {', '.join(names)}, or pass a loss object.")
    return check


def fields_from(options_class: type, arguments: Mapping[str, Any]) -> Dict[str, Any]:
    """The entries of ``arguments`` (an engine constructor's ``locals()``) that are fields of ``options_class``."""
    return {f.name: arguments[f.name] for f in fields(options_class)}


class _OptionAttribute:
    """An engine attribute that reads and writes the option of the same name in ``engine.options``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, engine: Any, owner: Optional[type] = None) -> Any:
        if engine is None:
            return self
        return getattr(engine.options, self.name)

    def __set__(self, engine: Any, value: Any) -> None:
        setattr(engine.options, self.name, value)


def option_attributes(options_class: type) -> Callable[[EngineClass], EngineClass]:
    """Class decorator: every field of ``options_class`` becomes an attribute of the engine, kept in ``engine.options``.

    ``engine.batch_size`` reads ``engine.options.batch_size``, and ``engine.resume_from_checkpoint = True``
    sets ``engine.options.resume_from_checkpoint``, so the options have one home and keep their names.
    """
    def expose(cls: EngineClass) -> EngineClass:
        for f in fields(options_class):
            if f.name in vars(cls):
                raise TypeError(f"{cls.__name__}.{f.name} already exists; an option attribute would hide it.")
            setattr(cls, f.name, _OptionAttribute(f.name))
        return cls
    return expose


# ---------------------------------------------------------------------------------------------- training checks
def _learning_rate(name: str, value: Any) -> None:
    if value != "auto" and (isinstance(value, (str, bool)) or not value > 0):
        raise TrainingError(f"{name} must be 'auto' or a positive number, got {value!r}; 2e-5 to 2e-4 is usual.")


def _warmup_ratio(name: str, value: Any) -> None:
    if not 0.0 <= value < 1.0:
        raise TrainingError(f"{name} must be in [0, 1), got {value}; 0.1 is the usual value.")


def _attention_dropout(name: str, value: Any) -> None:
    if value is not None and not 0.0 <= value < 1.0:
        raise TrainingError(f"{name} must be in [0, 1) or None (the model's own), got {value}.")


def _checkpoint_total_limit(name: str, value: Any) -> None:
    if value < 0:
        raise TrainingError(f"{name} must be >= 0 (0 keeps all), got {value}.")


def _frozen_layers(name: str, value: Any) -> None:
    if value != "auto" and (not isinstance(value, int) or value < 0):
        raise TrainingError(f"{name} must be 'auto' or 0 or more, got {value!r}; 0 trains every layer.")


def _hard_negatives(name: str, value: Any) -> None:
    if value != "auto" and (not isinstance(value, int) or value < 0):
        raise TrainingError(f"{name} must be 'auto' or >= 0 (0 turns mining off), got {value!r}.")


def _hard_negative_pool(name: str, value: Any) -> None:
    if not (value is None or value == "auto" or (isinstance(value, int) and value >= 2)):
        raise TrainingError(f"{name} must be 'auto', None (the whole corpus) or at least 2 passages, got {value!r}.")


def _train_max_seq_length(name: str, value: Any) -> None:
    if value is not None and value < 8:
        raise TrainingError(f"{name} must be at least 8 tokens, got {value}.")


def _window_setting(name: str, value: Any) -> None:
    check_window_setting(value)


class EngineOptions:
    """What the two engines' option objects share: built from a constructor's ``locals()``, named in signature order.

    A subclass is a dataclass whose fields are the constructor's arguments but the datasets, and which
    has a ``model_output_path``.
    """

    model_output_path: str

    @classmethod
    def from_arguments(cls: "type[_O]", arguments: Mapping[str, Any]) -> "_O":
        """The options among an engine constructor's arguments (its ``locals()``; the datasets are left out)."""
        return cls(**fields_from(cls, arguments))

    @classmethod
    def field_names(cls) -> Tuple[str, ...]:
        """The option names, in the order of the engine's signature."""
        return tuple(f.name for f in fields(cls))  # type: ignore[arg-type]

    @property
    def checkpoint_path(self) -> str:
        """Where checkpoints go: ``<model_output_path>/checkpoints``."""
        return os.path.join(self.model_output_path, CHECKPOINT_DIR)


_O = TypeVar("_O", bound=EngineOptions)


@dataclass
class TrainingOptions(EngineOptions):
    """Every setting of the embedding engine but its datasets; see the engine's docstring for each one's meaning.

    Built from the engine's arguments (which hold the defaults), checked on construction, then
    normalised: ``model_id`` and the paths become strings, ``matryoshka_dims`` a list (or ``None``),
    and the ``query_instruction`` default becomes the base model's own instruction (``""`` -> ``None``).
    """

    model_id: str = option()
    model_output_path: PathLike = option()
    batch_size: int = option(check=positive)
    loss: Optional[Any] = option(check=loss_name_in(LOSS_NAMES))
    epochs: Optional[float] = option(check=positive_or_none)
    show_progress_bar: bool = option()
    evaluation_steps: int = option(check=positive)
    use_all_docs: bool = option()
    trust_remote_code: bool = option()
    device: Optional[Any] = option()
    save_checkpoints: Optional[bool] = option()
    resume_from_checkpoint: Union[bool, PathLike] = option()
    checkpoint_save_steps: Optional[int] = option(check=positive_or_none)
    checkpoint_save_total_limit: int = option(check=_checkpoint_total_limit)
    checkpoint_save_seconds: Optional[float] = option(check=positive_or_none)
    query_instruction: Any = option()
    learning_rate: Union[float, str] = option(check=_learning_rate)
    warmup_ratio: float = option(check=_warmup_ratio)
    lr_scheduler_type: str = option()
    weight_decay: float = option()
    seed: int = option()
    gradient_accumulation_steps: int = option(check=positive)
    precision: str = option(check=precision_name)
    attention_dropout: Optional[float] = option(check=_attention_dropout)
    frozen_layers: Union[int, str] = option(check=_frozen_layers)
    hard_negatives: Union[int, str] = option(check=_hard_negatives)
    hard_negative_skip_top: int = option()  # these three: checked by HardNegativeMiner
    hard_negative_max_tokens: Optional[int] = option(check=positive_or_none)
    hard_negative_max_rank: int = option()
    hard_negative_margin: float = option()
    hard_negative_pool: Union[int, str, None] = option(check=_hard_negative_pool)
    hard_negative_gradients: bool = option()
    temperature: float = option()
    mini_batch_size: int = option()
    matryoshka_dims: Optional[Sequence[int]] = option()
    guide_model_id: Optional[str] = option()
    train_max_seq_length: Optional[int] = option(check=_train_max_seq_length)
    max_seq_length: WindowSetting = option(check=_window_setting)
    forgetting_threshold: float = option()  # these two: checked by ForgettingGuard, with a forgetting_dataset
    forgetting_alpha: float = option()
    cache_dir: Optional[PathLike] = option()
    logging_steps: int = option(check=positive)
    encode_backend: EncodeBackendSpec = option()
    on_progress: Optional[Callable[[int, int], None]] = option()  # (steps done, total steps); see trainer_output.py

    def __post_init__(self) -> None:
        check_options(self)
        self.model_id = str(self.model_id)
        self.model_output_path = os.fspath(self.model_output_path)
        self.cache_dir = os.fspath(self.cache_dir) if self.cache_dir is not None else None
        self.matryoshka_dims = list(self.matryoshka_dims) if self.matryoshka_dims else None
        self.query_instruction = (
            query_instruction_for(self.model_id) if self.query_instruction is FROM_MODEL
            else (self.query_instruction or None)
        )

    @property
    def mining_cache_dir(self) -> str:
        """Where mining keeps corpus embeddings: ``cache_dir``, else ``<checkpoints>/embeddings``."""
        return self.cache_dir or os.path.join(self.checkpoint_path, "embeddings")

    @property
    def loss_name(self) -> str:
        """The loss's name for reports: ``"mnrl"`` by default, the name given, or a loss object's class name."""
        if self.loss is None:
            return "mnrl"
        return self.loss if isinstance(self.loss, str) else type(self.loss).__name__

    def hard_negative_miner(self) -> Optional[HardNegativeMiner]:
        """The miner for ``hard_negatives`` (``"auto"`` builds a one-negative miner; mining runs only on enough pairs).

        ``None`` when mining is off (``hard_negatives=0``). The miner checks its own settings
        (``hard_negative_skip_top``, ``hard_negative_max_rank``, ``hard_negative_margin``).
        """
        if not self.hard_negatives:
            return None
        return HardNegativeMiner(1 if self.hard_negatives == "auto" else self.hard_negatives, self.hard_negative_skip_top,
                                 self.hard_negative_max_rank, self.hard_negative_margin,
                                 max_seq_length=self.hard_negative_max_tokens, seed=self.seed,
                                 encode_backend=self.encode_backend)


def given_loss_model(loss: Any) -> Any:
    """The ``model`` of a ready loss module; ``None`` for ``None``, a loss name, or a loss without one."""
    if loss is None or isinstance(loss, str):
        return None
    return getattr(loss, "model", None)


__all__: List[str] = ["TrainingOptions", "FROM_MODEL", "option", "check_options", "option_attributes", "positive",
                      "positive_or_none", "precision_name", "loss_name_in", "fields_from",
                      "given_loss_model"]
