"""The batch sampler: the scheduled number of batches every epoch, never a passage or question twice in a batch."""

from __future__ import annotations

import logging
import random

import pytest
from datasets import Dataset

from llama_index_bge_finetune.errors import TrainingError
from llama_index_bge_finetune.training import SentenceTransformersFinetuneEngine
from llama_index_bge_finetune.training.sampler import DistinctPassageBatchSampler
from tests.training_data import topics_dataset


def _table(rows: int, passages: int, negatives: int, seed: int) -> Dataset:
    """Rows over few passages, hard negatives drawn from the same passages (each clashes with other rows)."""
    rng = random.Random(seed)
    data = {"anchor": [f"q{i}" for i in range(rows)], "positive": [f"p{i % passages}" for i in range(rows)]}
    offsets = [rng.sample(range(1, passages), negatives) for _ in range(rows)]
    for j in range(negatives):
        data[f"negative_{j + 1}"] = [f"p{(i + offsets[i][j]) % passages}" for i in range(rows)]
    return Dataset.from_dict(data)


@pytest.mark.parametrize("rows,passages,negatives,batch", [
    (36, 12, 0, 6),    # 3 questions per passage
    (38, 19, 1, 19),   # one batch's worth of passages, each row holding two: the old sampler made 0 batches
    (24, 24, 1, 8),
    (200, 40, 2, 16),
    (7, 3, 0, 32),     # smaller than a batch
    (809, 700, 1, 31),
])
def test_every_epoch_has_the_scheduled_batches_and_no_repeats(rows, passages, negatives, batch):
    table = _table(rows, passages, negatives, seed=rows)
    sampler = DistinctPassageBatchSampler(table, batch_size=batch, drop_last=False, seed=3)
    assert len(sampler) == -(-rows // batch)
    plans = []
    for epoch in range(4):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        plans.append(batches)
        assert len(batches) == len(sampler), f"epoch {epoch} yielded {len(batches)} of {len(sampler)} batches"
        used = [i for b in batches for i in b]
        assert len(used) == len(set(used)), "a row trained twice in one epoch"
        assert len(used) + sampler.skipped_rows == rows
        for b in batches:
            assert 0 < len(b) <= batch
            texts = [table[i][c] for i in b for c in table.column_names]
            assert len(texts) == len(set(texts)), f"a text twice in one batch: {sorted(texts)}"
    sampler.set_epoch(1)
    assert list(sampler) == plans[1], "the same epoch must replay the same batches (resume)"
    assert plans[0] != plans[1], "epochs must reshuffle"


def test_a_tight_table_still_trains_every_row():
    # 12 passages x 3 questions in batches of 6: every batch must take 6 different passages, and the
    # dealing is only possible without leftovers when rows are swapped between batches.
    sampler = DistinctPassageBatchSampler(_table(36, 12, 0, seed=0), batch_size=6, drop_last=False)
    for epoch in range(10):
        sampler.set_epoch(epoch)
        assert [len(b) for b in sampler] == [6] * 6 and sampler.skipped_rows == 0


def test_keys_decide_clashes_not_cell_texts():
    # Two rows whose negatives are cut prefixes of the other row's positive: the texts differ, the passages not.
    table = Dataset.from_dict({"anchor": ["qa", "qb"], "positive": ["passage A full", "passage B full"],
                               "negative_1": ["passage B", "passage A"]})
    by_text = DistinctPassageBatchSampler(table, batch_size=2, drop_last=False)
    assert [sorted(b) for b in by_text] == [[0, 1]]
    keys = [[("q", "qa"), ("d", "A"), ("d", "B")], [("q", "qb"), ("d", "B"), ("d", "A")]]
    by_key = DistinctPassageBatchSampler(table, batch_size=2, drop_last=False, keys=keys)
    assert list(by_key) == [[0]] or list(by_key) == [[1]]
    assert by_key.skipped_rows == 1


def test_a_table_that_repeats_passages_too_often_warns_with_the_fix(caplog):
    sampler = DistinctPassageBatchSampler(_table(60, 3, 0, seed=0), batch_size=20, drop_last=False)
    with caplog.at_level(logging.WARNING):
        batches = list(sampler)
    assert [len(b) for b in batches] == [3, 3, 3]
    assert "51 of 60 training rows" in caplog.text and "lower batch_size" in caplog.text


def test_a_run_that_trains_no_step_raises_instead_of_saving_the_base_model(tiny_model_path, tmp_path):
    out = tmp_path / "out"
    engine = SentenceTransformersFinetuneEngine(
        topics_dataset(8, 1), model_id=str(tiny_model_path), model_output_path=str(out), batch_size=4,
        show_progress_bar=False, hard_negatives=0,
    )
    with pytest.raises(TrainingError, match="0 steps"):
        engine.finetune(num_train_epochs=0)
    assert not (out / "training_result.json").exists()
