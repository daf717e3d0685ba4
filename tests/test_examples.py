"""Every script in ``examples/`` and the reference notebook, run as a user runs them.

Scripts run in a subprocess (cwd in a temporary folder, this checkout on ``PYTHONPATH``) and the
notebook in a Jupyter kernel through nbclient, all talking HTTP to the local OpenAI-compatible test
server through ``OPENAI_BASE_URL``. The tiny random BERT stands in for the model wherever the
assertion is about what the example produces rather than how good the model is; the notebook runs
with the packaged MiniLM, as its saved outputs do.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, Tuple

import pytest

from tests.openai_server import OpenAITestServer, _words
from tests.requirements import require_path

# Under -n 2 the tests that read the module's drop-in run go to one worker, which makes it once.
SHARES_DROP_IN_RUN = pytest.mark.xdist_group("examples-drop-in-run")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def example_env(server: OpenAITestServer) -> Dict[str, str]:
    """The environment a user sets for an OpenAI-compatible server, with this checkout importable."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-test-examples", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def run_example(script: str, cwd: Path, server: OpenAITestServer, *args: str) -> str:
    """Run ``examples/<script>`` to completion; its standard output."""
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], cwd=cwd, env=example_env(server),
                          capture_output=True, text=True, timeout=500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def module_server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as server:
        yield server


@pytest.fixture(scope="module")
def drop_in_run(_tiny_model_master: Path, tmp_path_factory: pytest.TempPathFactory,
                module_server: OpenAITestServer) -> Tuple[Path, str]:
    """``finetune_drop_in.py`` run once: its folder (datasets, model) and output, for the scripts that follow it."""
    work = tmp_path_factory.mktemp("drop-in")
    return work, run_example("finetune_drop_in.py", work, module_server, "--model", str(_tiny_model_master))


def test_questions_are_captured_in_the_ingestion_pipeline_and_from_live_queries(
        minilm_path: Path, tmp_path: Path, openai_server: OpenAITestServer) -> None:
    # MiniLM: the judge keeps a live query only when the retrieved passage answers it, so retrieval must work.
    out = run_example("questions_in_pipeline.py", tmp_path, openai_server, "--model", str(minilm_path))
    nodes, written = map(int, re.search(r"ingestion: (\d+) nodes indexed, (\d+) questions written", out).groups())
    from llama_index_bge_finetune import EmbeddingQAFinetuneDataset

    generated = EmbeddingQAFinetuneDataset.from_json(tmp_path / "questions-demo" / "generated.json")
    assert written == len(generated.queries) == 2 * nodes == 2 * len(generated.corpus)
    kept = int(re.search(r"query log: (\d+) of 3 queries kept", out).group(1))
    assert kept >= 2, out
    logged = EmbeddingQAFinetuneDataset.from_json(tmp_path / "questions-demo" / "query_log.jsonl")
    assert len(logged.queries) == kept
    for qid, query in logged.queries.items():  # the test server's judge says yes only when words are shared
        passage = logged.corpus[logged.relevant_docs[qid][0]]
        assert {w.lower() for w in _words(query)} & {w.lower() for w in _words(passage)}
    # one request per node for questions, one judge request per live query (each retrieves a node)
    assert openai_server.chat_requests == nodes + 3 + 3, "questions, judge calls and the query engine's answers"


@SHARES_DROP_IN_RUN
def test_the_engine_is_a_drop_in_for_the_walkthrough_code(drop_in_run: Tuple[Path, str]) -> None:
    work, out = drop_in_run
    train, val = (json.loads((work / f"{s}_dataset.json").read_text()) for s in ("train", "val"))
    n_train, n_val = map(int, re.search(r"questions: (\d+) for training, (\d+) for validation", out).groups())
    assert (n_train, n_val) == (len(train["queries"]), len(val["queries"])) and n_train > n_val > 0
    assert not set(train["corpus"]) & set(val["corpus"]), "training and validation topics differ"
    result = json.loads((work / "finetuned-model" / "training_result.json").read_text())
    assert result["steps"] > 0 and set(result["evaluation"]) == {"base", "fine_tuned"}
    assert (work / "finetuned-model" / "README.md").is_file(), "the model card"
    assert "32-dimensional query vectors" in out, "get_finetuned_model() returns the tiny model's embedding"


