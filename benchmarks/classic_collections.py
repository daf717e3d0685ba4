"""Classic test collections for the benchmark matrix: read from a public mirror, converted once, cached.

``cranfield``: the Cranfield collection (Cleverdon, 1960s): 1,400 abstracts of aeronautics papers,
225 questions written by people (the authors of papers, asked for the question their paper had
answered), with relevance judged by people on a 1-4 scale. Another domain than SciFact's biomedical
claims, and questions rather than claims. Its three files are in the SMART format that many public
repositories mirror: ``cran.all.1400`` (documents: ``.I`` id, ``.T`` title, ``.A`` authors, ``.B``
source, ``.W`` text), ``cran.qry`` (``.I``, ``.W``) and ``cranqrel`` (``query doc code``).

Conversion, stated (the collection has no split of its own):

- Question ids are the questions' positions in ``cran.qry`` (1..225): the judgments number them so,
  while the file's own ``.I`` numbers skip (001, 002, 004, ...), a known quirk of the collection.
- A document's text is its title and its ``.W`` text as one field; the ``.W`` text usually opens
  with the title again, and then it is used alone. Whitespace is collapsed. Documents with no text
  are left out, with their judgments.
- Relevance is binary, as everywhere in the matrix: codes 1-4 (complete answer .. minimum interest)
  are relevant; the two ``-1`` lines are not. A question left without a relevant document is dropped.
- A seeded split (seed 0) of the questions: 100 train, the rest (125) test, both over the whole corpus.

Where the files come from: ``BENCH_CRANFIELD`` names either a folder holding the three files or a
bare git repository that has them (read with ``git show``, so a fetched mirror needs no checkout);
without it, ``<BENCH_DATA>/cranfield`` (``bench_finetune_common.SHARED``). The converted split is
cached as JSON under ``benchmarks/.cache/datasets/`` (git-ignored), keyed by a digest of the files.

Example::

    from classic_collections import load_cranfield

    train, test = load_cranfield()   # EmbeddingQAFinetuneDataset each, query_source="user"
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import subprocess
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from bench_finetune_common import ROOT, SHARED

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset

logger = logging.getLogger("classic_collections")

CACHE = ROOT / "benchmarks" / ".cache" / "datasets"
CRANFIELD_ENV = "BENCH_CRANFIELD"
CRANFIELD_FILES = ("cran.all.1400", "cran.qry", "cranqrel")
CRANFIELD_TRAIN = 100
SPLIT_SEED = 0
_FORMAT = 1  # bump when the conversion changes, so old cached JSON is not read
_FIELD = re.compile(r"^\.([A-Z])\s*(.*)$")

HOW_TO_GET = (
    "The cranfield set needs the Cranfield collection's files {files}. Fetch a public GitHub repository that "
    "mirrors them (e.g. noramtboraas/information-retrieval, which holds all three at its top level) and set "
    "{env} to its folder or to its bare git directory, or copy the three files into {default}."
)


class MissingCollection(SystemExit):
    """A collection's files are nowhere the loader looks; the message says how to get them."""


