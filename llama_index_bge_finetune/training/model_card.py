"""The model card (README.md) written into every fine-tuned model folder.

It names the base model, the data size, the hyper-parameters and the evaluation table, and how
to load the model so the saved query instruction is applied. It never holds API keys: only the
engine's own settings are written, and any value that looks like a secret is masked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

_SECRET = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{8,}|api[_-]?key|token|secret|password)", re.I)


def _safe(value: Any) -> str:
    text = str(value)
    return "***" if _SECRET.search(text) else text.replace("|", "\\|").replace("\n", " ")


def render_model_card(
    base_model: str,
    query_instruction: Optional[str],
    data: Mapping[str, Any],
    hyperparameters: Mapping[str, Any],
    training: Mapping[str, Any],
    evaluation: Mapping[str, Mapping[str, float]],
) -> str:
    """The card's markdown.

    Args:
        base_model: the model fine-tuned from.
        query_instruction: the instruction prepended to queries (``None`` if none).
        data: dataset sizes (queries, passages, pairs, pairs with hard negatives).
        hyperparameters: the settings used.
        training: time, steps, examples/s, final loss.
        evaluation: metric table, ``{row name: {metric: value}}``.
    """
    lines = [
        "---",
        "library_name: sentence-transformers",
        "pipeline_tag: sentence-similarity",
        "tags: [sentence-transformers, feature-extraction, llama-index, fine-tuned]",
        "---",
        "",
        "# Fine-tuned embedding model",
        "",
        f"Fine-tuned from `{_safe(base_model)}` with llama-index-bge-finetune on question/passage pairs.",
        "",
        "## Query instruction",
        "",
        (f"Queries are prefixed with `{query_instruction}` (saved as the `query` prompt); passages get no prefix."
         if query_instruction else "No query instruction: queries and passages are encoded as they are."),
        "",
        "## Usage",
        "",
        "```python",
        "from llama_index_bge_finetune import from_finetuned",
        "",
        "embed_model = from_finetuned(\"path/to/this/folder\")  # LlamaIndex, applies the query instruction",
        "",
        "from sentence_transformers import SentenceTransformer",
        "",
        "model = SentenceTransformer(\"path/to/this/folder\")",
        "q = model.encode_query([\"my question\"])  # uses the saved query prompt",
        "d = model.encode_document([\"a passage\"])",
        "```",
        "",
        "## Training data",
        "",
        "| | |",
        "|---|---|",
        *[f"| {_safe(k)} | {_safe(v)} |" for k, v in data.items()],
        "",
        "## Hyper-parameters",
        "",
        "| | |",
        "|---|---|",
        *[f"| {_safe(k)} | {_safe(v)} |" for k, v in hyperparameters.items()],
        "",
        "## Training",
        "",
        "| | |",
        "|---|---|",
        *[f"| {_safe(k)} | {_safe(v)} |" for k, v in training.items()],
        "",
        "## Evaluation",
        "",
    ]
    if evaluation:
        metrics = sorted({m for row in evaluation.values() for m in row})
        lines += ["| model | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
        for name, row in evaluation.items():
            lines.append(f"| {_safe(name)} | " + " | ".join(f"{row[m]:.4f}" if m in row else "" for m in metrics) + " |")
    else:
        lines.append("No evaluation set was given (pass `val_dataset` to the engine to fill this table).")
    return "\n".join(lines) + "\n"


def write_model_card(folder: str, **kwargs: Any) -> Path:
    """Write ``README.md`` into ``folder`` (see :func:`render_model_card` for the arguments)."""
    path = Path(folder) / "README.md"
    path.write_text(render_model_card(**kwargs), encoding="utf-8")
    return path


def card_fields(result: Dict[str, Any]) -> Dict[str, Any]:
    """Floats of a result dict to 4 significant digits for display (a learning rate of 1.5e-4 stays 0.00015)."""
    return {k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in result.items()}
