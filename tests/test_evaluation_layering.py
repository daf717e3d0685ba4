"""The evaluation package's layers: no import cycle among the report modules, no reach into higher packages."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Set

import llama_index_bge_finetune

PACKAGE = Path(llama_index_bge_finetune.__file__).parent
EVALUATION = PACKAGE / "evaluation"
HIGHER = ("llama_index_bge_finetune.reranking", "llama_index_bge_finetune.training", "llama_index_bge_finetune.cli",
          "llama_index_bge_finetune.pipeline")
WRITERS = {"report", "html_report", "reporting"}


def _imports(path: Path) -> Set[str]:
    """Every module a file imports, at the top or inside a function (``TYPE_CHECKING`` blocks included)."""
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _evaluation_graph() -> Dict[str, Set[str]]:
    """evaluation module -> the evaluation modules it imports (at run time, not only for type checking)."""
    graph = {}
    for path in EVALUATION.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                     and getattr(block.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(block)}
        deps = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and id(node) not in type_only:
                prefix = "llama_index_bge_finetune.evaluation."
                if node.module.startswith(prefix):
                    deps.add(node.module[len(prefix):])
        graph[path.stem] = deps
    return graph


def test_no_evaluation_module_imports_a_higher_layer():
    offenders = {path.name: sorted(m for m in _imports(path) if m.startswith(HIGHER))
                 for path in EVALUATION.glob("*.py")}
    assert {name: mods for name, mods in offenders.items() if mods} == {}


def test_comparison_does_not_import_the_report_writers():
    imported = _imports(EVALUATION / "comparison.py")
    assert not {m for m in imported if m.rsplit(".", 1)[-1] in WRITERS}, sorted(imported)
    writers_import_comparison = all("llama_index_bge_finetune.evaluation.comparison" in _imports(EVALUATION / f"{w}.py")
                                    for w in WRITERS)
    assert writers_import_comparison  # the writers read the comparison's types: the arrow points one way


def test_the_comparison_and_its_writers_import_each_other_without_a_cycle():
    graph = _evaluation_graph()
    for module in sorted(WRITERS | {"comparison", "compare"}):
        assert module in graph
        seen: Set[str] = set()
        todo = list(graph[module])
        while todo:
            dep = todo.pop()
            if dep not in seen:
                seen.add(dep)
                todo.extend(graph.get(dep, ()))
        assert module not in seen, f"{module} imports, through {sorted(seen)}, itself"


def test_importing_evaluation_and_comparing_loads_no_higher_package():
    code = (
        "import json, sys\n"
        "import llama_index_bge_finetune.evaluation as e\n"
        "e.compare_models, e.ComparisonReport, e.HostedEmbeddingEncoder, e.evaluate_embeddings\n"
        "import llama_index_bge_finetune.evaluation.html_report\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('llama_index_bge_finetune'))))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    loaded = json.loads(out.strip().splitlines()[-1])
    assert "llama_index_bge_finetune.evaluation.compare" in loaded
    assert [m for m in loaded if m.startswith(HIGHER)] == []
