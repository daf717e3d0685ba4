"""Published figures come from committed records, committed text holds no machine path, and the project speaks of itself.

- README.md's results table and every table row and ``SUMMARY`` line of benchmarks/RESULTS.md: each number
  shown appears, at the rounding shown, in the JSON record (``benchmarks/results/*.json``) that the row or
  the paragraph above it links to; the date and commit shown are the record's.
- No committed text file holds an absolute path of a development machine.
- README.md, benchmarks/RESULTS.md and the comments and docstrings of benchmarks/*.py and tests/*.py name
  no ticket numbers, no authors and no private nicknames of goals.
"""

from __future__ import annotations

import io
import json
import math
import re
import subprocess
import tokenize
from functools import lru_cache
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"

# A link to a record: results/<file>.json from RESULTS.md, benchmarks/results/<file>.json from README.md.
RECORD_LINK = re.compile(r"\]\((?:benchmarks/)?results/([^)\s#]+\.json)\)")
WHOLE_RECORD_LINK = re.compile(r"\[[^\]]*\]\((?:benchmarks/)?results/[^)\s#]+\.json\)")
MARKDOWN_LINK_TARGET = re.compile(r"\]\([^)]*\)")
DATE = re.compile(r"(?<![\w-])(\d{4}-\d{2}-\d{2})(?![\w-])")
CLOCK = re.compile(r"(?<![\w:])\d{1,2}:\d{2}(?::\d{2})?(?![\w:])")
COMMIT = re.compile(r"(?<![\w])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}(?:\+changes)?(?![\w])")
# A number as shown: 0.7520, +0.0375, -0.0021, 5,183, 1.5e-4, 0.58x, 6.8%, 26.5 s; not part of a word
# (hit@5, bf16, 10-K, top-50, L6) and not a version or address.
NUMBER = re.compile(
    r"(?<![\w@.,/-])(?P<num>[-+]?(?:\d+(?:\.\d+)?e-?\d+|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?))"
    r"(?P<unit>x|s|ms|h|min|MB|GB|%)?(?![\w@]|\.\d|-[A-Za-z]|,\d{3})"
)


# ---------------------------------------------------------------------------------------------- records
def _leaves(value) -> Iterator[object]:
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


