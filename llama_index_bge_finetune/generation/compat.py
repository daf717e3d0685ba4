"""Drop-in for llama-index-finetuning's ``generate_qa_embedding_pairs``, built on :class:`QuestionGenerator`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

from llama_index.core.llms import LLM
from llama_index.core.schema import BaseNode

from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
from llama_index_bge_finetune.errors import GenerationError
from llama_index_bge_finetune.generation.batch_api import BatchQuestionGenerator
from llama_index_bge_finetune.generation.llm_generator import DEFAULT_MAX_IN_FLIGHT, QuestionGenerator
from llama_index_bge_finetune.generation.prompts import DEFAULT_QA_GENERATE_PROMPT_TMPL

logger = logging.getLogger(__name__)


def generate_qa_embedding_pairs(
    nodes: Sequence[BaseNode],
    llm: Optional[LLM] = None,
    qa_generate_prompt_tmpl: str = DEFAULT_QA_GENERATE_PROMPT_TMPL,
    num_questions_per_chunk: int = 2,
    retry_limit: int = 3,
    on_failure: str = "continue",
    save_every: int = 500,
    output_path: str = "qa_finetune_dataset.json",
    verbose: bool = True,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    use_batch_api: bool = False,
    batch_poll_interval: float = 30.0,
) -> EmbeddingQAFinetuneDataset:
    """Generate questions for ``nodes`` and save the dataset to ``output_path``; returns it.

    Same arguments and return type as ``llama_index.finetuning.generate_qa_embedding_pairs``,
    but requests run concurrently (``max_in_flight``), failures are retried with back-off, and
    every finished node is checkpointed at once to ``<output_path>.checkpoint.jsonl``, keyed by
    its text, prompt and model. The returned dataset holds exactly the given nodes, so calling
    it for train and then for validation with the default ``output_path`` no longer returns
    the train questions as validation data (llama-index-finetuning resumes by position from
    the output file and does); the val run finds none of its texts in the checkpoint.

    Args:
        retry_limit: retries per node (``max_retries``).
        on_failure: ``"continue"`` keeps going and logs failed nodes; ``"fail"`` raises
            :class:`GenerationError` naming them after the run (finished nodes stay checkpointed).
        save_every: accepted for compatibility; every node is checkpointed as it finishes.
        verbose: log a one-line summary at INFO level (else at DEBUG).
        use_batch_api: send the requests through OpenAI's Batch API (half the price; blocks until
            the batch is done, within 24 h; ``llm`` must be llama-index's ``OpenAI``). The batch id is
            kept beside the checkpoint, so a rerun after a stop waits for it instead of submitting again.
            ``retry_limit`` and ``max_in_flight`` do not apply.
        batch_poll_interval: seconds between two status checks of the batch (``use_batch_api``).

    Example::

        from llama_index.llms.openai import OpenAI
        from llama_index_bge_finetune import generate_qa_embedding_pairs

        train = generate_qa_embedding_pairs(train_nodes, llm=OpenAI(model="gpt-4o-mini"), output_path="train.json")
        val = generate_qa_embedding_pairs(val_nodes, llm=OpenAI(model="gpt-4o-mini"), output_path="val.json")
    """
    if on_failure not in ("continue", "fail"):
        raise GenerationError(f"on_failure must be 'continue' or 'fail', got {on_failure!r}.")
    del save_every  # every node is checkpointed as soon as it is done
    generator: QuestionGenerator
    if use_batch_api:
        generator = BatchQuestionGenerator(llm=llm, num_questions_per_chunk=num_questions_per_chunk,
                                           qa_generate_prompt_tmpl=qa_generate_prompt_tmpl,
                                           poll_interval=batch_poll_interval)
    else:
        generator = QuestionGenerator(
            llm=llm,
            num_questions_per_chunk=num_questions_per_chunk,
            qa_generate_prompt_tmpl=qa_generate_prompt_tmpl,
            max_in_flight=max_in_flight,
            max_retries=retry_limit,
        )
    out = Path(output_path)
    result = generator.generate(nodes, checkpoint_path=out.with_name(out.name + ".checkpoint.jsonl"))
    if out.is_file():
        logger.info("Replacing %s with the dataset of the %d nodes given.", out, len(result.dataset.corpus))
    result.dataset.save_json(out)
    logger.log(
        logging.INFO if verbose else logging.DEBUG,
        "%d questions for %d nodes saved to %s (%s; %d nodes failed).",
        len(result.dataset.queries), len(result.dataset.corpus), out, result.usage.summary(), len(result.failures),
    )
    if result.failures and on_failure == "fail":
        sample = "; ".join(f"{f.node_id}: {f.reason}" for f in result.failures[:3])
        raise GenerationError(
            f"{len(result.failures)} nodes got no questions (e.g. {sample}). Rerun to retry only those "
            "(finished nodes are checkpointed), or pass on_failure='continue'."
        )
    return result.dataset
