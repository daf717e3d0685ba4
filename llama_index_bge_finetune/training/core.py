"""The training core that every engine of this package shares.

An engine (embedding or cross-encoder) builds its data, loss and evaluator, then hands the
sentence-transformers trainer to these steps:

1. :func:`precision_flags` picks mixed precision the hardware computes natively.
2. :func:`checkpoint_arguments` and :func:`training_callbacks` checkpoint every fraction of the run
   *and* every few minutes, and keep the best validated weights without forcing an evaluation at
   every checkpoint (:class:`KeepBestWeights`).
3. :func:`resolve_resume` finds the checkpoint to continue from after a kill.
4. :func:`run_trainer` trains with attention dropout set for speed and restores it afterwards.
5. :func:`record_training` and :func:`write_result` fill and save the :class:`FinetuneResult`.

Example::

    from llama_index_bge_finetune.training import core

    args = dict(output_dir="out/checkpoints", **core.checkpoint_arguments(total_steps=120, save_steps=None))
    callbacks, keep_best = core.training_callbacks("out/checkpoints", resume=None, save_seconds=300,
                                                   best_metric="eval_val_cosine_ndcg@10")
    output = core.run_trainer(trainer, core.resolve_resume(True, "out/checkpoints"), attention_dropout=0.0)
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from transformers import TrainerCallback

from llama_index_bge_finetune.errors import TrainingError
from llama_index_bge_finetune.precisions import NATIVE_BF16_FLAGS, check_precision_name, cpu_info
from llama_index_bge_finetune.training.attention_dropout import set_attention_dropout
from llama_index_bge_finetune.training.result import FinetuneResult

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
CHECKPOINT_DIR = "checkpoints"
BEST_DIR = "best"
RESULT_FILE = "training_result.json"
CHECKPOINT_FRACTION = 0.1  # default: a checkpoint every 10% of the run's optimizer steps
CHECKPOINT_MIN_SECONDS = 60.0  # ... but not sooner than this after the previous one (a save costs ~1 s)


# ---------------------------------------------------------------------------------------- precision
def precision_flags(precision: str, use_cpu: bool) -> Tuple[bool, bool]:
    """``(fp16, bf16)`` trainer flags: mixed precision only where the hardware computes it natively.

    On a CPU, ``"auto"`` is bf16 autocast when the CPU has AVX512-BF16 or AMX and fp32 otherwise
    (an AVX2-only CPU emulates bfloat16 and gets slower, not faster).
    """
    import torch

    check_precision_name(precision)
    if precision == "fp32":
        return False, False
    if use_cpu:
        if precision == "fp16":
            raise TrainingError("fp16 training needs a GPU; on CPU use precision='bf16' or 'fp32'.")
        return False, precision == "bf16" or cpu_has_native_bf16()
    if precision == "auto":
        bf16 = torch.cuda.is_bf16_supported()
        return not bf16, bf16
    return precision == "fp16", precision == "bf16"


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bfloat16 matrix products natively (AVX512-BF16 or AMX), as oneDNN uses them."""
    import torch

    probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    if probe is None:  # pragma: no cover - older torch builds
        return False
    try:
        if not probe():
            return False
    except RuntimeError:  # pragma: no cover
        return False
    _, flags = cpu_info()
    if flags is None:  # not Linux: trust oneDNN's answer
        return True
    return bool(flags & NATIVE_BF16_FLAGS)


def uses_cpu(device: Any) -> bool:
    """Whether training runs on the CPU for this ``device`` setting (``None`` = the accelerator if any)."""
    import torch

    return str(device or "").startswith("cpu") or not torch.cuda.is_available()


def precision_label(precision: str, fp16: bool, bf16: bool) -> str:
    """``"auto (fp32)"``-style text for the hyper-parameter record."""
    return f"{precision} ({'bf16' if bf16 else 'fp16' if fp16 else 'fp32'})"


