"""The question/passage dataset: llama-index compatible JSON, JSONL, split, merge, validate.

:class:`EmbeddingQAFinetuneDataset` has the same fields, JSON layout and methods
(``save_json``, ``from_json``, ``query_docid_pairs``) as llama-index-finetuning's class
of the same name, so a file written by either loads in the other::

    from llama_index_bge_finetune import EmbeddingQAFinetuneDataset

    ds = EmbeddingQAFinetuneDataset(
        queries={"q1": "What is a list comprehension?"},
        corpus={"n1": "List comprehensions provide a concise way to create lists."},
        relevant_docs={"q1": ["n1"]},
    )
    ds.save_json("train.json")
    train, val = EmbeddingQAFinetuneDataset.from_json("train.json").split(val_fraction=0.2, seed=0)
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from pydantic import BaseModel, Field

from llama_index_bge_finetune.errors import DatasetError

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]


class EmbeddingQAFinetuneDataset(BaseModel):
    """Queries, a corpus of passages, and which passages answer each query.

    Args:
        queries: query id -> query text.
        corpus: passage (node) id -> passage text.
        relevant_docs: query id -> ids of the passages that answer it.
        mode: kept for compatibility with llama-index-finetuning; always ``"text"``.
        query_source: how the queries were made (``"llm"``, ``"pseudo"``, ``"user"``, ...);
            reports quote it because pseudo-queries flatter a model trained on pseudo-queries.
    """

    queries: Dict[str, str]
    corpus: Dict[str, str]
    relevant_docs: Dict[str, List[str]]
    mode: str = "text"
    query_source: Optional[str] = Field(default=None, description="How the queries were made.")

    # ----------------------------------------------------------------- compat API
    @property
    def query_docid_pairs(self) -> List[Tuple[str, List[str]]]:
        """(query text, relevant doc ids) for every query, as llama-index-finetuning has it."""
        return [(query, self.relevant_docs.get(qid, [])) for qid, query in self.queries.items()]

    def save_json(self, path: PathLike) -> None:
        """Write the dataset as llama-index ``EmbeddingQAFinetuneDataset`` JSON, atomically."""
        data: Dict[str, Any] = self.model_dump(exclude_none=True)
        _atomic_write(Path(path), json.dumps(data, indent=2, ensure_ascii=False))

    @classmethod
    def from_json(cls, path: PathLike) -> "EmbeddingQAFinetuneDataset":
        """Load a dataset from llama-index JSON (``.json``) or this package's JSONL (``.jsonl``).

        Raises:
            DatasetError: the file is missing, is not valid JSON, or lacks the three fields.
        """
        p = Path(path)
        if not p.is_file():
            raise DatasetError(
                f"Dataset file {p} does not exist. Generate one with `bge-finetune generate` "
                "or pass the path of an EmbeddingQAFinetuneDataset JSON file."
            )
        if p.suffix == ".jsonl":
            return cls.from_jsonl(p)
        try:
            data = json.loads(p.read_text(encoding="utf-8"), object_pairs_hook=_reject_duplicate_keys)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DatasetError(
                f"Dataset file {p} is not valid JSON ({exc}). It should hold an object with "
                "'queries', 'corpus' and 'relevant_docs'; regenerate it or fix the file."
            ) from exc
        return cls.from_dict(data, source=str(p))

    @classmethod
    def from_dict(cls, data: Any, source: str = "dataset") -> "EmbeddingQAFinetuneDataset":
        """Build a dataset from a parsed JSON object, with a clear error when fields are missing."""
        if not isinstance(data, dict):
            raise DatasetError(f"{source} must hold a JSON object, not {type(data).__name__}.")
        missing = [k for k in ("queries", "corpus", "relevant_docs") if k not in data]
        if missing:
            raise DatasetError(
                f"{source} lacks {', '.join(missing)}: an EmbeddingQAFinetuneDataset needs "
                "'queries', 'corpus' and 'relevant_docs'."
            )
        try:
            return cls(**{k: v for k, v in data.items() if k in cls.model_fields})
        except Exception as exc:  # pydantic's ValidationError, reworded
            raise DatasetError(f"{source} has fields of the wrong type: {exc}") from exc

    @classmethod
    def coerce(cls, obj: Any) -> "EmbeddingQAFinetuneDataset":
        """Accept our dataset, llama-index-finetuning's, a dict, or a path to a file."""
        if isinstance(obj, cls):
            return obj
        if isinstance(obj, (str, os.PathLike)):
            return cls.from_json(obj)
        if isinstance(obj, dict):
            return cls.from_dict(obj)
        if all(hasattr(obj, a) for a in ("queries", "corpus", "relevant_docs")):
            return cls(
                queries=dict(obj.queries),
                corpus=dict(obj.corpus),
                relevant_docs={k: list(v) for k, v in obj.relevant_docs.items()},
            )
        raise DatasetError(
            f"Cannot use a {type(obj).__name__} as a dataset: pass an EmbeddingQAFinetuneDataset, "
            "a dict with queries/corpus/relevant_docs, or a path to its JSON file."
        )

    # ----------------------------------------------------------------- JSONL
    def save_jsonl(self, path: PathLike) -> None:
        """Write one JSON record per line: passages first (``kind: doc``), then queries."""
        lines = [json.dumps({"kind": "doc", "id": i, "text": t}, ensure_ascii=False) for i, t in self.corpus.items()]
        lines += [
            json.dumps(
                {"kind": "query", "id": q, "text": t, "relevant_docs": self.relevant_docs.get(q, [])},
                ensure_ascii=False,
            )
            for q, t in self.queries.items()
        ]
        if self.query_source:
            lines.insert(0, json.dumps({"kind": "meta", "query_source": self.query_source}))
        _atomic_write(Path(path), "\n".join(lines) + "\n")

    @classmethod
    def from_jsonl(cls, path: PathLike) -> "EmbeddingQAFinetuneDataset":
        """Load the JSONL layout written by :meth:`save_jsonl`."""
        queries: Dict[str, str] = {}
        corpus: Dict[str, str] = {}
        relevant: Dict[str, List[str]] = {}
        source: Optional[str] = None
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    kind = rec["kind"]
                    if kind == "doc":
                        corpus[str(rec["id"])] = rec["text"]
                    elif kind == "query":
                        if queries.get(str(rec["id"]), rec["text"]) != rec["text"]:
                            raise DatasetError(
                                f"{path}:{lineno} reuses query id {rec['id']!r} for another text; give every "
                                "query its own id (or remove the duplicate line)."
                            )
                        queries[str(rec["id"])] = rec["text"]
                        relevant[str(rec["id"])] = [str(d) for d in rec["relevant_docs"]]
                    elif kind == "meta":
                        source = rec.get("query_source")
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise DatasetError(
                        f"{path}:{lineno} is not a dataset record ({exc}); each line needs "
                        "'kind' (doc or query), 'id' and 'text'."
                    ) from exc
        return cls(queries=queries, corpus=corpus, relevant_docs=relevant, query_source=source)

    # ----------------------------------------------------------------- checks
    def problems(self) -> List[str]:
        """Every inconsistency of the dataset, as readable sentences (empty when it is sound)."""
        out: List[str] = []
        empty_q = [q for q, t in self.queries.items() if not str(t).strip()]
        if empty_q:
            out.append(f"{len(empty_q)} queries are empty (e.g. {empty_q[:3]})")
        empty_d = [d for d, t in self.corpus.items() if not str(t).strip()]
        if empty_d:
            out.append(f"{len(empty_d)} passages are empty (e.g. {empty_d[:3]})")
        no_rel = [q for q in self.queries if not self.relevant_docs.get(q)]
        if no_rel:
            out.append(f"{len(no_rel)} queries have no relevant passage (e.g. {no_rel[:3]})")
        dangling = sorted({d for q in self.queries for d in self.relevant_docs.get(q, []) if d not in self.corpus})
        if dangling:
            out.append(f"{len(dangling)} relevant ids are not in the corpus (e.g. {dangling[:3]})")
        orphans = [q for q in self.relevant_docs if q not in self.queries]
        if orphans:
            out.append(f"{len(orphans)} relevant_docs entries name unknown queries (e.g. {orphans[:3]})")
        dup_rel = [q for q, docs in self.relevant_docs.items() if len(set(docs)) != len(docs)]
        if dup_rel:
            out.append(f"{len(dup_rel)} queries list the same relevant id twice (e.g. {dup_rel[:3]})")
        return out

    def validate_or_raise(self, what: str = "dataset", allow_empty: bool = False) -> "EmbeddingQAFinetuneDataset":
        """Raise :class:`DatasetError` naming every problem found; return the dataset when sound.

        Empty passages that no query points at (a blank PDF page, say) are dropped with one
        warning and a copy without them is returned; an empty passage that a query needs is an error.
        """
        referenced = {d for docs in self.relevant_docs.values() for d in docs}
        unused_empty = [d for d, t in self.corpus.items() if not str(t).strip() and d not in referenced]
        if unused_empty:
            logger.warning("The %s has %d empty passages that no query points at (e.g. %s); dropped them.",
                           what, len(unused_empty), unused_empty[:3])
            dropped = set(unused_empty)
            corpus = {d: t for d, t in self.corpus.items() if d not in dropped}
            return self.model_copy(update={"corpus": corpus}).validate_or_raise(what, allow_empty)
        if not allow_empty and (not self.queries or not self.corpus):
            raise DatasetError(
                f"The {what} is empty ({len(self.queries)} queries, {len(self.corpus)} passages). "
                "Generate questions first (`bge-finetune generate`) or check the input documents."
            )
        found = self.problems()
        if found:
            raise DatasetError(
                f"The {what} is inconsistent: " + "; ".join(found) + ". Fix or regenerate it; "
                "`EmbeddingQAFinetuneDataset.clean()` drops the broken entries."
            )
        return self

    def clean(self) -> "EmbeddingQAFinetuneDataset":
        """A copy without empty queries, dangling ids, duplicate ids and queries with no passage."""
        corpus = {d: t for d, t in self.corpus.items() if str(t).strip()}
        queries: Dict[str, str] = {}
        relevant: Dict[str, List[str]] = {}
        for q, text in self.queries.items():
            docs = list(dict.fromkeys(d for d in self.relevant_docs.get(q, []) if d in corpus))
            if str(text).strip() and docs:
                queries[q] = text
                relevant[q] = docs
        dropped = len(self.queries) - len(queries)
        if dropped:
            logger.warning("Dropped %d of %d queries with no usable relevant passage.", dropped, len(self.queries))
        return self.model_copy(update={"queries": queries, "corpus": corpus, "relevant_docs": relevant})

    # ----------------------------------------------------------------- transforms
    def split(self, val_fraction: float = 0.2, seed: int = 0) -> Tuple["EmbeddingQAFinetuneDataset", "EmbeddingQAFinetuneDataset"]:
        """Split by passage: every passage and all its queries land on one side only.

        A query relevant to passages on both sides goes with its first passage, and the other
        side's passages are removed from its relevant ids, so no passage is on both sides.
        """
        if not 0.0 < val_fraction < 1.0:
            raise DatasetError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}.")
        docs = sorted(self.corpus)
        rng = random.Random(seed)
        rng.shuffle(docs)
        n_val = max(1, round(len(docs) * val_fraction)) if len(docs) > 1 else 0
        val_docs = set(docs[:n_val])
        sides: Dict[bool, Dict[str, Any]] = {
            side: {"queries": {}, "relevant_docs": {}} for side in (False, True)
        }
        for q, text in self.queries.items():
            rel = self.relevant_docs.get(q, [])
            if not rel:
                continue
            side = rel[0] in val_docs
            kept = [d for d in rel if (d in val_docs) == side]
            sides[side]["queries"][q] = text
            sides[side]["relevant_docs"][q] = kept
        train, val = (
            self.model_copy(
                update={
                    "queries": sides[side]["queries"],
                    "relevant_docs": sides[side]["relevant_docs"],
                    "corpus": {d: t for d, t in self.corpus.items() if (d in val_docs) == side},
                }
            )
            for side in (False, True)
        )
        return train, val

    @classmethod
    def merge(cls, datasets: Iterable["EmbeddingQAFinetuneDataset"]) -> "EmbeddingQAFinetuneDataset":
        """Union of datasets; an id used with two different texts is an error."""
        queries: Dict[str, str] = {}
        corpus: Dict[str, str] = {}
        relevant: Dict[str, List[str]] = {}
        sources = set()
        for ds in datasets:
            for target, items, what in ((queries, ds.queries, "query"), (corpus, ds.corpus, "passage")):
                for k, v in items.items():
                    if k in target and target[k] != v:
                        raise DatasetError(f"Cannot merge: {what} id {k!r} has two different texts.")
                    target[k] = v
            for q, docs in ds.relevant_docs.items():
                relevant[q] = list(dict.fromkeys(relevant.get(q, []) + list(docs)))
            sources.add(ds.query_source)
        source = sources.pop() if len(sources) == 1 else "mixed"
        return cls(queries=queries, corpus=corpus, relevant_docs=relevant, query_source=source)

    def stats(self) -> Dict[str, float]:
        """Counts and average lengths (in words), for logs and reports."""
        nq, nd = len(self.queries), len(self.corpus)
        per_doc = Counter(d for q in self.queries for d in self.relevant_docs.get(q, []))
        return {
            "queries": nq,
            "passages": nd,
            "passages_with_queries": len(per_doc),
            "avg_query_words": sum(len(t.split()) for t in self.queries.values()) / nq if nq else 0.0,
            "avg_passage_words": sum(len(t.split()) for t in self.corpus.values()) / nd if nd else 0.0,
        }


def _reject_duplicate_keys(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    """``json.loads`` hook: a repeated id would otherwise silently keep only its last value."""
    seen: Dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DatasetError(
                f"The dataset file uses the id {key!r} twice in one object; give every query and passage "
                "its own id (a hand-merged file? use EmbeddingQAFinetuneDataset.merge)."
            )
        seen[key] = value
    return seen


def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
