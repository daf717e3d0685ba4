"""Turn the live queries of a running query engine into training data."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.llms import LLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.errors import GenerationError

logger = logging.getLogger(__name__)

DEFAULT_JUDGE_PROMPT = """\
Does the passage below answer the query? Answer with yes or no only.

Query: {query_str}
Passage:
---------------------
{context_str}
---------------------
"""
_NAMESPACE = uuid.UUID("0c1d5f52-2f7e-4b1a-8f5e-7f3b9a2d6c40")


class QueryLogRecorder(BaseNodePostprocessor):
    """Records each live query with the nodes retrieved for it; passes the nodes through unchanged.

    Add it to a query engine's ``node_postprocessors``: every query becomes a training
    question whose relevant passages are the top ``top_k`` retrieved nodes (optionally only
    those an LLM judge calls relevant, and only above ``min_score``). Records are appended to
    ``output_path`` (this package's dataset JSONL, so ``EmbeddingQAFinetuneDataset.from_json``
    reads it) and flushed at once; a restarted app continues the same log. Thread-safe.

    Example::

        from llama_index_bge_finetune.generation import QueryLogRecorder

        recorder = QueryLogRecorder(output_path="query_log.jsonl", top_k=1)
        engine = index.as_query_engine(node_postprocessors=[recorder])
        engine.query("How do I configure logging?")
        recorder.dataset().save_json("user_queries.json")
    """

    output_path: Optional[str] = Field(default=None, description="JSONL log the records are appended to.")
    top_k: int = Field(default=1, ge=1, description="How many top retrieved nodes count as relevant.")
    min_score: Optional[float] = Field(default=None, description="Ignore retrieved nodes scoring below this.")
    judge_llm: Optional[LLM] = Field(
        default=None, exclude=True, description="LLM that keeps only the passages it judges relevant."
    )
    judge_prompt: str = Field(default=DEFAULT_JUDGE_PROMPT, description="Prompt with {query_str} and {context_str}.")

    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _queries: Dict[str, str] = PrivateAttr(default_factory=dict)
    _corpus: Dict[str, str] = PrivateAttr(default_factory=dict)
    _relevant: Dict[str, List[str]] = PrivateAttr(default_factory=dict)
    _file: Any = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        prompt = self.judge_prompt
        if "{query_str}" not in prompt or "{context_str}" not in prompt:
            raise GenerationError("judge_prompt must contain {query_str} and {context_str}.")
        if self.output_path and Path(self.output_path).is_file():
            self._load(Path(self.output_path))

    @classmethod
    def class_name(cls) -> str:
        return "QueryLogRecorder"

    # ------------------------------------------------------------------ postprocessor hook
    def _postprocess_nodes(
        self, nodes: List[NodeWithScore], query_bundle: Optional[QueryBundle] = None
    ) -> List[NodeWithScore]:
        if query_bundle is not None and query_bundle.query_str.strip() and nodes:
            self.record(query_bundle.query_str, nodes)
        return nodes

    # ------------------------------------------------------------------ public
    def record(self, query: str, nodes: List[NodeWithScore]) -> Optional[str]:
        """Record one query and its retrieved nodes; returns the query id, or ``None`` if nothing was kept."""
        kept = [n for n in nodes[: self.top_k] if self.min_score is None or (n.score or 0.0) >= self.min_score]
        texts = {n.node.node_id: n.node.get_content(metadata_mode=MetadataMode.NONE) for n in kept}
        if self.judge_llm is not None:
            texts = {nid: t for nid, t in texts.items() if self._judge(query, t)}
        if not texts:
            return None
        doc_ids = sorted(texts)
        qid = str(uuid.uuid5(_NAMESPACE, query.strip() + "\x00" + "\x00".join(doc_ids)))
        with self._lock:
            if qid in self._queries:
                return qid
            lines = [json.dumps({"kind": "doc", "id": d, "text": t}, ensure_ascii=False)
                     for d, t in texts.items() if self._corpus.get(d) != t]
            lines.append(json.dumps({"kind": "query", "id": qid, "text": query, "relevant_docs": doc_ids}, ensure_ascii=False))
            self._corpus.update(texts)
            self._queries[qid] = query
            self._relevant[qid] = doc_ids
            self._write(lines)
        return qid

    def dataset(self) -> EmbeddingQAFinetuneDataset:
        """Every recorded query so far (``query_source="user"``)."""
        with self._lock:
            used = {d for docs in self._relevant.values() for d in docs}
            return EmbeddingQAFinetuneDataset(
                queries=dict(self._queries),
                corpus={d: t for d, t in self._corpus.items() if d in used},
                relevant_docs={q: list(d) for q, d in self._relevant.items()},
                query_source="user",
            )

    def close(self) -> None:
        """Close the log file (it is flushed after every record anyway)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    # ------------------------------------------------------------------ internals
    def _judge(self, query: str, passage: str) -> bool:
        prompt = self.judge_prompt.format(query_str=query, context_str=passage)
        try:
            answer = self.judge_llm.complete(prompt).text  # type: ignore[union-attr]
        except Exception as exc:  # a failing judge must never break the user's query
            logger.warning("Relevance judge failed (%s: %s); the passage is not recorded.", type(exc).__name__, exc)
            return False
        return answer.strip().lower().lstrip("*\"' ").startswith("yes")

    def _write(self, lines: List[str]) -> None:
        if not self.output_path:
            return
        if self._file is None:
            path = Path(self.output_path)
            path.parent.mkdir(parents=True, exist_ok=True)
            torn = path.is_file() and path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n")
            self._file = open(path, "a", encoding="utf-8")
            if torn:
                self._file.write("\n")
        self._file.write("\n".join(lines) + "\n")
        self._file.flush()

    def _load(self, path: Path) -> None:
        for lineno, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                if rec["kind"] == "doc":
                    self._corpus[rec["id"]] = rec["text"]
                elif rec["kind"] == "query":
                    self._queries[rec["id"]] = rec["text"]
                    self._relevant[rec["id"]] = list(rec["relevant_docs"])
            except (json.JSONDecodeError, KeyError, TypeError):
                logger.warning("Ignoring unreadable line %d of query log %s (torn write?).", lineno, path)
