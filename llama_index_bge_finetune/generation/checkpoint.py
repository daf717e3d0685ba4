"""A crash-safe JSONL checkpoint of finished nodes, keyed by what produced them.

Each finished node is one line, appended and flushed (and fsynced) as soon as it is done.
The key hashes (node text, prompt template, model, questions per chunk), so rerunning after
a kill generates only what is missing, and changing the prompt or model invalidates only
the entries it must. A torn last line (SIGKILL, power loss) is ignored on load and the
next append starts on a fresh line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

logger = logging.getLogger(__name__)


def entry_key(text: str, prompt_template: str, model: str, num_questions: int) -> str:
    """The checkpoint key of one node: a hash of everything its questions depend on."""
    h = hashlib.sha256()
    for part in (text, prompt_template, model, str(num_questions)):
        h.update(part.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


class Checkpoint:
    """Append-only JSONL store: ``key -> {"questions": [...], "usage": {...}}``.

    Example::

        ckpt = Checkpoint("train.checkpoint.jsonl")
        if "abc" not in ckpt:
            ckpt.append("abc", {"questions": ["What is X?"]})
    """

    def __init__(self, path: Union[str, os.PathLike], fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.entries: Dict[str, Dict[str, Any]] = {}
        self.torn_lines = 0
        self._load()
        self._file: Optional[Any] = None

    def _load(self) -> None:
        if not self.path.is_file():
            return
        with open(self.path, "rb") as f:
            lines: List[bytes] = f.read().split(b"\n")
        for lineno, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                self.entries[rec["key"]] = rec
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
                self.torn_lines += 1
                logger.warning("Ignoring unreadable line %d of checkpoint %s (torn write?).", lineno, self.path)
        if self.entries:
            logger.info("Checkpoint %s holds %d finished nodes.", self.path, len(self.entries))

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def get(self, key: str) -> Optional[Dict[str, Any]]:
        return self.entries.get(key)

    def append(self, key: str, record: Dict[str, Any]) -> None:
        """Store one finished node durably before returning."""
        rec = {"key": key, **record}
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            needs_newline = self.path.is_file() and self.path.stat().st_size > 0 and not self._ends_with_newline()
            self._file = open(self.path, "a", encoding="utf-8")
            if needs_newline:
                self._file.write("\n")
        self._file.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self.entries[key] = rec

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "Checkpoint":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
