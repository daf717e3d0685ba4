"""Hosted embedding models in the comparison, against the local OpenAI-compatible test server.

Every text is paid for once (an on-disk cache per text, written batch by batch), the cost is
stated before any request, 429/5xx/time-outs/malformed answers are retried, and the key never
reaches a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict

import numpy as np
import pytest

from llama_index_bge_finetune.errors import EvaluationError
from llama_index_bge_finetune.evaluation import HostedEmbeddingEncoder, compare_models, evaluate_embeddings
from llama_index_bge_finetune.retries import RetryPolicy
from tests.evaluation_data import evaluation_topics_dataset
from tests.openai_server import hashed_embedding
from tests.training_data import topics_dataset

KEY = "sk-test-hosted-0123456789abcdef"


def _encoder(server, cache_dir: Path, **kwargs) -> HostedEmbeddingEncoder:
    options = {"api_base": server.base_url, "api_key": KEY, "cache_dir": cache_dir, "backoff_base": 0.01,
               "backoff_max": 0.2, **kwargs}
    return HostedEmbeddingEncoder("text-embedding-3-small", **options)


def _expected(texts, dim: int = 64) -> np.ndarray:
    return np.array([hashed_embedding(t, dim) for t in texts], dtype=np.float32)


def _files_under(*folders: Path):
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                yield path


def test_vectors_come_back_in_order_batched_concurrently_and_are_cached(openai_server, tmp_path):
    openai_server.configure(latency=0.05)
    texts = [f"passage {i} about topic {i % 7}" for i in range(40)] + ["passage 0 about topic 0"]  # one duplicate
    enc = _encoder(openai_server, tmp_path, batch_size=5, max_in_flight=4)
    vecs = enc.encode_corpus(texts)
    assert np.allclose(vecs, _expected(texts), atol=1e-6)
    assert openai_server.embedding_requests == 8  # 40 distinct texts, 5 per request
    assert 2 <= openai_server.max_in_flight <= 4
    assert set(openai_server.auth_headers) == {f"Bearer {KEY}"}
    # A new encoder (a new run) reads every vector from disk: nothing is sent, nothing paid.
    again = _encoder(openai_server, tmp_path)
    assert again.plan(texts).n_to_send == 0 and "no request, $0" in again.estimate.line()
    assert np.array_equal(again.encode_queries(texts), vecs)
    assert openai_server.embedding_requests == 8


def test_429_500_time_outs_and_malformed_answers_are_retried(openai_server, tmp_path):
    openai_server.configure(embed_rate_429=0.3, embed_rate_500=0.3, embed_rate_malformed=0.2, embed_rate_hang=0.15,
                            hang_seconds=2.0, retry_after=0.05, seed=3)
    texts = [f"text number {i} on retries" for i in range(60)]
    enc = _encoder(openai_server, tmp_path, batch_size=4, max_in_flight=4, timeout=0.5, max_retries=10)
    vecs = enc.encode_corpus(texts)
    assert np.allclose(vecs, _expected(texts), atol=1e-6)
    status = openai_server.status_counts
    assert status[429] and status[500], status
    assert openai_server.embedding_requests > 15  # 15 batches, plus the retried ones
    assert enc.requests >= openai_server.embedding_requests - 1  # a hung request may still be open server-side
    assert enc.describe()["cost"]["texts_sent"] == 60


def test_a_permanent_error_stops_with_a_clear_message_and_a_rerun_pays_only_for_the_rest(openai_server, tmp_path):
    texts = [f"chunk {i} of the manual" for i in range(30)] + ["the poisoned chunk"]
    openai_server.configure(embed_always_fail=("poisoned",), fail_status=400)
    enc = _encoder(openai_server, tmp_path, batch_size=3, max_in_flight=2)
    with pytest.raises(EvaluationError, match="400.*rerun to continue") as err:
        enc.encode_corpus(texts)
    assert KEY not in str(err.value)
    paid: Dict[str, int] = dict(openai_server.embedded_texts)
    assert paid and "the poisoned chunk" not in paid  # some batches arrived (and were cached) before the stop
    openai_server.configure(embed_always_fail=())
    openai_server.reset_counters()
    rerun = _encoder(openai_server, tmp_path, batch_size=3)
    estimate = rerun.plan(texts)
    assert estimate.n_cached == len(paid) and estimate.n_to_send == len(texts) - len(paid)
    vecs = rerun.encode_corpus(texts)
    assert not set(openai_server.embedding_texts) & set(paid), "a text already paid for was sent again"
    assert set(openai_server.embedding_texts) == set(texts) - set(paid)
    assert np.allclose(vecs, _expected(texts), atol=1e-6)


def test_a_retry_policy_sets_the_attempts_and_the_time_out(openai_server, tmp_path):
    openai_server.configure(embed_always_fail=("unlucky",), fail_status=503)
    policy = RetryPolicy(max_attempts=2, timeout=3.0, backoff_base=0.01, backoff_max=0.05)
    enc = HostedEmbeddingEncoder("text-embedding-3-small", api_base=openai_server.base_url, api_key=KEY,
                                 cache_dir=tmp_path, retry_policy=policy)
    assert enc.retry_policy is policy and enc.timeout == 3.0 and enc.max_retries == 1
    with pytest.raises(EvaluationError, match="after 2 attempts"):
        enc.encode_corpus(["an unlucky text"])
    assert openai_server.embedding_requests == 2 and enc.requests == 2
    assert enc._openai()[0].timeout == 3.0
    older = _encoder(openai_server, tmp_path, retry_policy=policy, max_retries=0)
    assert older.retry_policy.max_attempts == 1 and older.retry_policy.backoff_base == 0.01
    with pytest.raises(EvaluationError, match="timeout"):
        _encoder(openai_server, tmp_path, timeout=0)


def test_cost_line_counts_only_uncached_texts_and_says_when_the_price_is_unknown(openai_server, tmp_path, caplog):
    enc = _encoder(openai_server, tmp_path)
    enc.encode_corpus(["already here"])
    with caplog.at_level("INFO", logger="llama_index_bge_finetune"):
        estimate = enc.plan(["already here", "a new text of several words", "another one"])
    assert (estimate.n_texts, estimate.n_cached, estimate.n_to_send) == (3, 1, 2)
    assert estimate.tokens > 0 and estimate.price_per_mtok == 0.02 and "2024-01" in estimate.line()
    assert any("before any request" in r.getMessage() and "2 of 3 texts" in r.getMessage() for r in caplog.records)
    other = HostedEmbeddingEncoder("my-local-embedder", api_base=openai_server.base_url, api_key=KEY, cache_dir=tmp_path)
    assert "price unknown" in other.plan(["x y"]).line() and openai_server.embedding_requests == 1


def test_missing_key_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EvaluationError, match="OPENAI_API_KEY"):
        HostedEmbeddingEncoder("text-embedding-3-small", cache_dir=tmp_path)


def test_hosted_model_ranks_like_a_retriever_and_joins_a_comparison(openai_server, tiny_model_path, tmp_path):
    ds = evaluation_topics_dataset(16)
    ada = _encoder(openai_server, tmp_path / "hosted", name="ada", dimensions=128)
    result = evaluate_embeddings(ada, ds, k_values=(1, 5), cache=False)
    # The server's vectors are hashed bags of words: a query quoting its passage finds it first.
    assert result.metrics["hit_rate@1"] >= 0.9 and result.model_info["backend"] == "hosted"
    assert {b.get("dimensions") for b in openai_server.bodies} == {128}
    cmp = compare_models({"base": str(tiny_model_path), "ada": ada}, ds, k_values=(1, 5), cache=tmp_path / "npy",
                         n_bootstrap=20, n_permutations=20)
    assert list(cmp.results) == ["base", "ada"] and "ada" in cmp.differences
    md = cmp.to_markdown()
    assert "## Hosted embedding cost" in md and "text-embedding-3-small" in md
    assert cmp.to_dict()["models"]["ada"]["model"]["cost"]["line"].startswith("text-embedding-3-small")


def _cli(args, env_extra, cwd):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):  # only what the test sets
        env.pop(name, None)
    env.update(env_extra)
    env.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    return subprocess.run([sys.executable, "-m", "llama_index_bge_finetune", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_evaluate_with_a_hosted_model_writes_three_models_a_cost_line_and_no_key(
        openai_server, tiny_model_path, tmp_path):
    ds = topics_dataset(12, 1)
    dataset = tmp_path / "val.json"
    ds.save_json(str(dataset))
    cache = tmp_path / "cache"
    env = {"OPENAI_API_KEY": KEY, "BGE_FINETUNE_CACHE_DIR": str(cache)}
    models = ["--model", f"base={tiny_model_path}", "--model", f"tuned={tiny_model_path}",
              "--model", "ada=openai:text-embedding-3-small", "--api-base", openai_server.base_url]
    openai_server.configure(embed_rate_429=0.3, retry_after=0.05)
    proc = _cli(["evaluate", str(dataset), *models, "-o", str(tmp_path / "eval"), "--k", "1", "--k", "5"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stderr = " ".join(proc.stderr.split())
    assert "before any request" in stderr and "24 of 24 texts to embed" in stderr, stderr[-2000:]
    assert openai_server.status_counts[429], "the run met (and survived) a rate limit"
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert list(report["models"]) == ["base", "tuned", "ada", "bm25"]
    md = (tmp_path / "eval" / "report.md").read_text()
    assert "## Hosted embedding cost" in md and "OpenAI list price" in md
    assert "Hosted embedding cost" in (tmp_path / "eval" / "report.html").read_text()
    requests = openai_server.embedding_requests

    proc = _cli(["evaluate", str(dataset), *models, "-o", str(tmp_path / "eval2"), "--k", "1", "--k", "5"], env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert openai_server.embedding_requests == requests, "the second run paid again"
    assert "0 of 24 texts to embed" in " ".join(proc.stderr.split())
    for path in _files_under(tmp_path / "eval", tmp_path / "eval2", cache):
        assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in proc.stderr + proc.stdout


def test_cli_hosted_model_without_a_key_is_a_one_line_error(tmp_path):
    ds = topics_dataset(4, 1)
    ds.save_json(str(tmp_path / "val.json"))
    env = {"BGE_FINETUNE_CACHE_DIR": str(tmp_path / "cache")}
    proc = _cli(["evaluate", str(tmp_path / "val.json"), "--model", "ada=openai:text-embedding-3-small",
                 "-o", str(tmp_path / "eval")], env, tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "OPENAI_API_KEY" in proc.stderr and not (tmp_path / "eval").exists()


def test_cli_run_takes_hosted_models_and_checks_them_before_reading_documents(tmp_path):
    proc = _cli(["run", str(tmp_path / "no-such-docs"), "--model", "ada=openai:text-embedding-3-small",
                 "-o", str(tmp_path / "out")], {"BGE_FINETUNE_CACHE_DIR": str(tmp_path / "cache")}, tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "OPENAI_API_KEY" in proc.stderr and not (tmp_path / "out").exists()
    proc = _cli(["run", str(tmp_path / "no-such-docs"), "--model", "fine-tuned=openai:text-embedding-3-small",
                 "-o", str(tmp_path / "out")], {"OPENAI_API_KEY": KEY, "BGE_FINETUNE_CACHE_DIR": str(tmp_path / "cache")},
                tmp_path)
    assert proc.returncode == 2 and "run's own rows" in " ".join(proc.stderr.split())
