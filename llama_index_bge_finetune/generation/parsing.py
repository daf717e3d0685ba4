"""Turn an LLM's answer into clean questions.

Handles numbered (``1.``, ``1)``), bulleted, ``Q1:``, bold markdown (``**Question 1:**``),
JSON lists (fenced or not), a preamble line ("Here are 2 questions:") and two questions on
one line; drops non-questions, near-duplicates and questions copied from the passage::

    >>> parse_questions("Here are 2 questions:\\n1. What is X?\\n2. **Why** does Y fail?")
    ['What is X?', 'Why does Y fail?']
"""

from __future__ import annotations

import json
import re
from typing import Iterable, List, Optional

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_MARKER = re.compile(
    r"^\s*(?:[-*\u2022+>]\s+|\(?\d{1,3}\s*[\).:\]-]\s*|#+\s*|q\s*\d{0,3}\s*[:.)-]\s*|question\s*\d{0,3}\s*[:.)-]\s*)",
    re.I,
)
_SPLIT = re.compile(r"(?<=\?)\s+(?=(?:\d{1,3}[.)]\s*)?[\"'(]?[A-Z])")
_INTERROGATIVE = re.compile(
    r"^(what|how|why|when|where|which|who|whom|whose|is|are|was|were|do|does|did|can|could|"
    r"should|would|will|in what|for what|to what)\b",
    re.I,
)
_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> List[str]:
    return _WORD.findall(text.lower())


def _json_candidates(text: str) -> Optional[List[str]]:
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("["), body.rfind("]")
    if start < 0 or end <= start:
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end <= start:
            return None
    try:
        data = json.loads(body[start : end + 1])
    except json.JSONDecodeError:
        return None
    if isinstance(data, dict):
        data = next((v for v in data.values() if isinstance(v, list)), None)
    if not isinstance(data, list):
        return None
    out = []
    for item in data:
        if isinstance(item, dict):
            item = item.get("question") or item.get("query") or next(iter(item.values()), "")
        if isinstance(item, str):
            out.append(item)
    return out


def _line_candidates(text: str) -> Iterable[str]:
    text = _FENCE.sub(lambda m: m.group(1), text)
    for line in text.splitlines():
        line = line.replace("**", "").strip()
        for _ in range(3):  # "- 1. Q1: ..." has stacked markers
            stripped = _MARKER.sub("", line, count=1)
            if stripped == line:
                break
            line = stripped.strip()
        yield from _SPLIT.split(line)


def _clean(candidate: str) -> Optional[str]:
    q = re.sub(r"\s+", " ", candidate).strip().strip("\"'`[],").strip()
    q = _MARKER.sub("", q, count=1).strip() if _MARKER.match(q) else q
    if not q or q.endswith(":"):
        return None
    if not q.endswith("?"):
        if not _INTERROGATIVE.match(q) or q.endswith((".", "!")):
            return None
        q += "?"
    if len(_words(q)) < 3:
        return None
    return q


def _near_duplicate(a: List[str], b: List[str], threshold: float = 0.8) -> bool:
    sa, sb = set(a), set(b)
    return bool(sa and sb) and len(sa & sb) / len(sa | sb) >= threshold


def _copies_passage(words: List[str], passage_words: str) -> bool:
    return len(words) >= 4 and f" {' '.join(words)} " in passage_words


def parse_questions(text: str, passage: Optional[str] = None, limit: Optional[int] = None) -> List[str]:
    """Questions found in ``text``, in order, at most ``limit``.

    Args:
        text: the LLM's answer.
        passage: the passage the questions are about; questions that copy it verbatim are dropped.
        limit: keep at most this many questions.
    """
    candidates = _json_candidates(text)
    if not candidates:
        candidates = list(_line_candidates(text))
    passage_words = f" {' '.join(_words(passage))} " if passage else ""
    kept: List[str] = []
    kept_words: List[List[str]] = []
    for candidate in candidates:
        q = _clean(candidate)
        if q is None:
            continue
        words = _words(q)
        if passage_words and _copies_passage(words, passage_words):
            continue
        if any(_near_duplicate(words, other) for other in kept_words):
            continue
        kept.append(q)
        kept_words.append(words)
        if limit is not None and len(kept) >= limit:
            break
    return kept
