"""The training precisions a user can name, checked without importing torch (the CLI refuses a typo at once).

Which of them a device can train in is decided by ``training.core.precision_flags``.
"""

from __future__ import annotations

from llama_index_bge_finetune.errors import TrainingError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: Precisions every device trains in; fp16 needs a GPU.
ANY_DEVICE_PRECISIONS = ("auto", "fp32", "bf16")


def check_precision_name(precision: str) -> None:
    """Raise :class:`TrainingError` naming the valid choices when ``precision`` is not one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise TrainingError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
