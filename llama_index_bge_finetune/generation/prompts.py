"""The question-writing prompt and its validation."""

from __future__ import annotations

from llama_index_bge_finetune.errors import GenerationError

DEFAULT_QA_GENERATE_PROMPT_TMPL = """\
Below is a passage from a collection of documents.

---------------------
{context_str}
---------------------

Write {num_questions_per_chunk} questions that a real user of this document collection \
would type into a search box, each of which this passage alone answers.
- Ask about the facts, definitions, procedures or reasons the passage gives; cover different points.
- Paraphrase as a user would; do not copy sentences from the passage.
- Never mention "the passage", "the text", "the context" or "the author".
Reply with the questions only, one per line, numbered 1., 2., and so on.
"""


def check_prompt_template(template: str) -> str:
    """Return ``template`` if it formats with ``context_str`` and ``num_questions_per_chunk``.

    Raises:
        GenerationError: the template lacks ``{context_str}`` or uses another placeholder.
    """
    if not isinstance(template, str) or "{context_str}" not in template:
        raise GenerationError(
            "The question prompt template must contain the placeholder {context_str} (where the "
            "passage goes) and may contain {num_questions_per_chunk}; double any other braces."
        )
    try:
        template.format(context_str="x", num_questions_per_chunk=2)
    except (KeyError, IndexError, ValueError) as exc:
        raise GenerationError(
            f"The question prompt template does not format ({exc!r}): only {{context_str}} and "
            "{num_questions_per_chunk} may appear in braces; write literal braces as {{ and }}."
        ) from exc
    return template

# A shorter prompt that small local models (SmolLM2-135M) follow; larger models do better with the default.
SIMPLE_QA_GENERATE_PROMPT_TMPL = """\
Below is a passage.
---------------------
{context_str}
---------------------
Write {num_questions_per_chunk} questions that this passage answers. \
Reply with the questions only, one per line, numbered.
"""
