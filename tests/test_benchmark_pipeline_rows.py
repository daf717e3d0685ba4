"""The matrix's pipeline rows and its Cranfield loader, on small made-up data (no model, no download).

- The SMART-format reader and the Cranfield conversion: question ids by position, title and text as one
  field, codes 1-4 relevant and -1 not, empty documents left out, a seeded split.
- Cross-fitting scores every question exactly once, each fold with a choice made on the other fold only.
- A missing collection stops with a message naming how to get it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import classic_collections  # noqa: E402
import matrix_pipeline  # noqa: E402

DOCS = """.I 1
.T
lift of a wing .
.A
someone
.W
lift of a wing .
  the lift of a swept wing in a slipstream .
.I 2
.T
boundary layer heat
.W
heat transfer in a boundary layer at high mach numbers .
.I 3
.T
.W
"""
QUERIES = """.I 001
.W
what is the lift of a swept wing .
.I 004
.W
how does heat move through a
boundary layer .
"""
QRELS = "1 1 2\n1 2 -1\n2 2 1\n2 3 1\n"


def test_cranfield_conversion_follows_its_stated_rules():
    files = {"cran.all.1400": DOCS, "cran.qry": QUERIES, "cranqrel": QRELS}
    train, test = classic_collections.convert_cranfield(files.__getitem__, n_train=1, seed=0)
    assert set(train.corpus) == {"d1", "d2"}  # d3 has no text
    assert train.corpus["d1"] == "lift of a wing . the lift of a swept wing in a slipstream ."  # title not doubled
    assert train.corpus["d2"] == "boundary layer heat heat transfer in a boundary layer at high mach numbers ."
    questions = {**train.queries, **test.queries}
    assert questions == {"q1": "what is the lift of a swept wing .",
                         "q2": "how does heat move through a boundary layer ."}  # ids by position, not by .I
    relevant = {**train.relevant_docs, **test.relevant_docs}
    assert relevant == {"q1": ["d1"], "q2": ["d2"]}  # -1 is not relevant; d3 left out with its text
    assert len(train.queries) == 1 and len(test.queries) == 1 and train.query_source == "user"


def test_a_missing_collection_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv(classic_collections.CRANFIELD_ENV, str(tmp_path))
    with pytest.raises(SystemExit, match="cran.all.1400.*BENCH_CRANFIELD"):
        classic_collections.cranfield_reader()


def test_cross_fitting_scores_each_question_once_with_the_other_folds_choice(monkeypatch):
    rng = np.random.default_rng(0)
    n, docs = 40, 30
    doc_ids = [f"d{i:02d}" for i in range(docs)]
    relevant = [{doc_ids[i % docs]: 1.0} for i in range(n)]
    lexical = matrix_pipeline.LexicalScores(
        qids=[f"q{i}" for i in range(n)], doc_ids=doc_ids, relevant=relevant,
        full=rng.random((n, docs)).astype(np.float32), tie_rank=np.arange(docs), timings={})
    dense = rng.random((n, docs)).astype(np.float32)
    for i in range(n):  # dense finds every question's passage; BM25 is noise
        dense[i, i % docs] = 2.0
    seen = []
    real = matrix_pipeline.choose_fusion

    def spy(d, b, rel, ids, **kwargs):
        seen.append({tuple(sorted(r)) for r in rel})
        return real(d, b, rel, ids, **kwargs)

    monkeypatch.setattr(matrix_pipeline, "choose_fusion", spy)
    row = matrix_pipeline.crossfit_row(dense, lexical, "ndcg@10")
    folds = matrix_pipeline.fold_rows(n)
    assert sorted(np.concatenate(folds).tolist()) == list(range(n))
    assert [f["scored_questions"] for f in row["folds"]] == [len(f) for f in folds]
    assert [f["chosen_on_questions"] for f in row["folds"]] == [n - len(f) for f in folds]
    assert row["chosen"] == ["dense", "dense"] and row["ndcg@10"] == pytest.approx(1.0)
    assert row["queries"] == n and len(seen) == matrix_pipeline.FOLDS
