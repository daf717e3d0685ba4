"""A run killed with SIGKILL half-way resumes without asking again for any finished node."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from llama_index_bge_finetune.generation import QuestionGenerator
from tests.generation_helpers import generation_nodes, local_llm
from tests.openai_server import OpenAITestServer, passage_hash

ROOT = Path(__file__).resolve().parents[1]
N_NODES = 40
CHILD = textwrap.dedent(
    """
    import sys
    from llama_index_bge_finetune.generation import QuestionGenerator
    from tests.generation_helpers import generation_nodes
    from llama_index.llms.openai import OpenAI

    base_url, ckpt, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    llm = OpenAI(model="gpt-4o-mini", api_base=base_url, api_key="sk-test-child")
    QuestionGenerator(llm=llm, max_in_flight=2, backoff_base=0.01).generate(generation_nodes(n), checkpoint_path=ckpt)
    """
)


def _finished_keys(ckpt: Path) -> int:
    if not ckpt.is_file():
        return 0
    return sum(1 for line in ckpt.read_bytes().split(b"\n") if line.endswith(b"}"))


def test_sigkill_half_way_then_resume_matches_uninterrupted_run(openai_server, tmp_path):
    openai_server.configure(latency=0.1)
    ckpt = tmp_path / "ckpt.jsonl"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, openai_server.base_url, str(ckpt), str(N_NODES)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while _finished_keys(ckpt) < N_NODES // 2 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL, child.stdout.read().decode()[-2000:]

    nodes = generation_nodes(N_NODES)
    finished_texts = {}
    for line in ckpt.read_bytes().split(b"\n"):
        try:
            finished_texts[json.loads(line)["key"]] = True
        except (json.JSONDecodeError, KeyError):
            continue
    n_finished = len(finished_texts)
    assert N_NODES // 2 <= n_finished < N_NODES
    time.sleep(0.3)  # let the server read requests the child sent just before dying
    while openai_server.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    before = dict(openai_server.per_passage)
    openai_server.configure(latency=0.0)
    resumed = QuestionGenerator(llm=local_llm(openai_server), max_in_flight=4).generate(nodes, checkpoint_path=ckpt)
    assert resumed.usage.cached_nodes == n_finished and not resumed.failures
    # every node was asked once, except those in flight at the kill (asked again, never finished before)
    counts = [openai_server.per_passage[passage_hash(n.text)] for n in nodes]
    asked_twice = [n.node_id for n, c in zip(nodes, counts) if c > 1]
    assert all(c >= 1 for c in counts) and len(asked_twice) <= 2
    assert sum(openai_server.per_passage.values()) - sum(before.values()) == N_NODES - n_finished

    with OpenAITestServer() as fresh:
        uninterrupted = QuestionGenerator(llm=local_llm(fresh)).generate(nodes)
    assert resumed.dataset == uninterrupted.dataset