def _git_reader(git_dir: Path) -> Optional[Callable[[str], str]]:
    """A reader of files by base name from ``git_dir``'s HEAD, or ``None`` when it is not a git repository."""
    try:
        names = subprocess.run(["git", "--git-dir", str(git_dir), "ls-tree", "-r", "--name-only", "HEAD"],
                               capture_output=True, text=True, check=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return None
    by_name = {}
    for path in sorted(names, key=len):  # the shallowest copy of a name wins
        by_name.setdefault(path.rsplit("/", 1)[-1], path)

    def read(name: str) -> str:
        if name not in by_name:
            raise FileNotFoundError(name)
        return subprocess.run(["git", "--git-dir", str(git_dir), "show", f"HEAD:{by_name[name]}"],
                              capture_output=True, check=True).stdout.decode("utf-8", errors="replace")

    return read


def _folder_reader(folder: Path) -> Callable[[str], str]:
    def read(name: str) -> str:
        return (folder / name).read_text(encoding="utf-8", errors="replace")

    return read


def cranfield_reader() -> Tuple[Callable[[str], str], str]:
    """(reader of the three files by name, where they were found); :class:`MissingCollection` when nowhere."""
    default = SHARED / "cranfield"
    given = os.environ.get(CRANFIELD_ENV)
    where = Path(given) if given else default
    candidates: List[Tuple[Callable[[str], str], str]] = []
    if where.is_dir() and all((where / f).is_file() for f in CRANFIELD_FILES):
        candidates.append((_folder_reader(where), f"folder {where.name}"))
    elif where.is_dir():
        git = _git_reader(where)
        if git is not None:
            candidates.append((git, f"git repository {where.name}"))
    for read, label in candidates:
        try:
            for name in CRANFIELD_FILES:
                read(name)
        except (FileNotFoundError, subprocess.CalledProcessError):
            continue
        return read, label
    problem = f"{CRANFIELD_ENV}={given!r} holds no complete copy" if given else f"{default} does not hold them"
    raise MissingCollection(f"{problem}. " + HOW_TO_GET.format(files=", ".join(CRANFIELD_FILES), env=CRANFIELD_ENV,
                                                                 default=default))


def parse_smart(text: str) -> List[Tuple[str, Dict[str, str]]]:
    """SMART-format records: ``[(".I" value, {field letter: text with whitespace collapsed}), ...]`` in file order."""
    records: List[Tuple[str, Dict[str, str]]] = []
    field: Optional[str] = None
    for line in text.splitlines():
        m = _FIELD.match(line)
        if m and m.group(1) == "I":
            records.append((m.group(2).strip(), {}))
            field = None
        elif m and records:
            field = m.group(1)
            records[-1][1].setdefault(field, "")
            records[-1][1][field] += " " + m.group(2)
        elif field is not None and records:
            records[-1][1][field] += " " + line
    return [(rid, {k: " ".join(v.split()) for k, v in fields.items()}) for rid, fields in records]


def _document_text(fields: Dict[str, str]) -> str:
    title, body = fields.get("T", ""), fields.get("W", "")
    if title and body.startswith(title):
        return body
    return " ".join(p for p in (title, body) if p)


def convert_cranfield(read: Callable[[str], str], n_train: int = CRANFIELD_TRAIN, seed: int = SPLIT_SEED
                      ) -> Tuple[EmbeddingQAFinetuneDataset, EmbeddingQAFinetuneDataset]:
    """(train, test) from the three files' texts, converted as the module docstring states."""
    corpus = {f"d{rid}": _document_text(f) for rid, f in parse_smart(read("cran.all.1400"))}
    corpus = {d: t for d, t in corpus.items() if t}
    queries = {f"q{i}": f.get("W", "") for i, (_, f) in enumerate(parse_smart(read("cran.qry")), start=1)}
    relevant: Dict[str, List[str]] = {}
    for line in read("cranqrel").splitlines():
        parts = line.split()
        if len(parts) >= 3 and int(parts[2]) > 0 and f"d{parts[1]}" in corpus and f"q{parts[0]}" in queries:
            relevant.setdefault(f"q{parts[0]}", []).append(f"d{parts[1]}")
    qids = sorted((q for q in queries if relevant.get(q) and queries[q]), key=lambda q: int(q[1:]))
    rng = random.Random(seed)
    shuffled = rng.sample(qids, len(qids))
    train_q, test_q = sorted(shuffled[:n_train], key=lambda q: int(q[1:])), sorted(shuffled[n_train:],
                                                                                    key=lambda q: int(q[1:]))

    def make(ids: List[str]) -> EmbeddingQAFinetuneDataset:
        return EmbeddingQAFinetuneDataset(queries={q: queries[q] for q in ids}, corpus=corpus,
                                          relevant_docs={q: sorted(set(relevant[q])) for q in ids}, query_source="user")

    return make(train_q), make(test_q)


def load_cranfield() -> Tuple[EmbeddingQAFinetuneDataset, EmbeddingQAFinetuneDataset]:
    """(train, test) of the ``cranfield`` matrix set, from the cache or converted from the files (then cached)."""
    read, where = cranfield_reader()
    h = hashlib.sha256(f"{_FORMAT}:{CRANFIELD_TRAIN}:{SPLIT_SEED}".encode())
    for name in CRANFIELD_FILES:
        h.update(read(name).encode("utf-8"))
    path = CACHE / f"cranfield-{h.hexdigest()[:16]}.json"
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        return EmbeddingQAFinetuneDataset(**data["train"]), EmbeddingQAFinetuneDataset(**data["test"])
    train, test = convert_cranfield(read)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"source": where, "train": train.model_dump(), "test": test.model_dump()}), "utf-8")
    os.replace(tmp, path)
    logger.info("cranfield: converted from %s (%d documents, %d train / %d test questions) into %s", where,
                len(train.corpus), len(train.queries), len(test.queries), path.name)
    return train, test
