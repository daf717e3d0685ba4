"""The package's house rules, checked statically over its source: who may import whom, no circles,
no function over 80 lines, and every public name of the curated API still importable.

The rooms, lowest first (README, "How it is built"):

- base modules (``errors``, ``dataset``, ``models``, ...): import only each other;
- ``encoding/`` (text -> vectors) and ``generation/`` (questions from passages): base only;
- ``retrieval/`` (vector files, the corpus cache, search): base and encoding;
- ``evaluation/`` (metrics, statistics, evaluators, the comparison): base, encoding, retrieval;
- ``report/`` (Markdown, JSON, chart, HTML, ``compare_models``): the above, no engine;
- ``integration/`` and ``training/``: base, encoding, retrieval, evaluation;
- ``reranking/``: also generation and training;
- the whole-loop modules (``pipeline``) and ``cli/`` on top.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple


import llama_index_bge_finetune

PACKAGE = Path(llama_index_bge_finetune.__file__).parent
ROOT = "llama_index_bge_finetune"
BASE = {"errors", "dataset", "models", "outputs", "precisions", "retries", "window_settings", "ingest", "cache_dir"}
#: room -> the rooms it may import (besides itself).
MAY_IMPORT: Dict[str, Set[str]] = {
    "base": set(),
    "encoding": {"base"},
    "generation": {"base"},
    "retrieval": {"base", "encoding"},
    "evaluation": {"base", "encoding", "retrieval"},
    "report": {"base", "encoding", "retrieval", "evaluation"},
    "integration": {"base", "encoding", "retrieval", "evaluation"},
    "training": {"base", "encoding", "retrieval", "evaluation"},
    "reranking": {"base", "encoding", "retrieval", "evaluation", "generation", "training"},
    "workflow": {"base", "encoding", "retrieval", "evaluation", "report", "integration", "training", "reranking",
                 "generation"},
    "cli": {"base", "encoding", "retrieval", "evaluation", "report", "integration", "training", "reranking",
            "generation", "workflow"},
}
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    """The room a module of the package lives in."""
    parts = module.split(".")
    if module.endswith("__main__"):
        return "cli"
    if len(parts) == 1:
        return "workflow"  # the package's own __init__: a lazy facade over every room
    if parts[1] in MAY_IMPORT:
        return parts[1]
    if parts[1] in BASE:
        return "base"
    return "workflow"  # pipeline, __main__


@functools.lru_cache(maxsize=1)
def _parsed() -> Tuple[Tuple[str, Path, ast.Module], ...]:
    return tuple((_module_name(path), path, ast.parse(path.read_text(encoding="utf-8")))
                 for path in sorted(PACKAGE.rglob("*.py")))


def _sources() -> Iterator[Tuple[str, Path, ast.Module]]:
    yield from _parsed()


def _imports(module: str, path: Path, tree: ast.Module, known: Set[str]) -> Set[str]:
    """The package modules ``module`` imports anywhere in its source (function bodies and TYPE_CHECKING too)."""
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                found.add(full if full in known else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith(ROOT + ".") and m != module}


def import_graph() -> Dict[str, Set[str]]:
    known = {name for name, _, _ in _sources()}
    return {module: _imports(module, path, tree, known) for module, path, tree in _sources()}


def test_no_room_imports_a_room_above_it():
    broken: List[str] = []
    for module, deps in import_graph().items():
        mine = room(module)
        for dep in sorted(deps):
            theirs = room(dep)
            if theirs != mine and theirs not in MAY_IMPORT[mine]:
                broken.append(f"{module} imports {dep}: {mine}/ may import only "
                              f"{', '.join(sorted(MAY_IMPORT[mine])) or 'nothing'} (tests/test_layering.py MAY_IMPORT)")
    assert broken == [], "\n".join(broken)


def _cycle(graph: Dict[str, Set[str]]) -> List[str]:
    """One import circle among the package's modules, or [] (depth-first search)."""
    state: Dict[str, int] = {}
    stack: List[str] = []

    def visit(node: str) -> List[str]:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if dep not in graph or dep.rsplit(".", 1)[0] == node:
                continue  # a package importing its own submodule is not a circle
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_no_import_circle_between_modules():
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in import_graph().items()}
    circle = _cycle(graph)
    assert circle == [], "import circle (no module may reach itself through imports): " + " -> ".join(circle)


