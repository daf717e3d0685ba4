"""Helpers for the generation tests: nodes with distinct texts and the real OpenAI LLM on the local server."""

from __future__ import annotations

from typing import Any, List

from llama_index.core.schema import TextNode

TOPICS = [
    "enzymes", "glaciers", "compilers", "volcanoes", "bacteria", "satellites", "proteins", "tariffs",
    "neurons", "batteries", "hurricanes", "algorithms", "fossils", "vaccines", "turbines", "galaxies",
]


def generation_nodes(n: int, prefix: str = "node") -> List[TextNode]:
    """``n`` nodes with distinct, question-worthy texts and ids ``{prefix}-{i}``."""
    out = []
    for i in range(n):
        a, b = TOPICS[i % len(TOPICS)], TOPICS[(3 * i + 1) % len(TOPICS)]
        text = (
            f"Document {prefix} {i}: {a.capitalize()} interact with {b} through mechanism{i}. "
            f"Researchers measured {a} kinetics in sample{i} and compared them with {b}."
        )
        out.append(TextNode(id_=f"{prefix}-{i}", text=text))
    return out


def local_llm(server: Any, api_key: str = "sk-test-0000", **kwargs: Any):
    """llama-index's real OpenAI LLM class, pointed at the local test server."""
    from llama_index.llms.openai import OpenAI

    return OpenAI(model="gpt-4o-mini", api_base=server.base_url, api_key=api_key, **kwargs)
