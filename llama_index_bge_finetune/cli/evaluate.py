"""``bge-finetune evaluate``: models and a dataset in, a comparison report out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import typer

from llama_index_bge_finetune import pipeline
from llama_index_bge_finetune.cli import bm25_options, options
from llama_index_bge_finetune.cli.table import comparison_table, verdict_lines
from llama_index_bge_finetune.cli.progress import console, results, setup_logging, stage
from llama_index_bge_finetune.encoding.backends import backend_from_cli
from llama_index_bge_finetune.errors import EvaluationError

HELP = """Compare embedding models on a dataset: hit rate, MRR, nDCG, recall, precision, MAP at k,
with bootstrap 95% confidence intervals and a paired test against the first model.

--model takes NAME=MODEL (a folder or hub id); the first is the reference. MODEL `default` is the
default base model; MODEL `bm25` is the BM25 retriever (added by default as the row bm25 after the
models; --no-bm25 leaves it out, --bm25-language and --bm25-stopwords set its tokenisation); MODEL
`openai:NAME` is a hosted embedding model (OpenAI, or any OpenAI-compatible endpoint given by
--api-base or OPENAI_BASE_URL; key from OPENAI_API_KEY), whose cost is printed before any request
and whose vectors are cached on disk, so each text is paid for once. Writes
report.md, report.json, chart.png and report.html to OUTPUT (a report already there is kept unless --overwrite).
With --ray (or RAY_ADDRESS set) the corpus is encoded on a Ray cluster.

--index chooses the top-k search: auto (exact; FAISS above 100,000 passages when installed), exact
(numpy), flat (FAISS exact), or the approximate ivf / hnsw, whose recall@k against exact search the
report shows. FAISS comes with `pip install "llama-index-bge-finetune[scale]"`.

Example: bge-finetune evaluate runs/docs/val_dataset.json --model base=default --model tuned=runs/docs/model --model ada=openai:text-embedding-3-small -o runs/docs/eval
"""


def evaluate(
    dataset: Path = typer.Argument(..., help="Evaluation dataset (EmbeddingQAFinetuneDataset JSON or JSONL)."),
    model: List[str] = typer.Option(..., "--model", "-m", help="NAME=MODEL (a folder, a hub id, or openai:MODEL for a hosted model); repeat to compare several."),
    output: Path = typer.Option("bge-finetune-eval", "--output", "-o", help="Folder for the report."),
    k: List[int] = typer.Option([1, 3, 5, 10], "--k", help="Cut-offs; repeat for several."),
    index: str = typer.Option("auto", "--index", help="Top-k search: auto, exact, flat, ivf or hnsw."),
    overwrite: bool = typer.Option(False, help="Replace a report already in OUTPUT."),
    api_base: Optional[str] = options.API_BASE,
    ray: bool = options.RAY,
    no_bm25: bool = bm25_options.NO_BM25,
    bm25_language: str = bm25_options.BM25_LANGUAGE,
    bm25_stopwords: str = bm25_options.BM25_STOPWORDS,
    verbose: bool = options.VERBOSE,
) -> None:
    setup_logging(verbose)
    from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
    from llama_index_bge_finetune.evaluation.metrics import check_k_values

    from llama_index_bge_finetune.retrieval.search import INDEX_KINDS, check_index

    check_k_values(k)
    if index not in INDEX_KINDS:
        raise EvaluationError(f"--index {index!r} is not one of {', '.join(INDEX_KINDS)}; e.g. --index flat.")
    check_index(index)  # a FAISS search without faiss: refused before any model loads
    pipeline.check_report_output(output, overwrite)  # a file or a finished report: refused before any model loads
    encode_backend = backend_from_cli(ray)
    pipeline.check_encode_backend(encode_backend)
    bm25 = bm25_options.bm25_from_cli(no_bm25, bm25_language, bm25_stopwords)
    models = pipeline.with_bm25(parse_models(model, api_base=api_base), bm25)
    ds = EmbeddingQAFinetuneDataset.from_json(dataset)
    with stage("Evaluating"):
        comparison = pipeline.evaluate_models(models, ds, output, k_values=tuple(k), overwrite=overwrite,
                                              encode_backend=encode_backend, index=index,
                                              bm25_settings=bm25 or None)
    report = comparison.to_dict()
    results.print(comparison_table(report))
    for line in verdict_lines(report):
        results.print(line, highlight=False)
    console.print(f"Report: {output / 'report.md'}; in a browser: {(output / 'report.html').resolve()}", highlight=False)


def parse_models(specs: List[str], api_base: Optional[str] = None) -> Dict[str, Any]:
    """``NAME=MODEL`` options into an ordered dict; ``default`` names the default base model.

    ``openai:MODEL`` becomes a hosted encoder (key from ``OPENAI_API_KEY``, endpoint ``api_base``),
    checked here, before any model loads; its cost is logged before its first request.
    """
    from llama_index_bge_finetune.models import resolve_base_model

    models: Dict[str, Any] = {}
    for spec in specs:
        name, sep, target = spec.partition("=")
        if not sep:
            name, target = Path(spec).name or spec, spec
        if not name or not target:
            raise EvaluationError(f"--model {spec!r} is not NAME=MODEL, e.g. --model tuned=runs/docs/model.")
        if name in models:
            raise EvaluationError(f"Two models are named {name!r}; give each --model a distinct NAME.")
        if target.startswith(HOSTED_PREFIX):
            models[name] = hosted_model(name, target[len(HOSTED_PREFIX):], api_base)
        else:
            models[name] = resolve_base_model().model if target == "default" else target
    return models


HOSTED_PREFIX = "openai:"


def hosted_model(name: str, model: str, api_base: Optional[str]) -> Any:
    """The hosted encoder for ``--model NAME=openai:MODEL``."""
    from llama_index_bge_finetune.encoding.hosted import HostedEmbeddingEncoder

    if not model:
        raise EvaluationError(f"--model {name}=openai: names no model; e.g. --model {name}=openai:text-embedding-3-small.")
    return HostedEmbeddingEncoder(model, name=name, api_base=api_base)  # no OPENAI_API_KEY: a one-line error
