"""What the generated questions look like: the "data" section of the HTML report.

Counts a user needs before trusting a fine-tune: questions per passage, question length,
near-duplicate questions, questions that copy their passage, chunks that got no question (and
why, from the generation failure records), and a sample of questions beside their passage.

Definitions (stated in the report too):

- near-duplicates: questions identical after lower-casing and dropping punctuation, or questions
  of one passage whose word sets overlap by 80% or more (Jaccard);
- copies its passage: 80% or more of the question's three-word sequences occur verbatim in its passage.

Example::

    from llama_index_bge_finetune.report.dataset_profile import profile_dataset

    profile = profile_dataset(queries, corpus, relevant_docs, failures=read_failures("run/failures.jsonl"))
"""

from __future__ import annotations

import json
import logging
import random
import string
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

logger = logging.getLogger(__name__)

NEAR_DUPLICATE_JACCARD = 0.8
COPY_TRIGRAM_SHARE = 0.8
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation + "“”‘’«»–—…¿¡"})


def _words(text: str) -> List[str]:
    """Lower-cased words, punctuation dropped (str.translate: far faster than a regex on long passages)."""
    return str(text).lower().translate(_PUNCTUATION).split()


def _clip(text: str, limit: int) -> str:
    t = " ".join(str(text).split())
    return t[:limit] + ("…" if len(t) > limit else "")


def read_failures(path: Path) -> List[Dict[str, Any]]:
    """The generation failure records of a run (``failures.jsonl``); ``[]`` when the file is absent.

    One JSON object a line: ``{"node_id", "reason", "attempts", "kind": "failed" | "skipped"}``
    (``"chars"`` for skipped, near-empty chunks). Unreadable lines are skipped with a warning.
    """
    if not path.is_file():
        return []
    out: List[Dict[str, Any]] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("Ignoring unreadable line %d of %s.", n, path)
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def near_duplicate_groups(queries: Mapping[str, str], relevant: Mapping[str, Sequence[str]],
                          words: Optional[Mapping[str, List[str]]] = None) -> List[List[str]]:
    """Groups (of two or more query ids) of near-duplicate questions, largest first."""
    parent = {q: q for q in queries}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra

    words = words if words is not None else {q: _words(t) for q, t in queries.items()}
    by_norm: Dict[str, str] = {}
    for q, w in words.items():
        key = " ".join(w)
        if key in by_norm:
            union(by_norm[key], q)
        else:
            by_norm[key] = q
    by_passage: Dict[str, List[str]] = defaultdict(list)
    for q in queries:
        docs = relevant.get(q) or []
        if docs:
            by_passage[docs[0]].append(q)
    for qs in by_passage.values():
        sets = [(q, set(words[q])) for q in qs]
        for i, (a, sa) in enumerate(sets):
            for b, sb in sets[i + 1:]:
                if sa and sb and len(sa & sb) / len(sa | sb) >= NEAR_DUPLICATE_JACCARD:
                    union(a, b)
    groups: Dict[str, List[str]] = defaultdict(list)
    for q in queries:
        groups[find(q)].append(q)
    return sorted((g for g in groups.values() if len(g) > 1), key=len, reverse=True)


def _normalized(text: str) -> str:
    """Words joined by single spaces, with a space at each end (for whole-word substring tests)."""
    return " " + " ".join(_words(text)) + " "


def copies_passage(question: Any, passage: str) -> bool:
    """True when 80% or more of the question's three-word sequences occur verbatim in the passage.

    ``question`` is its text or its words; ``passage`` its text or, to reuse across its questions,
    :func:`_normalized` text (starting with a space).
    """
    q = question if isinstance(question, list) else _words(question)
    if len(q) < 3:
        return False
    hay = passage if passage.startswith(" ") and passage.endswith(" ") else _normalized(passage)
    grams = [f" {a} {b} {c} " for a, b, c in zip(q, q[1:], q[2:])]
    return sum(g in hay for g in grams) / len(grams) >= COPY_TRIGRAM_SHARE