@lru_cache(maxsize=None)
def record(name: str) -> dict:
    """The committed record ``benchmarks/results/<name>``."""
    path = RESULTS_DIR / name
    assert path.is_file(), f"a cited record does not exist: benchmarks/results/{name}"
    return json.loads(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def record_values(name: str) -> Tuple[float, ...]:
    """Every number in a record: its numeric leaves and the numbers written inside its strings (a summary line)."""
    out: List[float] = []
    for leaf in _leaves(record(name)):
        if isinstance(leaf, bool) or leaf is None:
            continue
        if isinstance(leaf, (int, float)):
            if math.isfinite(leaf):
                out.append(float(leaf))
        elif isinstance(leaf, str):
            out.extend(value for value, _, _ in shown_numbers(leaf))
    return tuple(out)


def shown_numbers(text: str) -> List[Tuple[float, float, str]]:
    """(value, half a unit of the last digit shown, the text) of every number in ``text``."""
    text = WHOLE_RECORD_LINK.sub(" ", text.replace("**", ""))  # a record's name is not a figure
    text = CLOCK.sub(" ", DATE.sub(" ", COMMIT.sub(" ", MARKDOWN_LINK_TARGET.sub("]", text))))
    found = []
    for m in NUMBER.finditer(text):
        raw = m.group("num")
        plain = raw.replace(",", "")
        if "e" in plain:
            mantissa = plain.split("e")[0]
            value = float(plain)
            decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
            half = 0.5 * 10 ** (-decimals) * abs(value) / abs(float(mantissa)) if float(mantissa) else 0.0
        else:
            value = float(plain)
            decimals = len(plain.split(".")[1]) if "." in plain else 0
            half = 0.5 * 10 ** (-decimals)
        if m.group("unit") == "%" or text[m.end():m.end() + 4] == " pts":
            value, half = value / 100, half / 100
        found.append((value, half, raw + (m.group("unit") or "")))
    return found


def missing_numbers(text: str, names: Sequence[str]) -> List[str]:
    """The numbers shown in ``text`` that none of the records ``names`` holds at the rounding shown."""
    values = [v for name in names for v in record_values(name)]
    missing = []
    for shown, half, raw in shown_numbers(text):
        if not any(abs(v - shown) <= half + 1e-9 * max(1.0, abs(shown)) for v in values):
            missing.append(raw)
    return missing


def record_date(name: str) -> str:
    return str(record(name).get("date", ""))[:10]


def record_commit(name: str) -> Optional[str]:
    commit = record(name).get("commit")
    return commit.split("+")[0] if isinstance(commit, str) else None


# ---------------------------------------------------------------------------------------------- markdown
def _table_rows(lines: Sequence[str], start: int) -> Iterator[Tuple[int, List[str]]]:
    """(line number, cells) of the table starting at ``lines[start]`` (header and separator skipped)."""
    i = start + 2
    while i < len(lines) and lines[i].lstrip().startswith("|"):
        yield i + 1, [c.strip() for c in lines[i].strip().strip("|").split("|")]
        i += 1


def readme_results_table() -> Tuple[List[str], List[Tuple[int, List[str]]]]:
    """The header cells and rows of the first table under README.md's "## Results"."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("## Results")
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    header = [c.strip().lower() for c in lines[first].strip().strip("|").split("|")]
    return header, list(_table_rows(lines, first))


def results_entries() -> Iterator[Tuple[int, str, List[str]]]:
    """(line number, text, cited records) of every table row and ``SUMMARY`` line of benchmarks/RESULTS.md.

    A row cites the records it links to, else those of the nearest paragraph above it that links to any.
    Header rows and code blocks (commands) are not figures.
    """
    lines = (ROOT / "benchmarks" / "RESULTS.md").read_text(encoding="utf-8").splitlines()
    separator = re.compile(r"\|[-| :]+\|")
    cited: List[str] = []
    paragraph: List[str] = []
    in_code = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("```"):
            in_code = not in_code
            continue
        if in_code:
            continue
        if stripped.startswith("|"):
            is_header = i + 1 < len(lines) and separator.fullmatch(lines[i + 1].strip())
            if not is_header and not separator.fullmatch(stripped):
                yield i + 1, line, RECORD_LINK.findall(line) or cited
            continue
        if not stripped or stripped.startswith("#"):
            paragraph = []
            continue
        paragraph.append(line)
        links = RECORD_LINK.findall(" ".join(paragraph))
        if links:
            cited = links
        if stripped.startswith("`SUMMARY"):
            yield i + 1, line, cited


# ---------------------------------------------------------------------------------------------- (a)
def test_every_figure_of_the_readme_results_table_is_in_the_record_its_row_cites():
    header, rows = readme_results_table()
    assert rows, "README.md has no results table under '## Results'"
    date_col, commit_col = header.index("date"), header.index("commit")
    for line_no, cells in rows:
        row = " | ".join(cells)
        names = RECORD_LINK.findall(row)
        assert names, f"README.md:{line_no}: the row cites no record (benchmarks/results/<file>.json): {row}"
        figures = " | ".join(c for i, c in enumerate(cells) if i not in (date_col, commit_col))
        missing = missing_numbers(figures, names)
        assert not missing, f"README.md:{line_no}: {missing} not in {', '.join(names)}"
        assert any(record_date(n) == cells[date_col] for n in names), \
            f"README.md:{line_no}: date {cells[date_col]} is not the date of {', '.join(names)}"
        commits = [c for c in (record_commit(n) for n in names) if c]
        assert not commits or any(cells[commit_col].startswith(c[:7]) or c.startswith(cells[commit_col])
                                  for c in commits), \
            f"README.md:{line_no}: commit {cells[commit_col]} is not the commit {commits} of {', '.join(names)}"


def test_every_table_row_and_summary_line_of_results_md_is_in_the_record_it_cites():
    entries = list(results_entries())
    assert len(entries) > 20, "benchmarks/RESULTS.md has (almost) no tables or summary lines"
    for line_no, text, names in entries:
        if not shown_numbers(text):
            continue
        assert names, f"benchmarks/RESULTS.md:{line_no}: no record cited for: {text.strip()[:120]}"
        missing = missing_numbers(text, names)
        assert not missing, f"benchmarks/RESULTS.md:{line_no}: {missing} not in {', '.join(names)}"


def test_every_record_cited_exists_and_every_record_is_cited():
    cited: Set[str] = set()
    for doc in (ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md"):
        cited |= set(RECORD_LINK.findall(doc.read_text(encoding="utf-8")))
    for name in sorted(cited):
        record(name)  # exists and parses
    committed = {p.name for p in RESULTS_DIR.glob("*.json")}
    assert committed - cited == set(), f"records cited nowhere in RESULTS.md or README.md: {sorted(committed - cited)}"


def test_the_number_reader_reads_what_a_reader_reads():
    shown = [raw for _, _, raw in shown_numbers(
        "| SciFact 10-K: 809 claims over 5,183 abstracts, hit@5 | **0.7520** (+0.1069) | 0.58x | bf16 | top-50 "
        "| [record](benchmarks/results/2026-12-04T175800_matrix.json) | 2026-12-04 17:58 UTC | 9c46a4c | 1.5e-4 | 6.8% |")]
    assert shown == ["809", "5,183", "0.7520", "+0.1069", "0.58x", "1.5e-4", "6.8%"]


# ---------------------------------------------------------------------------------------------- (b)
MACHINE_PATH = re.compile(r"(?<![\w.~<>/-])/(?:work|root|home|Users)/[\w.-]")
TEMP_PATH = re.compile(r"(?<![\w.~<>/-])/tmp/[\w.-]")
TEXT_SUFFIXES = {".py", ".md", ".json", ".toml", ".ipynb", ".txt"}


def committed_text_files() -> List[Path]:
    try:
        names = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True,
                               check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / n for n in names
            if (Path(n).suffix in TEXT_SUFFIXES or n in ("Makefile", ".ci/run")) and (ROOT / n).is_file()]


def test_no_committed_text_file_holds_an_absolute_machine_path():
    offenders = []
    for path in committed_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        # /tmp in code is a temporary folder the code makes or names; in data and prose it is a machine's.
        patterns = (MACHINE_PATH,) if path.suffix == ".py" else (MACHINE_PATH, TEMP_PATH)
        for n, line in enumerate(text.splitlines(), 1):
            if any(p.search(line) for p in patterns):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert not offenders, "absolute machine paths in committed files:\n" + "\n".join(offenders)


# ---------------------------------------------------------------------------------------------- (c)
# Built from parts so that this file does not match itself.
FORBIDDEN = [re.compile(p, re.IGNORECASE) for p in (
    r"\bissues?\s*#?\s*\d+", r"\bissue'?s\b", r"\bmoon" + r"shot", r"\bthe auth" + r"or\b", r"\bauth" + r"or's\b",
    r"\bitem\s+\d+\b",
)]


def _comments_and_docstrings(path: Path) -> Iterator[Tuple[int, str]]:
    source = path.read_text(encoding="utf-8")
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT or (tok.type == tokenize.STRING and tok.string.lstrip("rRbBuUfF")[:3] in ('"""', "'''")):
            yield tok.start[0], tok.string


def test_docs_and_code_comments_name_no_tickets_authors_or_nicknames():
    offenders = []
    for doc in (ROOT / "README.md", ROOT / "benchmarks" / "RESULTS.md"):
        for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            if any(p.search(line) for p in FORBIDDEN):
                offenders.append(f"{doc.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    scripts = sorted((ROOT / "benchmarks").glob("*.py")) + sorted((ROOT / "tests").glob("*.py"))
    for path in scripts:
        if path.name == Path(__file__).name:
            continue
        for n, text in _comments_and_docstrings(path):
            if any(p.search(text) for p in FORBIDDEN):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {text.strip()[:100]}")
    assert not offenders, "\n".join(offenders)
