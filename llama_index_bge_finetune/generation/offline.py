"""Pseudo-queries drawn from the passages themselves: no LLM, no server, milliseconds per node."""

from __future__ import annotations

import hashlib
import logging
import random
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from llama_index.core.schema import BaseNode

from llama_index_bge_finetune.errors import GenerationError
from llama_index_bge_finetune.generation._common import build_dataset, node_text, skip_empty, unique_nodes
from llama_index_bge_finetune.generation.checkpoint import Checkpoint, entry_key
from llama_index_bge_finetune.generation.llm_generator import ProgressCallback
from llama_index_bge_finetune.generation.result import GenerationResult, NodeFailure, Usage

logger = logging.getLogger(__name__)

METHODS = ("ict", "title", "title_ict")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")
_TITLE_KEYS = ("title", "document_title", "section_title", "header", "heading", "file_name")


def split_sentences(text: str) -> List[str]:
    """Sentences of ``text`` (a plain regex splitter: fast and good enough for pseudo-queries)."""
    out: List[str] = []
    for block in re.split(r"\n\s*\n", text):
        out.extend(s.strip() for s in _SENTENCE_END.split(" ".join(block.split())) if s.strip())
    return out


def node_title(node: BaseNode) -> Optional[str]:
    """A title for the node: a metadata title, else a short first line that reads like a heading."""
    for key in _TITLE_KEYS:
        value = node.metadata.get(key) if node.metadata else None
        if isinstance(value, str) and value.strip():
            title = value.strip()
            if key == "file_name":
                title = re.sub(r"[_-]+", " ", title.rsplit(".", 1)[0])
            return title
    first = node_text(node).strip().split("\n", 1)[0].strip().lstrip("#").strip()
    if 2 <= len(first.split()) <= 12 and not first.endswith((".", ",", ";", ":")):
        return first
    return None


class OfflineQuestionGenerator:
    """Makes pseudo-queries from each passage, with no LLM: for offline runs and private corpora.

    Methods (``method``):

    - ``"ict"`` (default): inverse cloze task: sentences of the passage become its queries
      (the passage is kept whole, so it still contains the sentence).
    - ``"title"``: the node's title (metadata ``title``/``file_name``, or a heading-like first
      line) is one query; nodes without a title get none, and chunks of one file share it.
    - ``"title_ict"``: the title first, then ICT sentences up to ``num_questions_per_chunk``.

    Measured by fine-tuning MiniLM on 1,000 SciFact pseudo-queries and scoring nDCG@10 on
    SciFact's 300 human test queries (base 0.6451): title 0.6408, ict 0.6397, title_ict 0.6366
    (``benchmarks/RESULTS.md``). No offline method beat the base model there; ``"ict"`` is the
    default because it is within noise of the best and, unlike titles, works on any text.
    For real gains use LLM-written questions (:class:`QuestionGenerator`) or live user queries
    (:class:`QueryLogRecorder`). The dataset is tagged ``query_source="pseudo"``.

    Args:
        num_questions_per_chunk: queries per node (at most).
        method: one of ``"ict"``, ``"title"``, ``"title_ict"``.
        min_words / max_words: sentence lengths accepted as ICT queries.
        seed: picks which sentences become queries (stable per node text).

    Example::

        from llama_index.core.schema import TextNode
        from llama_index_bge_finetune.generation import OfflineQuestionGenerator

        nodes = [TextNode(text="Lists are mutable. Tuples are immutable sequences of objects.")]
        result = OfflineQuestionGenerator(num_questions_per_chunk=1).generate(nodes)
        print(result.dataset.queries)
    """

    query_source = "pseudo"

    def __init__(
        self,
        num_questions_per_chunk: int = 2,
        method: str = "ict",
        min_words: int = 4,
        max_words: int = 40,
        seed: int = 0,
    ) -> None:
        if method not in METHODS:
            raise GenerationError(f"Unknown offline method {method!r}; choose one of {', '.join(METHODS)}.")
        if not isinstance(num_questions_per_chunk, int) or num_questions_per_chunk < 1:
            raise GenerationError(f"num_questions_per_chunk must be a positive integer, got {num_questions_per_chunk!r}.")
        if not 1 <= min_words <= max_words:
            raise GenerationError(f"Need 1 <= min_words <= max_words, got {min_words} and {max_words}.")
        self.num_questions_per_chunk = num_questions_per_chunk
        self.method = method
        self.min_words = min_words
        self.max_words = max_words
        self.seed = seed

    def describe(self) -> str:
        """A short label for the CLI."""
        return f"offline pseudo-queries ({self.method}, no LLM)"

    @property
    def _config(self) -> str:
        return f"offline:{self.method}:{self.min_words}:{self.max_words}:{self.seed}"

    def questions_for(self, node: BaseNode) -> List[str]:
        """The pseudo-queries of one node (deterministic)."""
        text = node_text(node)
        out: List[str] = []
        if self.method in ("title", "title_ict"):
            title = node_title(node)
            if title:
                out.append(title)
        if self.method in ("ict", "title_ict"):
            candidates = [s for s in split_sentences(text) if self.min_words <= len(s.split()) <= self.max_words]
            digest = hashlib.sha256(f"{self.seed}\x00{text}".encode()).digest()
            random.Random(digest).shuffle(candidates)
            out.extend(candidates)
        return list(dict.fromkeys(out))[: self.num_questions_per_chunk]

    def generate(
        self,
        nodes: Sequence[BaseNode],
        checkpoint_path: Optional[Union[str, Path]] = None,
        on_progress: Optional[ProgressCallback] = None,
    ) -> GenerationResult:
        """Pseudo-queries for ``nodes``; a checkpoint, if given, records them like the LLM generator's."""
        pairs, skipped = skip_empty(unique_nodes(nodes))
        by_id = {n.node_id: n for n in nodes}
        questions: Dict[str, List[str]] = {}
        usage = Usage(model=self._config)
        ckpt = Checkpoint(checkpoint_path, fsync=False) if checkpoint_path is not None else None
        total = len(pairs)
        try:
            for done, (node_id, text) in enumerate(pairs, 1):
                key = entry_key(text, self._config, "offline", self.num_questions_per_chunk)
                cached = ckpt.get(key) if ckpt else None
                if cached is not None:
                    questions[node_id] = list(cached["questions"])
                    usage.cached_nodes += 1
                else:
                    questions[node_id] = self.questions_for(by_id[node_id])
                    if ckpt is not None and questions[node_id]:
                        ckpt.append(key, {"questions": questions[node_id], "model": self._config})
                if on_progress and (done % 256 == 0 or done == total):
                    on_progress(done, total)
        finally:
            if ckpt is not None:
                ckpt.close()
        reason = f"no title and no sentence of {self.min_words}-{self.max_words} words to use as a query"
        failures = [NodeFailure(node_id=n, reason=reason) for n, q in questions.items() if not q] + skipped
        if failures:
            logger.info("%d of %d nodes got no pseudo-query (%s).", len(failures), total, reason)
        dataset = build_dataset(pairs, questions, self.query_source)
        return GenerationResult(dataset=dataset, failures=failures, usage=usage)

    async def agenerate(
        self,
        nodes: Sequence[BaseNode],
        checkpoint_path: Optional[Union[str, Path]] = None,
        on_progress: Optional[ProgressCallback] = None,
    ) -> GenerationResult:
        """Same as :meth:`generate` (the work is CPU-only and fast)."""
        return self.generate(nodes, checkpoint_path=checkpoint_path, on_progress=on_progress)