def profile_dataset(
    queries: Mapping[str, str],
    corpus: Mapping[str, str],
    relevant: Mapping[str, Sequence[str]],
    failures: Iterable[Mapping[str, Any]] = (),
    n_chunks: Optional[int] = None,
    source: str = "",
    sample_passages: int = 8,
    seed: int = 0,
    max_listed: int = 20,
) -> Dict[str, Any]:
    """The data section's figures, JSON-able.

    Args:
        queries, corpus, relevant: the questions, their passages and question -> passage ids.
        failures: generation failure records (see :func:`read_failures`).
        n_chunks: chunks the run had in all (chunks beyond ``corpus`` got no question).
        source: which file the questions came from, said in the report.
        sample_passages: passages shown with their questions.
        max_listed: examples listed per finding.
    """
    failures = list(failures)
    per_passage = Counter(d for q in queries for d in (relevant.get(q) or [])[:1])
    no_question = max(0, (n_chunks or 0) - len(per_passage))
    hist = Counter(per_passage.values())
    if no_question:
        hist[0] += no_question
    words = {q: _words(t) for q, t in queries.items()}
    lengths = sorted(len(w) for w in words.values())
    dup_groups = near_duplicate_groups(queries, relevant, words)
    normalized: Dict[str, str] = {}
    copies = []
    for q in queries:
        doc = (relevant.get(q) or [None])[0]
        if doc in corpus:
            if doc not in normalized:
                normalized[doc] = _normalized(corpus[doc])
            if copies_passage(words[q], normalized[doc]):
                copies.append(q)
    reasons = Counter((str(f.get("kind", "failed")), _clip(f.get("reason", ""), 160)) for f in failures)
    rng = random.Random(seed)
    passages = sorted(per_passage)
    picked = rng.sample(passages, min(sample_passages, len(passages)))
    questions_of: Dict[str, List[str]] = defaultdict(list)
    for q, docs in relevant.items():
        if docs and docs[0] in picked and q in queries:
            questions_of[docs[0]].append(queries[q])
    return {
        "source": source,
        "n_questions": len(queries),
        "n_passages_with_questions": len(per_passage),
        "n_chunks": n_chunks,
        "per_passage": [{"questions": n, "passages": c} for n, c in sorted(hist.items())],
        "length": [{"words": w, "questions": c} for w, c in sorted(Counter(lengths).items())],
        "length_stats": {
            "min": lengths[0] if lengths else 0, "median": lengths[len(lengths) // 2] if lengths else 0,
            "max": lengths[-1] if lengths else 0, "mean": sum(lengths) / len(lengths) if lengths else 0.0,
        },
        "near_duplicates": {
            "questions": sum(len(g) for g in dup_groups), "groups": len(dup_groups),
            "examples": [[_clip(queries[q], 200) for q in g[:4]] for g in dup_groups[:max_listed]],
        },
        "copies": {
            "questions": len(copies),
            "examples": [{"question": _clip(queries[q], 200), "passage": _clip(corpus[relevant[q][0]], 300)}
                         for q in copies[:max_listed]],
        },
        "no_question": {
            "chunks": no_question if n_chunks else len({f.get("node_id") for f in failures}),
            "failed": sum(1 for f in failures if f.get("kind", "failed") == "failed"),
            "skipped": sum(1 for f in failures if f.get("kind") == "skipped"),
            "reasons": [{"kind": k, "reason": r, "chunks": c} for (k, r), c in reasons.most_common(max_listed)],
            "examples": [{"node_id": str(f.get("node_id", "")), "kind": str(f.get("kind", "failed")),
                          "reason": _clip(f.get("reason", ""), 200), "attempts": f.get("attempts"),
                          "chars": f.get("chars")} for f in failures[:max_listed * 5]],
        },
        "sample": [{"passage_id": d, "passage": _clip(corpus.get(d, ""), 900), "questions": questions_of[d]}
                   for d in picked],
    }