def test_the_circle_check_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_no_function_is_longer_than_80_lines():
    long = [f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for _, path, tree in _sources() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == [], f"functions over {MAX_FUNCTION_LINES} lines; split them:\n" + "\n".join(long)


#: Every name the curated API exported before the package was laid out by room; each stays importable.
PUBLIC_NAMES = {
    "llama_index_bge_finetune": [
        "BatchQuestionGenerator", "BgeFinetuneError", "CrossEncoderFinetuneEngine", "CrossEncoderFinetuningDatasetSample",
        "DatasetError", "EmbeddingQAFinetuneDataset", "FinetunedRerank", "OfflineQuestionGenerator",
        "QueryAdapterEmbedding", "QueryAdapterFinetuneEngine", "QueryLogRecorder", "QuestionGenerationTransform",
        "QuestionGenerator", "RayEncodeBackend", "RetrieverEvaluator", "SentenceTransformersFinetuneEngine",
        "check_embed_model", "compare_models", "default_generator", "from_finetuned", "generate_qa_embedding_pairs",
        "load_index", "record_embed_model", "reembed_index", "resolve_base_model", "settings_from_service_context",
        "use_finetuned", "__version__"],
    "llama_index_bge_finetune.evaluation": [
        "ComparisonReport", "EmbeddingCache", "EvalModel", "EvaluationResult", "HostedEmbeddingEncoder", "ModelComparison",
        "QueryResult", "RetrieverEvaluator", "compare_models", "evaluate_embeddings", "load_beir", "score_ranking"],
    "llama_index_bge_finetune.training": [
        "FinetuneResult", "ForgettingGuard", "HardNegativeMiner", "LOSS_NAMES", "SentenceTransformersFinetuneEngine",
        "build_loss"],
    "llama_index_bge_finetune.reranking": [
        "BlendChoice", "CrossEncoderFinetuneEngine", "CrossEncoderFinetuningDatasetSample", "CrossEncoderScorer",
        "FinetunedRerank", "Reranking", "RelevanceJudge", "candidates_from_qa_dataset", "choose_blend_weight",
        "generate_ce_fine_tuning_dataset", "generate_synthetic_queries_over_documents", "load_samples",
        "rerank_evaluation", "samples_from_qa_dataset", "save_samples"],
    "llama_index_bge_finetune.integration": [
        "EmbedModelFingerprint", "QueryAdapterEmbedding", "QueryAdapterFinetuneEngine", "StaleVectorsWarning",
        "UnfingerprintedIndexWarning", "check_embed_model", "fingerprint_embed_model", "from_finetuned", "load_index",
        "record_embed_model", "recorded_embed_model", "reembed_index", "settings_from_service_context", "use_finetuned"],
    "llama_index_bge_finetune.encoding": [
        "CorpusEncoderActor", "ENCODE_BACKENDS", "EncodeBackendSpec", "RayEncodeBackend", "backend_from_cli",
        "encode_texts", "model_fingerprint", "resolve_encode_backend"],
}


def test_every_public_name_is_still_importable():
    code = "import json\nmissing = {}\n" + "".join(
        f"from {package} import {', '.join(names)}\nimport {package} as p\n"
        f"missing[{package!r}] = sorted(set({names!r}) - set(dir(p)) - set(p.__all__))\n"
        for package, names in sorted(PUBLIC_NAMES.items())) + "print(json.dumps(missing))"
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {package: [] for package in PUBLIC_NAMES}


def test_importing_evaluation_and_comparing_loads_no_higher_room():
    code = (
        "import json, sys\n"
        "import llama_index_bge_finetune.evaluation as e\n"
        "e.evaluate_embeddings, e.RetrieverEvaluator, e.ModelComparison\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('llama_index_bge_finetune'))))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    assert "llama_index_bge_finetune.evaluation.embedding_evaluator" in loaded
    higher = [m for m in loaded if m != ROOT and room(m) not in MAY_IMPORT["evaluation"] | {"evaluation"}]
    assert higher == []


def test_the_readme_describes_every_room_with_its_imports():
    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## How it is built", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(): line.split("|")[3].strip() for line in section.splitlines()
            if line.startswith("| `")}
    folders = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file())
    described = {name.strip("` /") for cell in rows for name in cell.split(",")}
    assert [f for f in folders if f not in described] == [], "README's How it is built misses a package"
    for cell, imports in rows.items():
        for name in (n.strip("` /") for n in cell.split(",")):
            if name in MAY_IMPORT and name != "cli":
                said = {"base" if i.strip() == "base" else i.strip() for i in imports.split(",")}
                assert said == MAY_IMPORT[name] or imports.startswith(("the above", "everything")), (name, imports)
    base_cell = next(cell for cell in rows if "`errors.py`" in cell)
    assert {f"`{m}.py`" for m in BASE} <= {c.strip() for c in base_cell.split(",")}, base_cell
