"""What a sentence-transformers trainer shows while it trains: progress for the caller, log lines to logging.

Three things the engines of this package change on the trainers they build, none of them global:

- Without progress bars (``show_progress_bar=False``), transformers' trainer prints every log
  entry (``{'loss': ..., 'learning_rate': ...}``) to stdout with ``print``;
  :func:`attach_trainer_output` sends them to this package's logger at DEBUG instead. They stay in
  ``trainer.state.log_history`` and in ``FinetuneResult.log_history``.
- A caller's ``on_progress(steps_done, total_steps)`` is called as training advances
  (:class:`StepProgress`), e.g. for the CLI's own progress bar.
- :func:`without_model_card_data` drops sentence-transformers' model-card callback: the engines
  save with ``create_model_card=False`` and write their own card, and at start that callback samples
  "widget examples" from the training set behind a tqdm bar of its own that no switch turns off.

Example::

    trainer = without_model_card_data(SentenceTransformerTrainer)(model=model, args=args, ...)
    attach_trainer_output(trainer, show_progress_bar=False, on_progress=lambda done, total: print(done, total))
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Dict, Optional

from transformers import TrainerCallback

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
"""``on_progress(steps_done, total_steps)``."""


class StepProgress(TrainerCallback):
    """Calls ``report(steps_done, total_steps)`` when training starts and after every optimizer step (main process only)."""

    def __init__(self, report: ProgressCallback) -> None:
        self.report = report

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.report(int(state.global_step), int(state.max_steps))

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.report(int(state.global_step), int(state.max_steps))


class LoggedTrainerLogs(TrainerCallback):
    """Logs each trainer log entry (loss, learning rate, evaluation metrics) at DEBUG, where transformers would print it."""

    def on_log(self, args: Any, state: Any, control: Any, logs: Optional[Dict[str, Any]] = None, **kwargs: Any) -> None:
        if state.is_world_process_zero and logs:
            shown = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in logs.items() if k != "total_flos"}
            logger.debug("Step %d: %s", state.global_step, shown)


def attach_trainer_output(trainer: Any, show_progress_bar: bool, on_progress: Optional[ProgressCallback] = None) -> None:
    """Without progress bars, move the trainer's printed log lines to logging; report progress to ``on_progress``."""
    if not show_progress_bar:
        from transformers.trainer_callback import PrinterCallback

        if trainer.pop_callback(PrinterCallback) is not None:
            trainer.add_callback(LoggedTrainerLogs())
    if on_progress is not None:
        trainer.add_callback(StepProgress(on_progress))


_WITHOUT_CARD: Dict[type, type] = {}


def without_model_card_data(trainer_class: type) -> type:
    """A subclass of the sentence-transformers ``trainer_class`` that adds no model-card callback (made once per class)."""
    if trainer_class not in _WITHOUT_CARD:
        def add_model_card_callback(self: Any, default_args_dict: Dict[str, Any]) -> None:
            """No model-card data: the engine writes the model card itself."""

        _WITHOUT_CARD[trainer_class] = type(trainer_class.__name__, (trainer_class,), {
            "add_model_card_callback": add_model_card_callback,
            "__module__": __name__,
            "__doc__": f"{trainer_class.__name__} without sentence-transformers' model-card callback.",
        })
    return _WITHOUT_CARD[trainer_class]