# ---------------------------------------------------------------------------------------- checkpoints
def checkpoint_interval(total_steps: int, save_steps: Optional[int]) -> int:
    """Steps between checkpoints: ``save_steps`` if given, else every 10% of the run (at least 1)."""
    if save_steps is not None:
        if save_steps < 1:
            raise TrainingError(f"checkpoint_save_steps must be at least 1 (or None for every 10% of the run), got {save_steps}.")
        return save_steps
    return max(1, math.ceil(total_steps * CHECKPOINT_FRACTION))


def checkpoint_arguments(total_steps: int, save_steps: Optional[int], keep: bool = True, total_limit: int = 0) -> Dict[str, Any]:
    """Trainer arguments for checkpoints that hold everything a resume needs (optimizer, scheduler, RNG, data position)."""
    if not keep:
        return {"save_strategy": "no"}
    return {
        "save_strategy": "steps",
        "save_steps": checkpoint_interval(total_steps, save_steps),
        "save_total_limit": total_limit or None,
        "save_only_model": False,
    }


class TimedCheckpoints(TrainerCallback):
    """Also saves a checkpoint whenever ``seconds`` passed since the last one, so a kill never loses more."""

    def __init__(self, seconds: float) -> None:
        if not seconds > 0:
            raise TrainingError(f"checkpoint_save_seconds must be positive (or None to turn it off), got {seconds}.")
        self.seconds = seconds
        self._last = time.monotonic()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._last = time.monotonic()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if time.monotonic() - self._last >= self.seconds:
            control.should_save = True
        return control

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._last = time.monotonic()


class PacedCheckpoints(TrainerCallback):
    """Skips a scheduled checkpoint that comes less than ``min_seconds`` after the previous one, and the last step's.

    With the default schedule (every 10% of the run) a short run would save a checkpoint (model,
    optimizer, scheduler: ~1 s) every few steps; a kill then loses at most ``min_seconds`` or 10%
    of the run, whichever is more. The first checkpoint is always kept. The last step's is never
    written: the finished model is saved right after it.
    """

    def __init__(self, min_seconds: float = CHECKPOINT_MIN_SECONDS) -> None:
        self.min_seconds = min_seconds
        self._last: Optional[float] = None

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if not control.should_save:
            return control
        final = state.max_steps and state.global_step >= state.max_steps
        if final or (self._last is not None and time.monotonic() - self._last < self.min_seconds):
            control.should_save = False
        return control

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._last = time.monotonic()


class KeepBestWeights(TrainerCallback):
    """Keeps the weights of the best evaluation on disk and restores them at the end of training.

    The trainer's own ``load_best_model_at_end`` can only pick among checkpoints and so forces an
    evaluation (a full encode of the validation corpus) at every checkpoint. This callback decouples
    the two: checkpoints come often (for resume), evaluations as often as asked, and the best
    weights (with their metrics, in ``best.json``) survive a kill and a resume.
    """

    def __init__(self, metric: str, folder: PathLike) -> None:
        self.metric = metric
        self.folder = Path(folder)
        meta = self.folder / "best.json"
        saved = json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else {}
        self.best: Optional[float] = saved.get("value")
        self.best_step: Optional[int] = saved.get("step")
        self.best_metrics: Dict[str, float] = saved.get("metrics", {})

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Optional[Dict[str, float]] = None,
                    model: Any = None, **kwargs: Any) -> None:
        value = (metrics or {}).get(self.metric)
        if value is None or model is None or (self.best is not None and value <= self.best):
            return
        self.best, self.best_step = float(value), int(state.global_step)
        self.best_metrics = {k: float(v) for k, v in (metrics or {}).items() if isinstance(v, (int, float))}
        if state.is_world_process_zero:
            import torch

            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / "weights.pt.tmp"
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, tmp)
            os.replace(tmp, self.folder / "weights.pt")
            (self.folder / "best.json").write_text(
                json.dumps({"metric": self.metric, "value": self.best, "step": self.best_step, "metrics": self.best_metrics}),
                encoding="utf-8",
            )

    def restore(self, model: Any, final_step: int) -> bool:
        """Load the best weights into ``model`` unless the final ones are the best; True when loaded."""
        weights = self.folder / "weights.pt"
        if self.best_step is None or self.best_step == final_step or not weights.is_file():
            return False
        import torch

        model.load_state_dict(torch.load(weights, map_location="cpu"))
        logger.info("Kept the weights of step %d (%s %.4f), the best validation score of the run.",
                    self.best_step, self.metric, self.best)
        return True


