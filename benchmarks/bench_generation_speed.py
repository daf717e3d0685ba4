"""Question generation speed: ours vs llama-index-finetuning's generate_qa_embedding_pairs.

Both drive llama-index's real ``OpenAI`` LLM class against the local OpenAI-compatible test
server (tests/openai_server.py, in its own process as a remote API would be) answering every
request after 100 ms, over 200 SciFact
abstracts as nodes. Ours runs with 32 (and the default 16) requests in flight; the peer asks
one node at a time. Ours is repeated and the median quoted; each side
gets one untimed warm-up call (the SDKs import lazily on first use).

    flock /tmp/heavy.lock python benchmarks/bench_generation_speed.py

Needs ../shared/data/scifact and the peer extra (llama-index-finetuning, mistralai<2).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "scifact"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=5, help="runs of ours (the median is quoted)")
    parser.add_argument("--peer-repeats", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    from llama_index.core.schema import TextNode
    from llama_index.llms.openai import OpenAI

    from llama_index_bge_finetune.generation import QuestionGenerator

    with contextlib.redirect_stderr(io.StringIO()):
        from llama_index.finetuning import generate_qa_embedding_pairs as peer_generate

    nodes = []
    with open(DATA / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            nodes.append(TextNode(id_=rec["_id"], text=f"{rec['title']} {rec['text']}"))
            if len(nodes) == args.nodes:
                break

    results = {}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.openai_server", "--port", str(port), "--latency", str(args.latency)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )
    server.stdout.readline()  # "serving on ..."
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        run(args, nodes, base_url, results, QuestionGenerator, OpenAI, peer_generate)
    finally:
        server.terminate()
        server.wait()

    ours, peer = statistics.median(results["ours_32"]), statistics.median(results["peer"])
    floor = args.nodes * args.latency / 32
    print(
        f"SUMMARY: {args.nodes} nodes, {args.latency * 1000:.0f} ms/request: ours (32 in flight) {ours:.2f} s "
        f"(floor {floor:.2f} s), ours (16) {statistics.median(results['ours_16']):.2f} s, peer {peer:.2f} s; "
        f"ours is {peer / ours:.1f}x faster"
    )


def run(args, nodes, base_url, results, QuestionGenerator, OpenAI, peer_generate) -> None:  # noqa: N803
    with tempfile.TemporaryDirectory() as tmp:
        def llm():
            return OpenAI(model="gpt-4o-mini", api_base=base_url, api_key="sk-test-bench")

        # one untimed warm-up per side: the first call of a process pays the SDKs' lazy imports
        QuestionGenerator(llm=llm(), max_in_flight=32).generate(nodes[:5])
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            peer_generate(nodes[:5], llm=llm(), output_path=str(Path(tmp) / "warmup.json"), verbose=False)
        for in_flight in (32, 16):
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                result = QuestionGenerator(llm=llm(), max_in_flight=in_flight).generate(nodes)
                times.append(time.perf_counter() - start)
                assert len(result.dataset.corpus) == len(nodes) and result.usage.requests == len(nodes)
            results[f"ours_{in_flight}"] = times
            print(f"ours, {in_flight} in flight: median {statistics.median(times):.2f} s  runs {[round(t, 2) for t in times]}", flush=True)

        times = []
        for i in range(args.peer_repeats):
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                ds = peer_generate(nodes, llm=llm(), output_path=str(Path(tmp) / f"peer{i}.json"), verbose=False)
            times.append(time.perf_counter() - start)
            assert len(ds.corpus) == len(nodes)
        results["peer"] = times
        print(f"peer (llama-index-finetuning 0.4.2): median {statistics.median(times):.2f} s  runs {[round(t, 2) for t in times]}", flush=True)


if __name__ == "__main__":
    main()
