"""Helpers shared by the generators: node text, stable query ids, dataset assembly, sync runner."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import uuid
from typing import Any, Coroutine, Dict, List, Sequence, Tuple, TypeVar

from llama_index.core.schema import BaseNode, MetadataMode

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.errors import GenerationError

logger = logging.getLogger(__name__)
T = TypeVar("T")
_ALNUM = re.compile(r"[^\W_]")
_NAMESPACE = uuid.UUID("5b0c7f3e-6a43-4f0c-9d51-0b9e1e3f8a11")


def node_text(node: BaseNode) -> str:
    """The passage text of a node, without metadata (as llama-index-finetuning stores it)."""
    return node.get_content(metadata_mode=MetadataMode.NONE)


def unique_nodes(nodes: Sequence[BaseNode]) -> List[Tuple[str, str]]:
    """(node id, text) pairs, refusing two different texts under one id."""
    if isinstance(nodes, (str, bytes)) or not hasattr(nodes, "__iter__"):
        raise GenerationError(f"Pass a list of LlamaIndex nodes, not a {type(nodes).__name__}.")
    seen: Dict[str, str] = {}
    for node in nodes:
        if not isinstance(node, BaseNode):
            raise GenerationError(
                f"Expected LlamaIndex nodes (TextNode), got a {type(node).__name__}; split documents "
                "into nodes first, e.g. SentenceSplitter().get_nodes_from_documents(docs)."
            )
        text = node_text(node)
        if node.node_id in seen and seen[node.node_id] != text:
            raise GenerationError(f"Two different nodes share the id {node.node_id!r}; give nodes unique ids.")
        seen[node.node_id] = text
    return list(seen.items())


MIN_NODE_CHARS = 20
"""A node with fewer letters and digits than this is near-empty: skipped, never sent to an LLM."""


def skip_empty(pairs: Sequence[Tuple[str, str]]) -> Tuple[List[Tuple[str, str]], List[Any]]:
    """(pairs worth asking about, a ``kind="skipped"`` :class:`NodeFailure` for each empty or near-empty one)."""
    from llama_index_bge_finetune.generation.result import NodeFailure

    kept: List[Tuple[str, str]] = []
    skipped: List[Any] = []
    for node_id, text in pairs:
        if not _has_enough_text(text):
            skipped.append(NodeFailure(node_id=node_id, attempts=0, kind="skipped", chars=len(text.strip()),
                                       reason=f"empty or near-empty (fewer than {MIN_NODE_CHARS} letters or digits)"))
        else:
            kept.append((node_id, text))
    if skipped:
        logger.info("Skipped %d empty or near-empty nodes (not sent to the LLM).", len(skipped))
    return kept, skipped


def _has_enough_text(text: str) -> bool:
    for n, _ in enumerate(_ALNUM.finditer(text), 1):
        if n >= MIN_NODE_CHARS:
            return True
    return False


def query_id(node_id: str, index: int, question: str) -> str:
    """A stable query id, so a resumed run and an uninterrupted one produce identical datasets."""
    return str(uuid.uuid5(_NAMESPACE, f"{node_id}\x00{index}\x00{question}"))


def build_dataset(
    pairs: Sequence[Tuple[str, str]], questions: Dict[str, List[str]], query_source: str
) -> EmbeddingQAFinetuneDataset:
    """The dataset over the nodes that got questions, in input order."""
    queries: Dict[str, str] = {}
    corpus: Dict[str, str] = {}
    relevant: Dict[str, List[str]] = {}
    for node_id, text in pairs:
        qs = questions.get(node_id)
        if not qs:
            continue
        corpus[node_id] = text
        for i, q in enumerate(qs):
            qid = query_id(node_id, i, q)
            queries[qid] = q
            relevant[qid] = [node_id]
    return EmbeddingQAFinetuneDataset(queries=queries, corpus=corpus, relevant_docs=relevant, query_source=query_source)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion, also from inside a running event loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
