"""What a fine-tuning run did, for logs, reports and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional


@dataclass
class FinetuneResult:
    """Outcome of :meth:`SentenceTransformersFinetuneEngine.finetune`.

    Attributes:
        model_path: the saved model folder.
        train_seconds: wall time of the trainer's loop (excludes mining and evaluation).
        total_seconds: wall time of ``finetune()`` (mining, training, evaluation, saving).
        mining_seconds: time spent mining hard negatives (0 when off or cached).
        examples_per_second: training examples (pairs or pairs+negatives) per second of training.
        steps: optimizer steps taken in this run and earlier runs it resumed.
        resumed_from_step: the checkpoint step training resumed from (0 = fresh start).
        final_loss: the last logged training loss; ``mean_loss``: average over the run.
        pairs: training (query, passage) pairs; ``pairs_with_negatives``: how many got hard negatives.
        hyperparameters: every setting used (learning rate, batch size, loss, ...).
        evaluation: ``{"base": {...}, "fine_tuned": {...}}`` on the validation set, if given.
        forgetting: the forgetting guard's report, if the guard was on.
        window: the base model's window, the saved model's (``chosen``) and why (see
            :mod:`llama_index_bge_finetune.training.window`); validation scores are at the base's.
        log_history: the trainer's log: ``{"step", "epoch", "loss", "learning_rate"}`` per logging
            step and ``{"step", "eval_<name>_<metric>": value}`` per evaluation (for reports and charts).
    """

    model_path: str
    train_seconds: float = 0.0
    total_seconds: float = 0.0
    mining_seconds: float = 0.0
    examples_per_second: float = 0.0
    steps: int = 0
    resumed_from_step: int = 0
    final_loss: Optional[float] = None
    mean_loss: Optional[float] = None
    pairs: int = 0
    pairs_with_negatives: int = 0
    hyperparameters: Dict[str, Any] = field(default_factory=dict)
    evaluation: Dict[str, Dict[str, float]] = field(default_factory=dict)
    forgetting: Optional[Dict[str, Any]] = None
    window: Dict[str, Any] = field(default_factory=dict)
    log_history: List[Dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable dict."""
        return asdict(self)
