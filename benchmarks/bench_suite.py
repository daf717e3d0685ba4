"""How long the test suite takes from a fresh clone: cold caches (a new machine) and warm ones (a second run).

One command (run it alone: other load on the machine distorts timings; the record names the load average
at the start, and a run started above one load per core is marked ``"contended": true``)::

    python benchmarks/bench_suite.py [--runs cold,warm] [--python .venv/bin/python]

It clones the current commit into a temporary folder (the tests run from a fresh checkout, as CI's do), points
``XDG_CACHE_HOME`` at an empty folder (no embedding cache, no test-corpora cache, no Hugging Face cache) and
runs ``make test``'s pytest command there with ``CI=true`` and the given interpreter (the checkout's venv: the
install is not timed). ``cold`` is that first run; ``warm`` runs again in the same clone with the caches the
cold run left. The record holds each run's wall time, its pass/fail/skip counts, the load average at its start
and the CPU kind; the suite's own ``--durations`` table is kept for the 25 slowest tests.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

from records import ROOT, open_record

PYTEST = ["-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "--no-loadscope-reorder", "-rs", "--durations=25"]
_COUNTS = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


def run_suite(clone: Path, python: str, cache: Path) -> Dict[str, Any]:
    """One timed pytest run in ``clone`` with its caches under ``cache``; counts, wall time and the slowest tests."""
    env = {**os.environ, "CI": "true", "XDG_CACHE_HOME": str(cache)}
    env.pop("BGE_FINETUNE_CACHE_DIR", None)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.run([python, *PYTEST], cwd=clone, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    counts = {kind.rstrip("s") if kind.startswith("error") else kind: int(n) for n, kind in _COUNTS.findall(tail)}
    durations = [line.strip() for line in proc.stdout.splitlines() if re.match(r"^\d+\.\d+s (call|setup|teardown)", line)]
    return {"wall_seconds": round(wall, 1), "exit_code": proc.returncode, "counts": counts, "summary": tail,
            "load_average_at_start": round(load, 2), "contended": load > (os.cpu_count() or 1),
            "slowest": durations[:25]}


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="cold,warm", help="comma-separated: cold, warm (warm needs cold first)")
    parser.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"), help="interpreter with the package's test extras")
    args = parser.parse_args(argv)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    if not runs or set(runs) - {"cold", "warm"} or (runs[0] != "cold"):
        raise SystemExit("--runs: 'cold' first, then optionally 'warm' (e.g. --runs cold,warm)")
    record = open_record("suite")
    results: Dict[str, Any] = {"runs": {}, "pytest": " ".join(PYTEST[2:])}
    with tempfile.TemporaryDirectory(prefix="bench-suite-") as tmp:
        clone, cache = Path(tmp) / "clone", Path(tmp) / "cache"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        # the clone lies in a temporary folder, not beside ../shared: point the tests at the checkout's data
        os.environ.setdefault("BGE_FINETUNE_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
        cache.mkdir()
        for name in runs:
            results["runs"][name] = run_suite(clone, args.python, cache)
            r = results["runs"][name]
            print(f"{name}: {r['summary']} in {r['wall_seconds']:.0f} s (load {r['load_average_at_start']})", flush=True)
            record.write(results, complete=False)
    line = "SUMMARY suite " + ", ".join(f"{n} {r['wall_seconds']:.0f} s ({r['summary']})" for n, r in results["runs"].items())
    record.write(results, summary=line)
    print(line)
    if any(r["exit_code"] for r in results["runs"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
