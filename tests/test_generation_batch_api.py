"""Question generation through the OpenAI Batch API, against the local server's /v1/files and /v1/batches."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llama_index_bge_finetune import pipeline
from llama_index_bge_finetune.errors import GenerationError
from llama_index_bge_finetune.generation import BatchQuestionGenerator, QuestionGenerator
from llama_index_bge_finetune.generation.batch_cost import estimate_cost
from llama_index_bge_finetune.retries import RetryPolicy
from tests.generation_helpers import generation_nodes, local_llm

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-test-BATCH-SECRET-7777"


def batch_gen(server, **kwargs) -> BatchQuestionGenerator:
    return BatchQuestionGenerator(llm=local_llm(server, api_key=SECRET), poll_interval=0.01, **kwargs)


def uploaded_lines(server, nth: int = 0):
    files = [f for f in server.files.values() if f["meta"]["purpose"] == "batch"]
    return [json.loads(x) for x in files[nth]["data"].splitlines()]


def test_batch_dataset_equals_the_live_dataset_and_sends_the_live_body(openai_server, tmp_path):
    nodes = generation_nodes(10)
    live = QuestionGenerator(llm=local_llm(openai_server)).generate(nodes)
    live_bodies = {json.dumps(b, sort_keys=True) for b in openai_server.bodies}

    result = batch_gen(openai_server).generate(nodes, checkpoint_path=tmp_path / "generation.jsonl")
    assert result.dataset.queries == live.dataset.queries
    assert result.dataset.corpus == live.dataset.corpus and result.dataset.relevant_docs == live.dataset.relevant_docs
    assert not result.failures
    lines = uploaded_lines(openai_server)
    assert {json.dumps(line["body"], sort_keys=True) for line in lines} == live_bodies, "the live path's body"
    assert {line["url"] for line in lines} == {"/v1/chat/completions"} and len(lines) == 10
    assert openai_server.batches_created == 1
    assert result.usage.batch_api and result.usage.requests == 10 and result.usage.prompt_tokens > 0
    assert result.usage.cost_usd is not None and "Batch API price" in result.usage.summary()
    assert not (tmp_path / "generation.batches.json").read_text().count("batch_"), "the collected batch is forgotten"

    again = batch_gen(openai_server).generate(nodes, checkpoint_path=tmp_path / "generation.jsonl")
    assert again.dataset.queries == live.dataset.queries
    assert openai_server.batches_created == 1 and again.usage.cached_nodes == 10, "answered nodes are not resubmitted"


def test_nodes_answered_by_the_live_path_are_not_submitted(openai_server, tmp_path):
    ckpt = tmp_path / "generation.jsonl"
    nodes = generation_nodes(8)
    QuestionGenerator(llm=local_llm(openai_server)).generate(nodes[:5], checkpoint_path=ckpt)
    result = batch_gen(openai_server).generate(nodes, checkpoint_path=ckpt)
    assert len(result.dataset.corpus) == 8 and result.usage.cached_nodes == 5
    assert len(uploaded_lines(openai_server)) == 3


def test_failed_lines_go_to_failures_jsonl_and_only_they_are_resubmitted(openai_server, tmp_path):
    nodes = generation_nodes(8)
    openai_server.configure(always_fail=("Document node 3:", "Document node 5:"))
    dataset, failures = pipeline.generate_dataset(nodes, batch_gen(openai_server), tmp_path)
    records = [json.loads(x) for x in (tmp_path / pipeline.FAILURES_FILE).read_text().splitlines()]
    assert [r["node_id"] for r in records] == ["node-3", "node-5"]
    assert all(r["kind"] == "failed" and "HTTP 500" in r["reason"] for r in records)
    assert len(dataset.corpus) == 6 and "node-3" not in dataset.corpus

    openai_server.configure(always_fail=())
    dataset, failures = pipeline.generate_dataset(nodes, batch_gen(openai_server), tmp_path)
    assert not failures and len(dataset.corpus) == 8
    assert [line["custom_id"] for line in uploaded_lines(openai_server, 1)] == \
           [line["custom_id"] for line in uploaded_lines(openai_server, 0) if "node 3:" in line["body"]["messages"][0]
            ["content"] or "node 5:" in line["body"]["messages"][0]["content"]]


def test_expired_batch_keeps_its_partial_output_and_reports_the_rest(openai_server, tmp_path, caplog):
    nodes = generation_nodes(9)
    ckpt = tmp_path / "generation.jsonl"
    openai_server.configure(batch_outcome="expired", batch_lines_run=4)
    with caplog.at_level(logging.INFO, logger="llama_index_bge_finetune"):
        result = batch_gen(openai_server).generate(nodes, checkpoint_path=ckpt)
    assert len(result.dataset.corpus) == 4 and len(result.failures) == 5
    assert all("expired" in f.reason and "rerun" in f.reason for f in result.failures)
    assert any("expired" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)

    openai_server.configure(batch_outcome="completed")
    full = batch_gen(openai_server).generate(nodes, checkpoint_path=ckpt)
    assert len(full.dataset.corpus) == 9 and not full.failures
    assert len(uploaded_lines(openai_server, 1)) == 5, "only the missing nodes are resubmitted"
    assert full.usage.cached_nodes == 4


def test_a_batch_that_fails_validation_names_the_reason(openai_server, tmp_path):
    openai_server.configure(batch_outcome="failed")
    with pytest.raises(GenerationError, match="No question was written"):
        pipeline.generate_dataset(generation_nodes(3), batch_gen(openai_server), tmp_path)
    reasons = [json.loads(x)["reason"] for x in (tmp_path / pipeline.FAILURES_FILE).read_text().splitlines()]
    assert len(reasons) == 3 and all("the batch failed (invalid_request: injected validation failure)" in r
                                     for r in reasons)


CHILD = textwrap.dedent(
    """
    import sys
    from llama_index.llms.openai import OpenAI
    from llama_index_bge_finetune.generation import BatchQuestionGenerator
    from tests.generation_helpers import generation_nodes

    base_url, ckpt = sys.argv[1], sys.argv[2]
    llm = OpenAI(model="gpt-4o-mini", api_base=base_url, api_key="sk-test-child-0000")
    BatchQuestionGenerator(llm=llm, poll_interval=0.05).generate(generation_nodes(6), checkpoint_path=ckpt)
    """
)


def test_killed_between_submit_and_download_reattaches_without_submitting_again(openai_server, tmp_path):
    openai_server.configure(batch_polls_per_state=10**6)  # the batch stays "validating" while the child waits
    ckpt = tmp_path / "generation.jsonl"
    state = tmp_path / "generation.batches.json"
    child = subprocess.Popen([sys.executable, "-c", CHILD, openai_server.base_url, str(ckpt)], cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while '"batch_id": "batch_' not in (state.read_text() if state.is_file() else "") and child.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, child.stdout.read().decode()[-2000:]
    assert openai_server.batches_created == 1 and not ckpt.exists()

    openai_server.configure(batch_polls_per_state=1)
    result = batch_gen(openai_server).generate(generation_nodes(6), checkpoint_path=ckpt)
    assert len(result.dataset.corpus) == 6 and not result.failures
    assert openai_server.batches_created == 1 and openai_server.files_uploaded == 1, "never submitted twice"


def test_giving_up_waiting_keeps_the_batch_for_the_next_run(openai_server, tmp_path):
    openai_server.configure(batch_polls_per_state=10**6)
    ckpt = tmp_path / "generation.jsonl"
    with pytest.raises(GenerationError, match="rerun the same command later"):
        batch_gen(openai_server, max_wait=0.1).generate(generation_nodes(4), checkpoint_path=ckpt)
    openai_server.configure(batch_polls_per_state=1)
    result = batch_gen(openai_server).generate(generation_nodes(4), checkpoint_path=ckpt)
    assert len(result.dataset.corpus) == 4 and openai_server.batches_created == 1


def test_the_cost_at_both_prices_is_given_before_anything_is_submitted(openai_server, tmp_path, caplog):
    seen = []

    def on_estimate(estimate):
        seen.append((estimate, openai_server.files_uploaded, openai_server.batches_created))

    with caplog.at_level(logging.INFO, logger="llama_index_bge_finetune"):
        batch_gen(openai_server, on_estimate=on_estimate).generate(generation_nodes(5), checkpoint_path=tmp_path / "c.jsonl")
    (estimate, uploaded, created), = seen
    assert (uploaded, created) == (0, 0), "the estimate comes before the upload"
    assert estimate.requests == 5 and estimate.prompt_tokens > 5 * 20 and estimate.prompt_basis == "tiktoken o200k_base"
    assert estimate.batch_usd == pytest.approx(estimate.live_usd / 2)
    messages = [r.getMessage() for r in caplog.records]
    cost = next(i for i, m in enumerate(messages) if m.startswith("Estimated cost of 5 requests to gpt-4o-mini"))
    submitted = next(i for i, m in enumerate(messages) if m.startswith("Submitted batch"))
    assert cost < submitted and "at the live price" in messages[cost] and "at the Batch API price" in messages[cost]


def test_the_estimate_of_an_unknown_model_says_so_and_uses_max_tokens():
    bodies = [{"messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 50}] * 3
    estimate = estimate_cost(bodies, "my-local-model", num_questions=2)
    assert estimate.live_usd is None and "price of 'my-local-model' is unknown" in estimate.summary()
    assert estimate.prompt_tokens == 3 * (4 + 100) and estimate.prompt_basis.startswith("characters / 4")
    assert estimate.completion_tokens == 150 and "upper bound" in estimate.completion_basis


def test_the_key_is_never_written(openai_server, tmp_path):
    openai_server.configure(always_fail=("Document node 1:",))
    pipeline.generate_dataset(generation_nodes(4), batch_gen(openai_server), tmp_path)
    assert any(SECRET in h for h in openai_server.auth_headers), "the key was sent to the server"
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "generation.batches.json" for p in written)
    assert not [p for p in written if SECRET.encode() in p.read_bytes()]
    assert not [f for f in openai_server.files.values() if SECRET.encode() in f["data"]], "not in the uploads either"


def test_file_and_batch_calls_are_retried_by_the_retry_policy(openai_server, tmp_path):
    patient = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.05)
    openai_server.configure(batch_fail_next=3, fail_status=503)  # the upload fails three times
    result = batch_gen(openai_server, retry_policy=patient).generate(generation_nodes(3), checkpoint_path=tmp_path / "a.jsonl")
    assert len(result.dataset.corpus) == 3 and not result.failures
    assert openai_server.config.batch_fail_next == 0 and openai_server.files_uploaded == 1
    assert len(uploaded_lines(openai_server)) == 3, "the retried upload sent the whole file"

    openai_server.reset_counters()
    openai_server.configure(batch_fail_next=1, fail_status=503)
    with pytest.raises(GenerationError, match="Could not upload the batch input file.*InternalServerError"):
        batch_gen(openai_server, retry_policy=RetryPolicy(max_attempts=1)).generate(
            generation_nodes(3), checkpoint_path=tmp_path / "b.jsonl")
    assert openai_server.total_requests == 1, "no hidden retries in the openai client"


def test_only_the_openai_chat_model_can_use_the_batch_api(openai_server):
    from llama_index.core.llms import MockLLM

    with pytest.raises(GenerationError, match="needs llama-index's OpenAI chat model"):
        BatchQuestionGenerator(llm=MockLLM())
    with pytest.raises(GenerationError, match="poll_interval"):
        BatchQuestionGenerator(llm=local_llm(openai_server), poll_interval=0)
    with pytest.raises(GenerationError, match="offline generator makes no API requests"):
        pipeline.make_generator("offline", batch_api=True)


def test_cli_generate_with_batch_api(openai_server, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for node in generation_nodes(6):
        (docs / f"{node.node_id}.txt").write_text(node.text * 3, encoding="utf-8")
    out = tmp_path / "out"
    env = {**os.environ, "OPENAI_API_KEY": SECRET, "OPENAI_API_BASE": openai_server.base_url, "COLUMNS": "200",
           "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "llama_index_bge_finetune", "generate", str(docs), "-o", str(out), "--generator",
           "openai", "--batch-api", "--batch-poll-seconds", "0.05", "--chunk-size", "256"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    err = " ".join(proc.stderr.split())
    assert "Batch API" in err and err.index("Estimated cost of 6 requests") < err.index("Submitted batch batch_0001")
    assert "at the Batch API price" in err and "completed" in err
    dataset = json.loads((out / "dataset.json").read_text())
    assert len(dataset["corpus"]) == 6 and len(dataset["queries"]) == 12
    assert (out / "train_dataset.json").is_file() and (out / pipeline.FAILURES_FILE).read_text() == ""
    assert openai_server.batches_created == 1
    written = proc.stdout + proc.stderr + "".join(p.read_text(errors="ignore") for p in out.rglob("*") if p.is_file())
    assert SECRET not in written

    offline_cmd = cmd[:5] + ["-o", str(tmp_path / "offline"), "--generator", "offline", "--batch-api"]
    offline = subprocess.run(offline_cmd, env=env, capture_output=True, text=True, timeout=300)
    assert offline.returncode == 2 and "Traceback" not in offline.stderr and "--batch-api" in offline.stderr


def test_stopped_between_upload_and_creation_reuses_the_uploaded_file(openai_server, tmp_path):
    ckpt = tmp_path / "generation.jsonl"
    with pytest.raises(GenerationError, match="Could not create the batch"):  # the server refuses a 48 h window
        batch_gen(openai_server, completion_window="48h").generate(generation_nodes(3), checkpoint_path=ckpt)
    assert openai_server.files_uploaded == 1 and openai_server.batches_created == 0
    result = batch_gen(openai_server).generate(generation_nodes(3), checkpoint_path=ckpt)
    assert len(result.dataset.corpus) == 3
    assert openai_server.files_uploaded == 1 and openai_server.batches_created == 1


def test_a_live_run_warns_about_batches_not_collected(openai_server, tmp_path, caplog):
    openai_server.configure(batch_polls_per_state=10**6)
    with pytest.raises(GenerationError):
        batch_gen(openai_server, max_wait=0.05).generate(generation_nodes(3), checkpoint_path=tmp_path / "cache" /
                                                         "generation.jsonl")
    with caplog.at_level(logging.WARNING, logger="llama_index_bge_finetune"):
        pipeline.generate_dataset(generation_nodes(3), QuestionGenerator(llm=local_llm(openai_server)), tmp_path)
    assert any("batch_0001" in r.getMessage() and "--batch-api" in r.getMessage() for r in caplog.records)


def test_generate_qa_embedding_pairs_through_the_batch_api(openai_server, tmp_path):
    from llama_index_bge_finetune import generate_qa_embedding_pairs

    out = tmp_path / "train.json"
    dataset = generate_qa_embedding_pairs(generation_nodes(4), llm=local_llm(openai_server), output_path=str(out),
                                          use_batch_api=True, batch_poll_interval=0.01)
    assert len(dataset.corpus) == 4 and out.is_file() and openai_server.batches_created == 1
    assert openai_server.chat_requests == 4, "every request ran inside the batch"
    assert (tmp_path / "train.json.checkpoint.batches.json").is_file()
