"""What a run does by data size when the caller leaves it open: epochs, hard negatives, learning rate, which layers train.

Large data trains every layer for 1.5 epochs at a learning rate of 1.5e-4 with one mined hard
negative per pair. Small data differs in four ways, all measured on the benchmark matrix
(``benchmarks/bench_matrix.py``, benchmarks/RESULTS.md):

- **Enough optimizer steps.** 150 pairs in batches of 32 are 5 steps an epoch, 8 in 1.5 epochs;
  below :data:`MIN_STEPS` steps the epochs grow to whole passes (2 to :data:`MAX_EPOCHS`) instead of the batches
  shrinking, because every passage of a batch is a negative for the others and smaller batches
  measured worse (150 SciFact claims: batches of 15 for 3 epochs +0.016 nDCG@10, of 30 for 2 +0.018).
- **No mined negatives below** :data:`MINING_MIN_PAIRS` **pairs.** On 150 SciFact claims the mined
  negative cost quality and time (nDCG@10 +0.018 with it, +0.028 without, at half the time); on
  256 pairs (the demo's pseudo-queries) it gained (+0.087 with it, +0.063 without), as on 668 (the
  10-K experiment) and 809 (SciFact). So the boundary lies between 150 and 256 pairs (one run each).
  In-batch negatives alone and 4 epochs on the 150 claims: +0.036 at 0.94x the peer's time (the
  peer: +0.024).
- **Only the top third of the layers trains below** :data:`MINING_MIN_PAIRS` **pairs**: the token
  embeddings and the bottom two thirds stay as the base has them (4 of all-MiniLM-L6-v2's 6 layers,
  8 of BGE-small's 12). A few hundred questions cannot retrain a whole encoder without overfitting
  it, and fixed layers need no backward pass. all-MiniLM-L6-v2, CPU without bf16, nDCG@10 lift over
  the base (every layer trained / bottom 2 fixed / 3 / 4): 40 SciFact claims -0.005 / +0.002 /
  +0.004 / +0.009, 150 claims +0.030 / +0.041 / +0.037 / +0.038, and with 4 fixed the 150 claims
  train in 54 s instead of 111 s (the peer: 75 s, +0.024). On 809 SciFact claims, by contrast, 2
  fixed layers cost 0.030, so from 200 pairs on every layer trains.
- **A learning rate of 5e-5 below** :data:`MINING_MIN_PAIRS` **pairs, 1.5e-4 from there on.** With
  every layer training, 1e-4 gained on both large sets over 5e-5 (all-MiniLM-L6-v2, CPU without bf16,
  2 epochs; 5e-5 / 1e-4): SciFact's 809 claims nDCG@10 0.7260 / 0.7468, the 10-K set's 668 questions
  hit@5 0.8367 / 0.8405. On the small sets it went both ways (40 claims +0.009 / +0.005, 150 claims
  +0.038 / +0.044, both within the noise of 100 test claims), so small data keeps 5e-5.

Large data's 1.5 epochs at 1.5e-4 buy time without quality: on SciFact's 809 claims, 2 epochs at 1e-4
scored 0.7468 in 52 steps, 1.5 epochs at 1e-4 0.7316 in 39, 1.5 epochs at 1.5e-4 0.7520 in 39 (the
trainer's time falls with the steps, by a quarter).

An argument the caller gives is kept as given; only the others adapt.

Example::

    from llama_index_bge_finetune.training.schedule import mined_negatives, training_schedule

    training_schedule(809)                 # Schedule(epochs=1.5, steps=39, adapted=False): 26 batches of 32 a pass
    training_schedule(150).epochs          # 4: 5 batches a pass, so 1.5 passes would be 8 steps
    training_schedule(150, epochs=2).steps # 10: an explicit value wins
    mined_negatives("auto", pairs=150)     # 0
    mined_negatives("auto", pairs=256)     # 1
    layers_to_freeze("auto", pairs=150, depth=6)  # 4
    peak_learning_rate("auto", pairs=809)  # 0.00015
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

from llama_index_bge_finetune.training.sampler import even_batches

DEFAULT_EPOCHS = 1.5
MIN_STEPS = 20
MAX_EPOCHS = 4
MINING_MIN_PAIRS = 200
LEARNING_RATE = 1.5e-4
SMALL_DATA_LEARNING_RATE = 5e-5


@dataclass(frozen=True)
class Schedule:
    """A run's epochs, its optimizer steps, and whether the epochs were adapted to the data's size."""

    epochs: float
    steps: int
    adapted: bool


def count_steps(rows: int, batch_size: int, epochs: float, world: int = 1, gradient_accumulation_steps: int = 1) -> int:
    """Optimizer steps of ``epochs`` passes over ``rows`` rows in even batches of at most ``batch_size`` per device."""
    batches, _ = even_batches(rows, batch_size)
    return max(1, math.ceil(math.ceil(batches / world) * epochs / gradient_accumulation_steps))


def training_schedule(rows: int, batch_size: int = 32, epochs: Optional[float] = None, world: int = 1,
                      gradient_accumulation_steps: int = 1) -> Schedule:
    """The epochs for a table of ``rows`` rows: ``epochs`` when given, else 1.5, or a whole number of
    passes (2 to 4) where 1.5 would be fewer than 20 steps."""
    if epochs is not None:
        return Schedule(epochs, count_steps(rows, batch_size, epochs, world, gradient_accumulation_steps), False)
    if count_steps(rows, batch_size, DEFAULT_EPOCHS, world, gradient_accumulation_steps) >= MIN_STEPS:
        chosen: float = DEFAULT_EPOCHS
    else:
        per_epoch = count_steps(rows, batch_size, 1, world, gradient_accumulation_steps)
        chosen = min(MAX_EPOCHS, max(2, math.ceil(MIN_STEPS / per_epoch)))
    return Schedule(chosen, count_steps(rows, batch_size, chosen, world, gradient_accumulation_steps),
                    chosen != DEFAULT_EPOCHS)


def mined_negatives(hard_negatives: Union[int, str], pairs: int) -> int:
    """Hard negatives per pair to mine: ``hard_negatives`` when a number, for ``"auto"`` 1 from 200 pairs on, else 0."""
    if hard_negatives == "auto":
        return 1 if pairs >= MINING_MIN_PAIRS else 0
    return int(hard_negatives)


def layers_to_freeze(frozen_layers: Union[int, str], pairs: int, depth: int) -> int:
    """Bottom layers (with the embeddings) to keep fixed: ``frozen_layers`` when a number, for ``"auto"``
    two thirds of the model's ``depth`` layers (rounded down) below 200 pairs, else none."""
    if frozen_layers == "auto":
        return depth * 2 // 3 if pairs < MINING_MIN_PAIRS else 0
    return int(frozen_layers)


def peak_learning_rate(setting: Union[float, str], pairs: int) -> float:
    """The peak learning rate: ``setting`` when a number, for ``"auto"`` 1.5e-4 from 200 pairs on, else 5e-5."""
    if setting == "auto":
        return LEARNING_RATE if pairs >= MINING_MIN_PAIRS else SMALL_DATA_LEARNING_RATE
    return float(setting)
