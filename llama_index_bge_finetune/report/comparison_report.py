"""A comparison that writes its own report: Markdown, JSON, a PNG chart and the HTML report.

This module sits above both the comparison's result types
(:mod:`~llama_index_bge_finetune.evaluation.comparison`) and the writers
(:mod:`~llama_index_bge_finetune.report.markdown`, :mod:`~llama_index_bge_finetune.report.chart`,
:mod:`~llama_index_bge_finetune.report.html_report`),
which read those types and never the reverse.

Example::

    from llama_index_bge_finetune.evaluation import compare_models

    report = compare_models({"base": "BAAI/bge-small-en-v1.5", "fine-tuned": "out/model"}, "val.json")
    print(report.to_markdown())
    report.save("report/")   # report.md, report.json, chart.png, report.html
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import fields
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

from llama_index_bge_finetune import outputs
from llama_index_bge_finetune.evaluation.comparison import ModelComparison
from llama_index_bge_finetune.report.html_report import write_html_report
from llama_index_bge_finetune.report.chart import plot_comparison
from llama_index_bge_finetune.report.markdown import render_markdown

logger = logging.getLogger(__name__)

REPORT_FILES = ("report.md", "report.json", "chart.png", "report.html")
"""The files :meth:`ComparisonReport.save` writes (a folder holding any of them holds a finished report)."""


class ComparisonReport(ModelComparison):
    """A :class:`~llama_index_bge_finetune.evaluation.comparison.ModelComparison` that renders and saves its report.

    :func:`~llama_index_bge_finetune.evaluation.compare_models` returns one; wrap any other
    comparison with :meth:`of`.

    Example::

        from llama_index_bge_finetune.evaluation.comparison import build_comparison
        from llama_index_bge_finetune.report.comparison_report import ComparisonReport

        ComparisonReport.of(build_comparison(results)).save("report/")
    """

    @classmethod
    def of(cls, comparison: ModelComparison) -> "ComparisonReport":
        """The same comparison (sharing its results), able to write its report."""
        if isinstance(comparison, cls):
            return comparison
        return cls(**{f.name: getattr(comparison, f.name) for f in fields(comparison)})

    def to_markdown(self) -> str:
        """The report as Markdown."""
        return render_markdown(self)

    def plot(self, path: Union[str, os.PathLike], metrics: Optional[Sequence[str]] = None) -> Path:
        """Write a PNG bar chart (one group per metric, one bar per model, CI error bars)."""
        return plot_comparison(self, Path(path), metrics)

    def save(self, out_dir: Union[str, os.PathLike], overwrite: bool = False) -> Dict[str, Path]:
        """Write ``report.md``, ``report.json``, ``chart.png`` and ``report.html`` into ``out_dir``; return their paths.

        A report already in ``out_dir`` is replaced only with ``overwrite=True``
        (:class:`~llama_index_bge_finetune.errors.OutputExistsError` otherwise; nothing is written).
        """
        out = Path(out_dir)
        outputs.check_folder(out, overwrite=overwrite, owned=REPORT_FILES, finished=REPORT_FILES,
                             what="an evaluation report (report.md, report.json, chart.png, report.html)",
                             option="out_dir", overwrite_flag="overwrite=True", allow_foreign=True)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"markdown": out / "report.md", "json": out / "report.json", "chart": out / "chart.png"}
        self.plot(paths["chart"])
        paths["json"].write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
        paths["markdown"].write_text(render_markdown(self, chart="chart.png"), encoding="utf-8")
        paths["html"] = write_html_report(self, out / "report.html")
        logger.info("Wrote the evaluation report to %s.", out)
        return paths