def training_callbacks(checkpoint_path: PathLike, resume: Optional[str], save_seconds: Optional[float],
                       best_metric: Optional[str] = None,
                       paced: bool = False) -> Tuple[List[TrainerCallback], Optional[KeepBestWeights]]:
    """The callbacks of :mod:`core` and the best-weights keeper among them (``None`` without validation).

    Timed checkpoints when ``save_seconds``; with ``paced`` (the default 10% schedule, checkpoints
    on) no two checkpoints within :data:`CHECKPOINT_MIN_SECONDS` (:class:`PacedCheckpoints`); the
    best weights of ``best_metric`` kept under ``<checkpoint_path>/best`` (cleared on a fresh
    start, so an earlier run's weights never come back).
    """
    callbacks: List[TrainerCallback] = []
    if save_seconds is not None:
        callbacks.append(TimedCheckpoints(save_seconds))
    if paced:
        callbacks.append(PacedCheckpoints())
    keep_best = None
    if best_metric is not None:
        best_dir = Path(checkpoint_path) / BEST_DIR
        if resume is None:
            import shutil

            shutil.rmtree(best_dir, ignore_errors=True)
        keep_best = KeepBestWeights(best_metric, best_dir)
        callbacks.append(keep_best)
    return callbacks, keep_best


def evaluation_interval(total_steps: int, evaluation_steps: int) -> int:
    """Steps between evaluations: ``evaluation_steps``, but at least two evaluations per run to choose from."""
    if total_steps >= 2 * evaluation_steps:
        return evaluation_steps
    return max(1, math.ceil(total_steps / 2))


def resolve_resume(resume_from_checkpoint: Union[bool, PathLike], checkpoint_path: PathLike) -> Optional[str]:
    """The checkpoint folder to resume from: the last one under ``checkpoint_path`` for ``True``, a given folder, or None."""
    from transformers.trainer_utils import get_last_checkpoint

    if not resume_from_checkpoint:
        return None
    checkpoint_path = os.fspath(checkpoint_path)
    if resume_from_checkpoint is True:
        last = get_last_checkpoint(checkpoint_path) if os.path.isdir(checkpoint_path) else None
        if last is None:
            logger.warning("resume_from_checkpoint=True but %s holds no checkpoint: starting fresh.", checkpoint_path)
        return last
    path = os.fspath(resume_from_checkpoint)
    if not os.path.isdir(path):
        raise TrainingError(
            f"Checkpoint {path} does not exist; pass resume_from_checkpoint=True to continue from the "
            f"last checkpoint in {checkpoint_path}, or the path of a checkpoint-<step> folder."
        )
    return path


def checkpoint_step(path: str) -> int:
    """The step number of a ``checkpoint-<step>`` folder (0 when the name has none)."""
    name = os.path.basename(os.path.normpath(path))
    try:
        return int(name.rsplit("-", 1)[-1])
    except ValueError:
        return 0


