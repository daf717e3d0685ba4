"""Corpus encoding on a real local Ray cluster: same vectors and order as local, a killed actor, clear errors."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List

import numpy as np
import pytest

from llama_index_bge_finetune.encoding import CorpusEncoderActor, RayEncodeBackend, encode_texts
from llama_index_bge_finetune.errors import EncodeBackendError
from tests.requirements import SCALE, require_module

ray = require_module("ray", SCALE)

pytestmark = pytest.mark.xdist_group("ray")  # under -n 2: one local Ray cluster at a time on this machine


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """One local two-CPU Ray cluster for the whole module (start-up is paid once)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_st(_tiny_model_master: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(_tiny_model_master), device="cpu")


def _texts(n: int) -> List[str]:
    words = "claim protein cell study effect gene risk patient dose trial".split()
    return [" ".join(words[(i * 7 + j) % len(words)] for j in range(1 + (i * 13) % 40)) + f" item {i}" for i in range(n)]


@pytest.mark.slow  # starts Ray actors: tens of seconds on 2 CPUs
def test_ray_vectors_equal_local_ones_in_order(ray_cluster: Any, tiny_st: Any, tmp_path: Path) -> None:
    from llama_index_bge_finetune.encoding.encoders import SentenceTransformerEncoder

    texts = _texts(230)
    backend = RayEncodeBackend(num_actors=2, rows_per_block=25, model_cache_dir=tmp_path / "models")
    local = SentenceTransformerEncoder(tiny_st, batch_size=16).encode_corpus(texts)
    remote = SentenceTransformerEncoder(tiny_st, batch_size=16, encode_backend=backend).encode_corpus(texts)
    assert remote.shape == local.shape == (230, 32)
    np.testing.assert_allclose(remote, local, rtol=0, atol=1e-5)
    assert len(list((tmp_path / "models").iterdir())) == 1  # saved once, loaded by both actors from the folder


@pytest.mark.slow  # starts Ray actors: tens of seconds on 2 CPUs
def test_a_killed_actor_is_restarted_and_no_row_is_lost_or_repeated(ray_cluster: Any, tiny_st: Any, tmp_path: Path) -> None:
    marker = str(tmp_path / "killed-once")
    calls = str(tmp_path / "calls")
    os.mkdir(calls)

    class DiesOnce(CorpusEncoderActor):
        """Kills its own process the first time it is handed row 100, before encoding it."""

        def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
            rows = [int(r) for r in batch["row"]]
            if 100 in rows and not os.path.exists(marker):
                open(marker, "w").close()
                os._exit(1)
            out = super().__call__(batch)
            with open(os.path.join(calls, f"{os.getpid()}-{rows[0]}-{len(os.listdir(calls))}"), "w") as f:
                f.write(" ".join(map(str, rows)))
            return out

    class Backend(RayEncodeBackend):
        actor_class = DiesOnce

    texts = _texts(200)
    vectors = Backend(num_actors=1, rows_per_block=20, model_cache_dir=tmp_path / "models").encode(
        tiny_st, texts, batch_size=10)
    assert os.path.exists(marker), "the actor was never killed"
    np.testing.assert_allclose(vectors, encode_texts(tiny_st, texts, batch_size=10), rtol=0, atol=1e-5)
    times = Counter(int(r) for name in os.listdir(calls) for r in Path(calls, name).read_text().split())
    assert sorted(times) == list(range(200))  # every row encoded, the killed batch after the restart
    # Ray retries every task that was in flight on the dead actor, so a block it had finished but not yet
    # returned may be encoded again (at least once, not exactly once): only blocks before the killed one,
    # whole, and at most twice. The vectors above hold each row once either way.
    again = sorted(r for r, n in times.items() if n > 1)
    assert max(times.values()) <= 2 and all(r < 100 for r in again) and len(again) % 20 == 0, again


def test_unreachable_cluster_is_a_clear_error() -> None:
    backend = RayEncodeBackend(address="127.0.0.1:1", connect_timeout=2)
    with pytest.raises(EncodeBackendError, match=r"No Ray cluster answers at 127\.0\.0\.1:1.*ray start --head"):
        backend.encode(object(), ["a passage"])  # refused before the model is touched


def test_ray_address_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from llama_index_bge_finetune.encoding import backend_from_cli

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert backend_from_cli(False) == "local" and backend_from_cli(True) == "ray"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert backend_from_cli(False) == "ray"
    assert RayEncodeBackend().address == "10.0.0.5:6379"


def test_bad_backend_names_and_models_are_refused() -> None:
    from llama_index.core.embeddings import MockEmbedding

    from llama_index_bge_finetune.errors import EvaluationError
    from llama_index_bge_finetune.encoding.resolve import resolve_encoder

    with pytest.raises(EncodeBackendError, match="choose one of local, ray"):
        encode_texts(object(), ["a passage"], encode_backend="spark")
    with pytest.raises(EvaluationError, match="needs a sentence-transformers model"):
        resolve_encoder(MockEmbedding(embed_dim=8), encode_backend="ray")
    with pytest.raises(EncodeBackendError, match="num_actors"):
        RayEncodeBackend(num_actors=0)


def test_cli_ray_with_an_unreachable_address_is_one_line(tmp_path: Path) -> None:
    import subprocess

    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:1", "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "llama_index_bge_finetune", "evaluate", "val.json", "--model",
                           "a=model", "-o", "eval"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "No Ray cluster answers at 127.0.0.1:1" in proc.stderr
    assert not (tmp_path / "eval").exists()


@pytest.mark.slow  # starts Ray actors: tens of seconds on 2 CPUs
def test_reembed_on_ray_gives_the_local_vectors(ray_cluster: Any, tiny_model_path: Path, tmp_path: Path) -> None:
    from llama_index.core import VectorStoreIndex

    from llama_index_bge_finetune.integration import from_finetuned, reembed_index
    from tests.integration_helpers import documents

    model = from_finetuned(tiny_model_path)
    index = VectorStoreIndex.from_documents(documents(), embed_model=model)
    backend = RayEncodeBackend(num_actors=1, model_cache_dir=tmp_path / "models")
    local = reembed_index(index, model, batch_size=50, show_progress=False).vector_store.data.embedding_dict
    on_ray = reembed_index(index, model, batch_size=50, show_progress=False, encode_backend=backend)
    remote = on_ray.vector_store.data.embedding_dict
    assert remote.keys() == local.keys()
    for key in local:
        np.testing.assert_allclose(remote[key], local[key], rtol=0, atol=1e-5)