@SHARES_DROP_IN_RUN
def test_the_retriever_evaluator_compares_vector_bm25_and_hybrid_retrievers(
        drop_in_run: Tuple[Path, str], _tiny_model_master: Path, module_server: OpenAITestServer) -> None:
    work, _ = drop_in_run
    out = run_example("evaluate_hybrid_retriever.py", work, module_server, "--base", str(_tiny_model_master))
    report = json.loads((work / "hybrid-report" / "report.json").read_text())
    labels = ["vector (base)", "hybrid (base)", "vector (fine-tuned)", "hybrid (fine-tuned)", "bm25"]
    assert list(report["models"]) == labels and report["base"] == "vector (base)"
    assert report["models"]["hybrid (base)"]["model"]["source"] == "QueryFusionRetriever"
    for label in labels:
        value = report["models"][label]["metrics"]["ndcg@10"]["value"]
        assert f"{label:22s} hit@5" in out and f"nDCG@10 {value:.3f}" in out
    # The vector retriever through LlamaIndex scores what the engine's own evaluator scored after training
    # (up to the engine's reduced-precision evaluation on CPUs with bf16).
    engine_eval = json.loads((work / "finetuned-model" / "training_result.json").read_text())["evaluation"]
    assert report["models"]["vector (fine-tuned)"]["metrics"]["ndcg@10"]["value"] == pytest.approx(
        engine_eval["fine_tuned"]["ndcg@10"], abs=0.02)
    assert (work / "hybrid-report" / "report.html").is_file()
    proc = subprocess.run([sys.executable, str(EXAMPLES / "evaluate_hybrid_retriever.py"), "--finetuned", "nowhere"],
                          cwd=work, env=example_env(module_server), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "run examples/finetune_drop_in.py first" in proc.stderr


@SHARES_DROP_IN_RUN
def test_the_reranker_is_a_node_postprocessor_of_a_query_engine(
        drop_in_run: Tuple[Path, str], _tiny_model_master: Path, minilm_path: Path,
        module_server: OpenAITestServer) -> None:
    work, _ = drop_in_run
    # MiniLM ranks the passages (a random first stage leaves no negative past the false-negative guard);
    # the tiny BERT is the reranker's start.
    out = run_example("reranker_in_query_engine.py", work, module_server, "--model", str(_tiny_model_master),
                      "--retriever-model", str(minilm_path))
    config = json.loads((work / "reranker-model" / "reranker_config.json").read_text())
    assert f"blend weight {config['blend_weight']:g} chosen" in out
    # The query engine's sources are the retriever's 10 candidates as the reranker orders them, cut to top_n=3.
    assert re.search(r"^  retriever: 10 candidates, the labelled passage (is candidate \d+|is not among them)$", out, re.M)
    reranked = re.search(r"^  FinetunedRerank over them keeps candidates ([\d ]+)$", out, re.M).group(1).split()
    sources = re.search(r"^  query engine: 3 sources, candidates ([\d ]+)$", out, re.M).group(1).split()
    assert sources == reranked and len(set(sources)) == 3 and {int(r) for r in sources} <= set(range(1, 11)), out
    if config["blend_weight"] == 0:  # the guard kept the retriever's order: the first three candidates
        assert sources == ["1", "2", "3"], out
    hits = {name: float(v) for name, v in re.findall(r"^\s+(retriever(?: \+ reranker)?)\s+hit@1 ([\d.]+)", out, re.M)}
    assert set(hits) == {"retriever", "retriever + reranker"}
    if config["blend_weight"] == 0:  # the guard kept the retriever's order: reranking changes nothing
        assert hits["retriever"] == hits["retriever + reranker"]


@pytest.mark.slow
def test_swapping_a_finetuned_model_into_an_existing_app(minilm_path: Path, tmp_path: Path,
                                                         openai_server: OpenAITestServer) -> None:
    # The example's own base model (the packaged MiniLM): it misses the team's jargon, the fine-tuned one finds it.
    out = run_example("swap_in_existing_app.py", tmp_path, openai_server, "--model", str(minilm_path))
    assert "Swapping the model without re-embedding is refused" in out
    before, after = map(int, re.search(r"Correct pages: (\d)/3 before, (\d)/3 after\.", out).groups())
    assert before < 3 and after == 3, out
    assert (tmp_path / "swap-demo" / "model" / "modules.json").is_file()


@pytest.fixture
def ten_k_dir(request: pytest.FixtureRequest) -> Path:
    """The 10-K walkthrough's data: ``LLAMAINDEX_10K_DIR`` when set, else page excerpts of the shared PDFs.

    The notebook keeps 8 nodes of each 10-K; excerpts (``ten_k_excerpts`` in conftest.py) spare it
    parsing 545 pages to pick them.
    """
    if not os.environ.get("LLAMAINDEX_10K_DIR"):
        return request.getfixturevalue("ten_k_excerpts")
    folder = Path(os.environ["LLAMAINDEX_10K_DIR"])
    for name in ("lyft_2021.pdf", "uber_2021.pdf"):
        require_path(folder / "pdfs" / name, f"the 10-K PDF {name} (LLAMAINDEX_10K_DIR)",
                     "point LLAMAINDEX_10K_DIR at a folder whose pdfs/ holds lyft_2021.pdf and uber_2021.pdf, "
                     "or unset it to use excerpts of the shared data folder's PDFs (../shared/data/llamaindex_10k/pdfs)")
    return folder


def notebook_output_text(notebook) -> str:
    """Every text a notebook's code cells printed, in order."""
    return "\n".join(o.get("text", "") for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_the_notebooks_saved_outputs_are_the_published_experiment() -> None:
    """The page a reader opens first shows fine-tuning on the published questions, not a CI-sized run."""
    import nbformat

    from tests.test_published_figures import MACHINE_PATH, TEMP_PATH

    notebook = nbformat.read(EXAMPLES / "reference_walkthrough.ipynb", as_version=4)
    text = notebook_output_text(notebook)
    assert "questions: published; passages per 10-K: all; epochs: " in text
    assert "668 training questions over 334 Lyft passages, 790 validation questions over 395 Uber passages" in text
    assert "790 Uber questions over 395 passages" in text
    hit5 = {}
    for label in ("base (all-MiniLM-L6-v2)", "fine-tuned", "bm25", "fine-tuned + bm25"):
        row = re.search(rf"^{re.escape(label)} +(0\.\d{{4}}) \[[\d., ]+\] +(0\.\d{{4}}) \[", text, re.M)
        assert row, f"the table's {label!r} row"
        hit5[label] = float(row.group(1))
    assert "hosted (" not in text, "no hosted row with the published questions"
    for figure in ("bge-small-en (base)", "0.7873", "0.6583", "bge-small-en fine-tuned", "0.8443", "0.7540",
                   "OpenAI ada-002", "0.8709"):
        assert figure in text, f"the published figure {figure} beside ours"
    assert hit5["fine-tuned"] > hit5["base (all-MiniLM-L6-v2)"] + 0.05, "fine-tuning lifts hit@5 on these questions"
    assert re.search(r"^Best retriever: .+ \(ndcg@10 0\.\d{4}\)", text, re.M)
    assert re.search(r"^Shipped pipeline \(chosen on all 790 questions\): ", text, re.M)
    # The prose quotes the saved run: every four-decimal figure of its markdown cells and of README's item on the
    # notebook is in the outputs (or, for the benchmark matrix it points to, in benchmarks/RESULTS.md).
    results_md = (REPO / "benchmarks" / "RESULTS.md").read_text()
    readme = (REPO / "README.md").read_text().splitlines()
    start = next(n for n, line in enumerate(readme) if line.startswith("- `reference_walkthrough.ipynb`"))
    end = next((n for n in range(start + 1, len(readme)) if not readme[n].startswith("  ")), len(readme))
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    for prose in (markdown, "\n".join(readme[start:end])):
        for figure in re.findall(r"(?<![\d.])0\.\d{4}(?!\d)", prose):
            assert figure in text or figure in results_md, f"{figure} is quoted but not in the saved outputs"
    raw = (EXAMPLES / "reference_walkthrough.ipynb").read_text()
    assert not MACHINE_PATH.search(raw) and not TEMP_PATH.search(raw) and "site-packages" not in raw


@pytest.mark.slow
def test_the_reference_walkthrough_notebook_runs(ten_k_dir: Path, tmp_path: Path, openai_server: OpenAITestServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    for key, value in {**example_env(openai_server), "LLAMAINDEX_10K_DIR": str(ten_k_dir),
                       "WALKTHROUGH_MAX_NODES": "8", "WALKTHROUGH_WORKDIR": str(tmp_path / "out")}.items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(EXAMPLES / "reference_walkthrough.ipynb", as_version=4)
    NotebookClient(notebook, timeout=500, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    text = notebook_output_text(notebook)
    assert "8 Lyft nodes for training, 8 Uber nodes for validation" in text
    report = json.loads((tmp_path / "out" / "report" / "report.json").read_text())
    rows = ["base (all-MiniLM-L6-v2)", "fine-tuned", "hosted (text-embedding-3-small)", "bm25", "fine-tuned + bm25"]
    assert list(report["models"]) == rows
    for label in rows:  # the printed table: one line per row, hit@5 and nDCG@10 as the report has them
        hit5, ndcg10 = (report["models"][label]["metrics"][m]["value"] for m in ("hit_rate@5", "ndcg@10"))
        assert re.search(rf"^{re.escape(label)} +{hit5:.4f} \[.*\] +{ndcg10:.4f} \[", text, re.M), label
    assert report["best_retriever"]["sentence"] in text
    assert "Shipped pipeline (chosen on all" in text
    assert "published (bge-small-en" not in text, "the published figures are for the published questions only"
    val = json.loads((tmp_path / "out" / "val_dataset.json").read_text())
    assert report["dataset"]["n_queries"] == len(val["queries"]) > 0
    assert openai_server.embedding_requests > 0, "the hosted model was asked over HTTP"
    assert openai_server.chat_requests <= 16, "one request per non-blank node"
    assert (tmp_path / "out" / "finetuned-model" / "modules.json").is_file()
