"""LLM-judged cross-encoder data, compatible with llama-index-finetuning's ``dataset_gen`` functions.

:func:`generate_synthetic_queries_over_documents` and :func:`generate_ce_fine_tuning_dataset` take
the peer's arguments and return the peer's outputs (a list of questions; a list of
:class:`~llama_index_bge_finetune.reranking.CrossEncoderFinetuningDatasetSample`), but every LLM call
goes through this package's generator: many requests in flight, retries with back-off (a 429's
``Retry-After`` honoured), a content-keyed checkpoint so a rerun pays only for what is missing,
failures listed instead of dropped silently, and tokens and cost counted. The returned lists carry
``.failures`` and ``.usage``.

Example::

    from llama_index_bge_finetune.reranking import (
        generate_ce_fine_tuning_dataset, generate_synthetic_queries_over_documents,
    )

    questions = generate_synthetic_queries_over_documents(documents, num_questions_per_chunk=3, llm=llm)
    samples = generate_ce_fine_tuning_dataset(documents, questions, llm=llm, top_k=8,
                                              checkpoint_path="judge.checkpoint.jsonl")
    print(samples.usage.summary(), samples.failures)
"""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

from llama_index.core.schema import Document, TextNode

from llama_index_bge_finetune.generation.llm_generator import QuestionGenerator
from llama_index_bge_finetune.generation.result import NodeFailure, Usage
from llama_index_bge_finetune.reranking.dataset import CrossEncoderFinetuningDatasetSample

logger = logging.getLogger(__name__)
_NAMESPACE = uuid.UUID("9d3f6c1e-2b7a-4c55-8e0f-6a1d2c3b4e5f")

PathLike = Union[str, Path]

# The peer's prompts (llama-index-finetuning 0.4.2), so both generate the same questions.
DEFAULT_QUERY_GEN_SYSTEM_PROMPT = """You are Albert a Professor proficient in {qa_topic}.
You are working on creating {num_questions_per_chunk} questions.
You provide the questions such that such that each separate is separated by a semicolon ';' so that different questions can be easily separated by the python split function"""

DEFAULT_QUERY_GEN_USER_PROMPT = """Take a deep breath, read through the below provided document and then create {num_questions_per_chunk} questions and respond with the created questions such that each separate question is separated by a semicolon ';' so that different questions can be easily separated by the python split function.
Document: {context}"""

# A judge prompt with the same placeholders as the peer's ({query}, {document}); shorter (no
# few-shot examples, so about a tenth of the prompt tokens per judgment) and explicit about the answer.
DEFAULT_QUERY_DOC_RELEVANCE_PROMPT = """You judge search results. Is the document relevant to the query, \
that is, does it help answer it?
Query: {query}
Document:
---------------------
{document}
---------------------
Answer yes or no, one word.
Relevant:"""


class JudgedSamples(List[CrossEncoderFinetuningDatasetSample]):
    """The judged samples (a list, as the peer returns), with ``failures`` and ``usage`` of the run."""

    failures: List[NodeFailure]
    usage: Usage


class QuestionList(List[str]):
    """The generated questions (a list, as the peer returns), with ``failures`` and ``usage`` of the run."""

    failures: List[NodeFailure]
    usage: Usage


class RelevanceJudge(QuestionGenerator):
    """Asks an LLM whether a passage is relevant to a query; answers parsed as ``["yes"]`` or ``["no"]``.

    Each judgment is one "node" of the generator whose text is the filled-in prompt, so the
    generator's concurrency, retries, checkpoint and accounting apply unchanged.
    """

    def _parse_answer(self, answer: str, text: str) -> List[str]:
        return parse_judgment(answer)


class _PeerQuestionGenerator(QuestionGenerator):
    """Questions split on ``;`` and new lines, as the peer parses its prompt's answers."""

    def _parse_answer(self, answer: str, text: str) -> List[str]:
        parts = [re.sub(r"^\s*(?:\d+[.)]|[-*])\s*", "", p).strip() for p in re.split(";|\n", answer or "")]
        return [p for p in parts if p][: self.num_questions_per_chunk]


def parse_judgment(answer: str) -> List[str]:
    """``["yes"]``, ``["no"]`` or ``[]`` (unusable, retried) from a judge's answer such as ``"Yes."``."""
    words = re.findall(r"[a-z]+", (answer or "").lower())
    if not words:
        return []
    if words[0] in ("yes", "no"):
        return [words[0]]
    found = {w for w in words[:8] if w in ("yes", "no")}
    return [found.pop()] if len(found) == 1 else []


