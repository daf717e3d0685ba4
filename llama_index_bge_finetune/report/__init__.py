"""Reports: a model comparison as Markdown, JSON, a chart and a self-contained HTML page.

The writers read evaluation results (:mod:`llama_index_bge_finetune.evaluation`) and import no
training or reranking engine. :func:`compare_models` evaluates every model on the same questions
and returns the comparison with its writers::

    from llama_index_bge_finetune.report import compare_models

    cmp = compare_models({"base": "BAAI/bge-small-en-v1.5", "fine-tuned": "out/model"}, "val.json")
    cmp.save("report/")   # report.md, report.json, chart.png, report.html

Names load lazily, so importing this package does not import torch or matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "compare_models": "llama_index_bge_finetune.report.compare",
    "ComparisonReport": "llama_index_bge_finetune.report.comparison_report",
    "REPORT_FILES": "llama_index_bge_finetune.report.comparison_report",
    "render_markdown": "llama_index_bge_finetune.report.markdown",
    "write_html_report": "llama_index_bge_finetune.report.html_report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
