"""Batches for in-batch-negative losses: no passage or question twice in a batch, the same number of batches every epoch.

sentence-transformers' ``NoDuplicatesBatchSampler`` fills batches in shuffled order and drops the
ones it cannot fill, so on a small or repetitive table (few passages, several questions per
passage, hard negatives that are other rows' positives) an epoch can yield fewer batches than the
trainer scheduled, or none at all: the run then ends after 0 steps and saves the base model. It
also compares cell texts, so a hard negative cut to its first tokens no longer matches the same
passage as another row's positive and lands in that row's batch as a false negative.

:class:`DistinctPassageBatchSampler` compares rows by *keys* (a question's text, a passage's full
text) and deals every epoch's shuffled rows into a fixed number of batches, each row to the
least-filled batch that holds none of its keys. A row that fits nowhere is moved in by one swap
when possible; otherwise it sits out this epoch (the next epoch's shuffle differs). The batch count
is the trainer's schedule exactly, epoch after epoch, on any table.

Example::

    from datasets import Dataset
    from llama_index_bge_finetune.training.sampler import DistinctPassageBatchSampler

    table = Dataset.from_dict({"anchor": ["q1", "q2", "q3"], "positive": ["p1", "p1", "p2"]})
    sampler = DistinctPassageBatchSampler(table, batch_size=2, drop_last=False)
    assert len(sampler) == 2 and len(list(sampler)) == 2   # "p1" never twice in one batch
"""

from __future__ import annotations

import functools
import heapq
import logging
import math
from typing import Any, Callable, Dict, Hashable, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler

logger = logging.getLogger(__name__)

# Work allowed per epoch for swapping left-out rows in (row comparisons): a few seconds at most.
SWAP_BUDGET = 2_000_000


def even_batches(rows: int, batch_size: int) -> Tuple[int, int]:
    """(batches per epoch, largest batch) for ``rows`` rows in batches of at most ``batch_size``, evenly.

    Every row trains in every epoch and no batch is smaller than half of ``batch_size`` unless the
    table is: ``even_batches(150, 32) == (5, 30)``, ``even_batches(809, 32) == (26, 32)`` (batches
    of 31 and 32), ``even_batches(20, 32) == (1, 20)``.
    """
    batches = max(1, math.ceil(rows / batch_size))
    return batches, max(1, math.ceil(rows / batches))


class DistinctPassageBatchSampler(DefaultBatchSampler):
    """A batch sampler with a fixed number of batches per epoch and no key twice in a batch.

    Args:
        dataset: The training table (``anchor``, ``positive``, ``negative_*`` columns).
        batch_size: The largest batch. Batches are dealt evenly, so they hold ``len(dataset) /
            len(self)`` rows, fewer where rows had to sit out.
        drop_last: ``len(dataset) // batch_size`` batches (at least one) instead of rounding up.
        valid_label_columns: Columns that are labels, not texts (ignored when ``keys`` is given).
        generator: Unused; the shuffle is seeded by ``seed`` and the epoch, so a resumed run
            replays the same batches.
        seed: The shuffle's seed; epoch ``e`` shuffles with ``seed + e``.
        keys: Per row, the things that must not appear twice in one batch. Without it, a row's
            keys are its cell texts.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int,
        drop_last: bool,
        valid_label_columns: Optional[List[str]] = None,
        generator: Any = None,
        seed: int = 0,
        keys: Optional[Sequence[Sequence[Hashable]]] = None,
    ) -> None:
        super().__init__(dataset, batch_size=batch_size, drop_last=drop_last,
                         valid_label_columns=valid_label_columns, generator=generator, seed=seed)
        rows = len(dataset)
        if keys is None:
            skip = set(valid_label_columns or ())
            columns = [dataset.data.column(c).to_pylist() for c in dataset.column_names if c not in skip]
            keys = [tuple(col[i] for col in columns) for i in range(rows)]
        if len(keys) != rows:
            raise ValueError(f"keys has {len(keys)} rows but the dataset has {rows}.")
        interned: Dict[Hashable, int] = {}
        self._keys: List[frozenset] = [frozenset(interned.setdefault(k, len(interned)) for k in row) for row in keys]
        self._num_batches = (max(1, rows // batch_size) if drop_last else even_batches(rows, batch_size)[0]) if rows else 0
        self.skipped_rows = 0
        self._warned = False

    @classmethod
    def with_keys(cls, keys: Sequence[Sequence[Hashable]]) -> Callable[..., "DistinctPassageBatchSampler"]:
        """A factory for ``SentenceTransformerTrainingArguments(batch_sampler=...)`` that uses ``keys``."""
        return functools.partial(cls, keys=keys)

    def __len__(self) -> int:
        return self._num_batches

    def __iter__(self) -> Iterator[List[int]]:
        batches = self.plan(self.epoch)
        yield from batches

    def plan(self, epoch: int) -> List[List[int]]:
        """The batches of one epoch (row indices), the same for the same seed and epoch."""
        count = self._num_batches
        if not count:
            return []
        order = np.random.default_rng(self.seed + epoch).permutation(len(self._keys))
        batches: List[List[int]] = [[] for _ in range(count)]
        taken: List[Set[int]] = [set() for _ in range(count)]
        heap = [(0, b) for b in range(count)]
        left_out: List[int] = []
        for row in order.tolist():
            if not self._deal(row, batches, taken, heap):
                left_out.append(row)
        budget = [SWAP_BUDGET]
        left_out = [row for row in left_out if not self._swap_in(row, batches, taken, budget)]
        self.skipped_rows = len(left_out)
        if left_out and not self._warned and len(left_out) > 0.1 * len(self._keys):
            self._warned = True
            logger.warning(
                "%d of %d training rows could not join a batch without a passage or question appearing twice "
                "(a false in-batch negative), so they sit out this epoch. The table repeats the same passages "
                "too often for batches of %d: lower batch_size, or generate questions for more passages.",
                len(left_out), len(self._keys), self.batch_size,
            )
        return batches

    def _deal(self, row: int, batches: List[List[int]], taken: List[Set[int]], heap: List[tuple]) -> bool:
        """Put ``row`` in the least-filled open batch without any of its keys."""
        keys = self._keys[row]
        passed = []
        placed = False
        while heap:
            size, b = heapq.heappop(heap)
            if keys.isdisjoint(taken[b]):
                batches[b].append(row)
                taken[b] |= keys
                if size + 1 < self.batch_size:
                    heapq.heappush(heap, (size + 1, b))
                placed = True
                break
            passed.append((size, b))
        for entry in passed:
            heapq.heappush(heap, entry)
        return placed

    def _swap_in(self, row: int, batches: List[List[int]], taken: List[Set[int]], budget: List[int]) -> bool:
        """Fit ``row`` into an open batch, directly or by moving one row of a batch that accepts it there."""
        keys = self._keys[row]
        open_batches = [b for b in range(len(batches)) if len(batches[b]) < self.batch_size]
        for k in open_batches:
            if keys.isdisjoint(taken[k]):
                batches[k].append(row)
                taken[k] |= keys
                return True
        if not open_batches or budget[0] <= 0:
            return False
        for j, members in enumerate(batches):
            budget[0] -= len(members) * len(open_batches)
            for pos, other in enumerate(members):
                other_keys = self._keys[other]
                if not keys.isdisjoint(taken[j] - other_keys):
                    continue
                for k in open_batches:
                    if k != j and other_keys.isdisjoint(taken[k]):
                        members[pos] = row
                        taken[j] = (taken[j] - other_keys) | keys
                        batches[k].append(other)
                        taken[k] |= other_keys
                        return True
            if budget[0] <= 0:
                return False
        return False