def _split(documents: Sequence[Document], max_chunk_length: int) -> List[Any]:
    from llama_index.core import get_tokenizer
    from llama_index.core.node_parser import TokenTextSplitter

    parser = TokenTextSplitter(separator=" ", chunk_size=max_chunk_length, chunk_overlap=0, backup_separators=["\n"],
                               tokenizer=get_tokenizer())
    nodes = parser.get_nodes_from_documents(documents, show_progress=False)
    for i, node in enumerate(nodes):  # stable ids: a rerun retrieves (and resumes) exactly the same pairs
        node.id_ = str(uuid.uuid5(_NAMESPACE, f"{node.ref_doc_id}\x00{i}\x00{node.get_content()}"))
    return nodes


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def generate_synthetic_queries_over_documents(
    documents: List[Document],
    num_questions_per_chunk: int = 5,
    max_chunk_length: int = 3000,
    qa_topic: str = "everything",
    llm: Optional[Any] = None,
    qa_generate_system_msg: str = DEFAULT_QUERY_GEN_SYSTEM_PROMPT,
    qa_generate_user_msg: str = DEFAULT_QUERY_GEN_USER_PROMPT,
    *,
    checkpoint_path: Optional[PathLike] = None,
    max_in_flight: int = 16,
    **generator_kwargs: Any,
) -> QuestionList:
    """Questions over the documents' chunks, as llama-index-finetuning's function of the same name.

    The first seven arguments are the peer's. ``checkpoint_path`` makes a rerun resume;
    ``max_in_flight`` and ``generator_kwargs`` (``timeout``, ``max_retries``, ...) go to
    :class:`~llama_index_bge_finetune.generation.QuestionGenerator`.
    """
    nodes = _split(documents, max_chunk_length)
    system = qa_generate_system_msg.format(num_questions_per_chunk=num_questions_per_chunk, qa_topic=qa_topic)
    user = _escape(qa_generate_user_msg).replace("{{context}}", "{context_str}").replace(
        "{{num_questions_per_chunk}}", "{num_questions_per_chunk}")
    template = _escape(system) + "\n\n" + user
    gen = _PeerQuestionGenerator(llm=llm, num_questions_per_chunk=num_questions_per_chunk, qa_generate_prompt_tmpl=template,
                                 max_in_flight=max_in_flight, **generator_kwargs)
    result = gen.generate(nodes, checkpoint_path=checkpoint_path)
    by_node = {}
    for qid, docs in result.dataset.relevant_docs.items():
        by_node.setdefault(docs[0], []).append(result.dataset.queries[qid])
    out = QuestionList(q for node in nodes for q in by_node.get(node.node_id, []))
    out.failures, out.usage = result.failures, result.usage
    if result.failures:
        logger.warning("%d of %d chunks got no questions (see .failures).", len(result.failures), len(nodes))
    return out


def generate_ce_fine_tuning_dataset(
    documents: List[Document],
    questions_list: List[str],
    max_chunk_length: int = 1000,
    llm: Optional[Any] = None,
    qa_doc_relevance_prompt: str = DEFAULT_QUERY_DOC_RELEVANCE_PROMPT,
    top_k: int = 8,
    *,
    embed_model: Optional[Any] = None,
    checkpoint_path: Optional[PathLike] = None,
    max_in_flight: int = 16,
    **generator_kwargs: Any,
) -> JudgedSamples:
    """Retrieve ``top_k`` chunks per question and let an LLM judge each one relevant (1) or not (0).

    The first six arguments are llama-index-finetuning's (its cookbook prompt works too: any
    template with ``{query}`` and ``{document}``). Samples come in question order, each question's
    chunks in retrieval order, with the retriever's similarity as ``first_stage_score``; a pair
    whose answer stays unusable after the retries is listed in ``.failures`` instead.

    Args:
        embed_model: the retriever's embedding model (``None``: ``Settings.embed_model``, as the peer).
        checkpoint_path: JSONL checkpoint; a rerun asks only for judgments it does not hold.
        max_in_flight: judgments requested at once; ``generator_kwargs`` (``timeout``,
            ``max_retries``, ...) go to :class:`RelevanceJudge`.
    """
    from llama_index.core import VectorStoreIndex

    if "{query}" not in qa_doc_relevance_prompt or "{document}" not in qa_doc_relevance_prompt:
        from llama_index_bge_finetune.errors import GenerationError

        raise GenerationError("qa_doc_relevance_prompt must contain {query} and {document}.")
    nodes = _split(documents, max_chunk_length)
    index = VectorStoreIndex(nodes, embed_model=embed_model) if embed_model is not None else VectorStoreIndex(nodes)
    retriever = index.as_retriever(similarity_top_k=top_k)
    pairs: List[Tuple[str, str, Optional[float]]] = []
    for question in questions_list:
        if question.strip():
            pairs.extend((question, n.get_text(), n.score) for n in retriever.retrieve(question))
    judge_nodes = [TextNode(id_=f"pair-{i}", text=qa_doc_relevance_prompt.format(query=q, document=d))
                   for i, (q, d, _) in enumerate(pairs)]
    judge = RelevanceJudge(llm=llm, num_questions_per_chunk=1, qa_generate_prompt_tmpl="{context_str}",
                           max_in_flight=max_in_flight, **generator_kwargs)
    result = judge.generate(judge_nodes, checkpoint_path=checkpoint_path)
    verdict = {docs[0]: result.dataset.queries[qid] for qid, docs in result.dataset.relevant_docs.items()}
    out = JudgedSamples(
        CrossEncoderFinetuningDatasetSample(query=q, context=d, score=1 if verdict[f"pair-{i}"] == "yes" else 0,
                                            first_stage_score=s)
        for i, (q, d, s) in enumerate(pairs) if f"pair-{i}" in verdict
    )
    out.failures, out.usage = result.failures, result.usage
    logger.info("Judged %d of %d (question, chunk) pairs: %d relevant; %s.", len(out), len(pairs),
                sum(1 for s in out if s.score == 1), result.usage.summary())
    return out
