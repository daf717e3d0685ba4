"""Pick the question generator: OpenAI when a key is set, else the offline default."""

from __future__ import annotations

import os
from typing import Tuple, Union

from llama_index_bge_finetune.generation.llm_generator import QuestionGenerator
from llama_index_bge_finetune.generation.offline import OfflineQuestionGenerator

Generator = Union[QuestionGenerator, OfflineQuestionGenerator]


def default_generator(num_questions_per_chunk: int = 2, model: str = "gpt-4o-mini") -> Tuple[Generator, str]:
    """``(generator, description)``: llama-index's ``OpenAI(model)`` when ``OPENAI_API_KEY`` is set, else offline.

    The description says which was chosen, for the CLI to print. ``OPENAI_API_BASE`` points
    the OpenAI client at any compatible server.

    Example::

        gen, how = default_generator()
        print("Questions:", how)
        result = gen.generate(nodes)
    """
    if os.environ.get("OPENAI_API_KEY", "").strip():
        from llama_index.llms.openai import OpenAI

        gen: Generator = QuestionGenerator(llm=OpenAI(model=model), num_questions_per_chunk=num_questions_per_chunk)
        return gen, f"OpenAI {model} (OPENAI_API_KEY is set)"
    gen = OfflineQuestionGenerator(num_questions_per_chunk=num_questions_per_chunk)
    return gen, f"{gen.describe()}; set OPENAI_API_KEY for LLM-written questions"
