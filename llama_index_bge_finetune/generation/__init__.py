"""Question generation: LLM (async, resumable), offline pseudo-queries, and LlamaIndex components."""

from llama_index_bge_finetune.generation.llm_generator import QuestionGenerator
from llama_index_bge_finetune.generation.offline import OfflineQuestionGenerator
from llama_index_bge_finetune.generation.parsing import parse_questions
from llama_index_bge_finetune.generation.prompts import DEFAULT_QA_GENERATE_PROMPT_TMPL
from llama_index_bge_finetune.generation.result import GenerationResult, NodeFailure, Usage

__all__ = [
    "DEFAULT_QA_GENERATE_PROMPT_TMPL",
    "GenerationResult",
    "NodeFailure",
    "OfflineQuestionGenerator",
    "QuestionGenerator",
    "Usage",
    "parse_questions",
]
