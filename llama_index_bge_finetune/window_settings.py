"""The values of ``max_seq_length`` (the saved model's window), checked without importing torch.

The CLI refuses a bad ``--max-seq-length`` before loading any model library; the choice itself is
made in :mod:`llama_index_bge_finetune.training.window`.
"""

from __future__ import annotations

from typing import Union

from llama_index_bge_finetune.errors import TrainingError

WindowSetting = Union[int, str, None]
"""``"auto"``, ``None`` (the base model's window) or a number of tokens."""


def check_window_setting(value: WindowSetting) -> None:
    """Refuse a ``max_seq_length`` that is neither ``"auto"``, ``None`` nor a token count of at least 8."""
    if value is None or value == "auto":
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 8:
        raise TrainingError(f"max_seq_length must be 'auto', None (the base model's window) or at least 8 tokens, "
                            f"got {value!r}.")


def parse_window_setting(text: str) -> WindowSetting:
    """The CLI's ``--max-seq-length``: ``auto``, ``base`` (the base model's window) or a token count."""
    value = text.strip().lower()
    if value == "auto":
        return "auto"
    if value == "base":
        return None
    try:
        tokens = int(value)
    except ValueError:
        tokens = -1
    if tokens < 8:
        raise TrainingError(f"--max-seq-length must be auto, base or a number of tokens of at least 8, got {text!r}.")
    return tokens
