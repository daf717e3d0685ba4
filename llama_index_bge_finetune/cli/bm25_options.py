"""The BM25 options of ``evaluate``, ``run`` and ``demo``: the BM25 row (and its hybrid) and its tokenisation."""

from __future__ import annotations

from typing import Any, Union

import typer

from llama_index_bge_finetune.errors import EvaluationError

NO_BM25 = typer.Option(False, "--no-bm25", help="Leave the BM25 row out of the report (and, in run and demo, the fine-tuned + bm25 hybrid and its retrieval.json choice).")
BM25_LANGUAGE = typer.Option("english", "--bm25-language", help="Stemmer of the BM25 row: a PyStemmer language (english, german, french, porter, ...) or none for no stemming.")
BM25_STOPWORDS = typer.Option("en", "--bm25-stopwords", help="Stopwords the BM25 row drops: a bm25s list (en, de, fr, es, ...) or none to keep every word.")


def bm25_from_cli(no_bm25: bool, language: str, stopwords: str) -> Union[bool, Any]:
    """False with ``--no-bm25``, else the :class:`~llama_index_bge_finetune.retrieval.bm25.BM25Settings` the flags name.

    Checked here, before any model loads: an unknown language or stopword list is a one-line error.
    """
    if no_bm25:
        return False
    from llama_index_bge_finetune.retrieval.bm25 import BM25Settings

    try:
        return BM25Settings(language=None if language.strip().lower() == "none" else language.strip().lower(),
                            stopwords=None if stopwords.strip().lower() == "none" else stopwords.strip().lower())
    except (TypeError, ValueError) as exc:
        raise EvaluationError(f"--bm25-language {language!r} / --bm25-stopwords {stopwords!r}: {exc} "
                              "(none turns either off; --no-bm25 leaves BM25 out).") from None