# ---------------------------------------------------------------------------------------- arguments
def schedule_arguments(*, output_dir: str, epochs: float, batch_size: int, total_steps: int, learning_rate: float,
                       warmup_ratio: float, lr_scheduler_type: str, weight_decay: float, seed: int,
                       precision: Tuple[bool, bool], device: Any, logging_steps: int, show_progress_bar: bool,
                       save_steps: Optional[int], keep_checkpoints: bool, checkpoint_total_limit: int,
                       eval_steps: Optional[int]) -> Dict[str, Any]:
    """The trainer arguments every engine shares: schedule, precision, logging, checkpoints and evaluation.

    ``eval_steps`` is the engine's ``evaluation_steps`` (``None`` = no validation); it is spread so
    that a run holds at least two evaluations (:func:`evaluation_interval`). The loss is logged every
    ``logging_steps`` steps, or more often in a short run, so that every run has a loss curve of
    about 20 points or more for its report.
    """
    fp16, bf16 = precision
    args: Dict[str, Any] = dict(
        output_dir=output_dir, num_train_epochs=epochs, per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size, learning_rate=learning_rate,
        warmup_steps=int(total_steps * warmup_ratio), lr_scheduler_type=lr_scheduler_type, weight_decay=weight_decay,
        seed=seed, data_seed=seed, fp16=fp16, bf16=bf16, use_cpu=uses_cpu(device),
        logging_steps=min(logging_steps, max(1, total_steps // 20)),
        report_to="none", disable_tqdm=not show_progress_bar,
        **checkpoint_arguments(total_steps, save_steps, keep_checkpoints, checkpoint_total_limit),
    )
    if eval_steps is None:
        args["eval_strategy"] = "no"
    else:
        args.update(eval_strategy="steps", eval_steps=evaluation_interval(total_steps, eval_steps))
    return args


# ---------------------------------------------------------------------------------------- running
def run_trainer(trainer: Any, resume: Optional[str], attention_dropout: Optional[float]) -> Any:
    """``trainer.train()`` with the attention dropout set for the run (``None`` keeps the model's), restored after."""
    restore = (set_attention_dropout(trainer.model, attention_dropout)
               if attention_dropout is not None else (lambda: None))
    try:
        return trainer.train(resume_from_checkpoint=resume)
    finally:
        restore()


def record_training(result: FinetuneResult, output: Any, trainer: Any) -> None:
    """Fill ``result`` from the trainer's output and log: time, throughput, steps, losses, the log history."""
    result.train_seconds = float(output.metrics.get("train_runtime", 0.0))
    result.examples_per_second = float(output.metrics.get("train_samples_per_second", 0.0))
    result.steps = int(output.global_step)
    result.mean_loss = float(output.training_loss) if output.training_loss is not None else None
    result.log_history = [dict(entry) for entry in trainer.state.log_history]
    losses = [e["loss"] for e in result.log_history if "loss" in e]
    result.final_loss = float(losses[-1]) if losses else result.mean_loss


def finish(trainer: Any, result: FinetuneResult, started: float, output_path: str, checkpoint_path: str,
           save_checkpoints: Optional[bool], save: Any) -> None:
    """The last step of every engine: on the main process ``save(model, result)``, drop the checkpoints
    of a successful run (unless kept), and write ``training_result.json`` with the run's real total time."""
    import shutil

    if trainer.is_world_process_zero():
        save(trainer.model, result)
        if save_checkpoints is None:
            shutil.rmtree(checkpoint_path, ignore_errors=True)
        result.total_seconds = time.perf_counter() - started
        write_result(output_path, result)
    settle_processes()
    result.total_seconds = time.perf_counter() - started


def settle_processes() -> None:
    """Under torchrun or accelerate: every process returns once the main one has saved the model, and the
    process group the trainer opened is closed when the script exits.

    Without the wait, another rank's code after ``finetune()`` could look for a model not written yet.
    Without the close, gloo's worker threads can still hold tensors while the interpreter shuts down, and
    the process dies with "terminate called without an active exception" (SIGABRT) after a successful run
    (pytorch/pytorch#190489). The close runs at exit, not here, so the script can still use the group
    after ``finetune()``; it is registered only after a successful run, since closing a group while
    another rank failed mid-collective can hang.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    dist.barrier()
    atexit.unregister(_close_process_group)  # one handler however many runs the script makes
    atexit.register(_close_process_group)


def _close_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        logger.debug("Closing the process group before exit.")
        dist.destroy_process_group()


def write_result(folder: PathLike, result: FinetuneResult) -> None:
    """Write ``training_result.json`` into the model folder (call it last: it records ``total_seconds``)."""
    path = Path(folder) / RESULT_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result.to_dict(), indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)
