"""How many tokens of a passage the fine-tuned model reads: its window, sized to the user's passages.

Many sentence-transformers models ship a window shorter than their position limit
(all-MiniLM-L6-v2 reads 256 tokens of the 512 its positions cover), while LlamaIndex's default
chunks run to 1,024 tokens: the model then embeds the first quarter of each chunk and retrieval
never sees the rest. With ``max_seq_length="auto"`` (the engine's default) the fine-tuned model is
saved with a window that covers the 90th-percentile passage of the training corpus, rounded up to
a multiple of 64, never below the base's window and never past the position limit. Training itself
keeps the base's window (its cost does not change); only the saved model reads further. With a
validation set, the engine reads it at both windows after training and saves the one that scores
higher (:func:`confirmed_by_validation`).

Measured (benchmarks/RESULTS.md, 2026-12-04, the LlamaIndex 10-K experiment, all-MiniLM-L6-v2):
hit@5 of the base 0.7278 at 256 tokens, 0.7620 at 512; the model fine-tuned at 256 and read at 512
0.8367 (0.7709 at 256).

Example::

    from sentence_transformers import SentenceTransformer
    from llama_index_bge_finetune.training.window import choose_window

    model = SentenceTransformer("sentence-transformers/all-MiniLM-L6-v2")
    choice = choose_window(model, ["a passage ...", "another passage ..."], "auto")
    print(choice.base, choice.chosen, choice.reason)   # 256 256 "the base's window covers ..."
"""

from __future__ import annotations

import math
import random
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, Iterator, Optional, Sequence

from llama_index_bge_finetune.errors import TrainingError
from llama_index_bge_finetune.window_settings import WindowSetting, check_window_setting

WINDOW_PERCENTILE = 0.9  # the window covers this share of the training passages ...
WINDOW_STEP = 64  # ... rounded up to a multiple of this many tokens
SAMPLE = 2000  # passages tokenized to measure lengths (a seeded sample of larger corpora)


@dataclass(frozen=True)
class WindowChoice:
    """The base model's window, the one the fine-tuned model is saved with, and why."""

    base: int
    chosen: int
    limit: Optional[int]
    passage_tokens_p90: Optional[int]
    reason: str

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serialisable dict (for ``training_result.json`` and the model card)."""
        return asdict(self)


@contextmanager
def read_at(model: Any, window: int) -> Iterator[Any]:
    """Within the block ``model`` reads ``window`` tokens of each text; its own window is restored after.

    For encodes at another length than the model trains or is saved with (mining, validation)::

        with read_at(model, 512):
            vectors = model.encode(passages)
    """
    own = model.max_seq_length
    model.max_seq_length = window
    try:
        yield model
    finally:
        model.max_seq_length = own


def position_limit(model: Any) -> Optional[int]:
    """The most tokens the model's first module can read: its position embeddings (``None`` when it has none).

    The tokenizer's ``model_max_length`` is no guide: sentence-transformers sets it to the window.
    """
    first = model[0] if len(model) else None
    config = getattr(getattr(first, "auto_model", None), "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if not isinstance(positions, int) or positions <= 0:
        return None
    # RoBERTa-family models reserve the first positions for padding (position ids start at pad + 1).
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        positions -= (getattr(config, "pad_token_id", 0) or 0) + 1
    return positions


def passage_length_percentile(tokenizer: Any, passages: Sequence[str], q: float = WINDOW_PERCENTILE,
                              seed: int = 0) -> int:
    """The ``q`` quantile of the passages' token counts (special tokens included), on a seeded sample."""
    texts = list(passages)
    if len(texts) > SAMPLE:
        texts = random.Random(seed).sample(texts, SAMPLE)
    lengths = sorted(len(ids) for ids in tokenizer(texts, add_special_tokens=True, truncation=False,
                                                   verbose=False)["input_ids"])
    return lengths[min(len(lengths) - 1, max(0, math.ceil(q * len(lengths)) - 1))]


def choose_window(model: Any, passages: Sequence[str], setting: WindowSetting) -> WindowChoice:
    """The window the fine-tuned model is saved with, for ``max_seq_length=setting``.

    ``None`` keeps the base's; an int is used as given (refused past the position limit);
    ``"auto"`` covers the 90th-percentile training passage as the module docstring says.
    """
    check_window_setting(setting)
    base = int(model.max_seq_length)
    limit = position_limit(model)
    if setting is None:
        return WindowChoice(base, base, limit, None, "max_seq_length=None keeps the base model's window")
    if isinstance(setting, int):
        if limit is not None and setting > limit:
            raise TrainingError(f"max_seq_length={setting} is past the model's position limit of {limit} tokens; "
                                f"pass at most {limit}, or 'auto'.")
        return WindowChoice(base, setting, limit, None, f"max_seq_length={setting} as given")
    if limit is None:
        return WindowChoice(base, base, limit, None, "the model states no position limit: the base's window kept")
    if not passages:
        return WindowChoice(base, base, limit, None, "no passages to measure: the base's window kept")
    p90 = passage_length_percentile(model.tokenizer, passages)
    if p90 <= base:
        return WindowChoice(base, base, limit, p90,
                            f"the base's window of {base} tokens covers 90% of the passages ({p90} tokens)")
    chosen = min(limit, math.ceil(p90 / WINDOW_STEP) * WINDOW_STEP)  # > base (p90 > base) unless limit <= base
    if chosen <= base:
        return WindowChoice(base, base, limit, p90, f"the base's window of {base} tokens is the model's limit")
    covers = "covers 90% of the passages" if chosen >= p90 else "is the model's position limit"
    return WindowChoice(base, chosen, limit, p90,
                        f"90% of the passages run to {p90} tokens, past the base's window of {base}: "
                        f"saved with {chosen} tokens, which {covers}")


def confirmed_by_validation(choice: WindowChoice, at_chosen: float, at_base: float) -> WindowChoice:
    """``choice``, or the base's window when the validation set scores the fine-tuned model higher there.

    ``at_chosen`` and ``at_base`` are the fine-tuned model's validation nDCG@10 read at
    ``choice.chosen`` and at ``choice.base`` tokens. Passage length is the prior; the caller's own
    questions are the evidence, weighed as keep-best weighs checkpoints (the higher score wins, a tie
    keeps the chosen window).
    """
    if choice.chosen == choice.base or at_base <= at_chosen:
        return choice
    return replace(choice, chosen=choice.base, reason=(
        f"{choice.reason}; but the validation set scored the fine-tuned model higher at the base's "
        f"{choice.base} tokens (nDCG@10 {at_base:.4f} against {at_chosen:.4f} at {choice.chosen}): saved with {choice.base}"))
