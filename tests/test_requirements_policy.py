"""A missing part fails under CI and skips elsewhere, both saying what to install (tests/requirements.py).

Each test runs pytest in a subprocess on a generated file whose tests require a module and a
folder that do not exist, once with ``CI=true`` and once without ``CI``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest

REPO = Path(__file__).resolve().parents[1]

PROBE = '''
from tests.requirements import require_module, require_path


def test_needs_a_module():
    require_module("no_such_module_for_the_policy_probe", "pip install no-such-package==1.0")


def test_needs_a_folder(tmp_path):
    require_path(tmp_path / "absent-data", "the probe's data folder", "set PROBE_DATA_DIR to it")
'''


def _run_probe(tmp_path: Path, ci: Optional[str]) -> subprocess.CompletedProcess:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:randomly", "-p", "no:xdist",
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "test_probe.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("ci", ["true", "1"])
def test_under_ci_a_missing_part_fails_and_says_what_to_install(tmp_path: Path, ci: str) -> None:
    proc = _run_probe(tmp_path, ci)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "2 failed" in out and "skipped" not in out and "Traceback" not in out, out
    assert "no_such_module_for_the_policy_probe" in out and "pip install no-such-package==1.0" in out
    assert "the probe's data folder is not at" in out and "set PROBE_DATA_DIR to it" in out


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_outside_ci_a_missing_part_skips_with_the_same_reason(tmp_path: Path, ci: Optional[str]) -> None:
    proc = _run_probe(tmp_path, ci)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "2 skipped" in out and "failed" not in out, out
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]  # the -rs summary
    assert len(skips) == 2, out
    assert all(s.startswith("SKIPPED [1] test_probe.py:") for s in skips), "the skip points at the test, not the helper"
    assert any("no_such_module_for_the_policy_probe" in s and "pip install no-such-package==1.0" in s for s in skips)
    assert any("the probe's data folder is not at" in s and "set PROBE_DATA_DIR to it" in s for s in skips)
