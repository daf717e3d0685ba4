"""Question generation: LLM (async, resumable), offline pseudo-queries, and LlamaIndex components.

- :class:`QuestionGenerator`: any LlamaIndex LLM, concurrent, retried, checkpointed.
- :class:`BatchQuestionGenerator`: the same through OpenAI's Batch API (half the price, resumable by batch id).
- :class:`OfflineQuestionGenerator`: pseudo-queries from the passages, no LLM.
- :func:`default_generator`: OpenAI when ``OPENAI_API_KEY`` is set, else offline.
- :func:`generate_qa_embedding_pairs`: drop-in for llama-index-finetuning's function.
- :class:`QuestionGenerationTransform`: an ``IngestionPipeline`` step.
- :class:`QueryLogRecorder`: a node postprocessor turning live queries into training data.
"""

from llama_index_bge_finetune.generation.batch_api import BatchQuestionGenerator
from llama_index_bge_finetune.generation.compat import generate_qa_embedding_pairs
from llama_index_bge_finetune.generation.defaults import default_generator
from llama_index_bge_finetune.generation.llm_generator import QuestionGenerator
from llama_index_bge_finetune.generation.offline import OfflineQuestionGenerator
from llama_index_bge_finetune.generation.parsing import parse_questions
from llama_index_bge_finetune.generation.prompts import DEFAULT_QA_GENERATE_PROMPT_TMPL, SIMPLE_QA_GENERATE_PROMPT_TMPL
from llama_index_bge_finetune.generation.query_log import QueryLogRecorder
from llama_index_bge_finetune.generation.result import GenerationResult, NodeFailure, Usage
from llama_index_bge_finetune.generation.transform import QuestionGenerationTransform

__all__ = [
    "BatchQuestionGenerator",
    "DEFAULT_QA_GENERATE_PROMPT_TMPL",
    "GenerationResult",
    "NodeFailure",
    "OfflineQuestionGenerator",
    "QueryLogRecorder",
    "QuestionGenerationTransform",
    "QuestionGenerator",
    "SIMPLE_QA_GENERATE_PROMPT_TMPL",
    "Usage",
    "default_generator",
    "generate_qa_embedding_pairs",
    "parse_questions",
]
