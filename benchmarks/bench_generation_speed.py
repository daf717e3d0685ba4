"""Question generation speed: ours vs llama-index-finetuning's generate_qa_embedding_pairs, on two servers.

Both drive llama-index's real ``OpenAI`` LLM class over HTTP against an OpenAI-compatible server on
loopback that answers every request after 100 ms, over 200 SciFact abstracts as nodes:

* ``project``: the project's own test server (tests/openai_server.py), in its own process;
* ``independent``: a plain threaded server that is not ours (``../shared/tools/openai_compatible_server.py``),
  so a figure does not depend on one server's behaviour; skipped with a message when absent.

Every timed run is cold: a fresh Python process imports the libraries, builds the nodes, then times
constructing the generator and its first ``generate`` call with the defaults (the SDK's lazy imports
included). Ours is repeated and the median quoted; the peer, which asks one node at a time, runs once.

    python benchmarks/bench_generation_speed.py

Run it alone: other load on the machine distorts timings. Needs ../shared/data/scifact and the peer
extra (llama-index-finetuning, mistralai<2). Writes its record to benchmarks/results/ (records.py).
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import io
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "scifact"
INDEPENDENT_SERVER = ROOT.parent / "shared" / "tools" / "openai_compatible_server.py"


def cpu_kind() -> str:
    """e.g. ``AMD EPYC, AVX2 only (no AVX-512, no native bf16), 2 cores``."""
    from llama_index_bge_finetune.precisions import cpu_description

    return f"{cpu_description()}, {os.cpu_count()} cores"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(kind: str, latency: float) -> subprocess.Popen:
    port = free_port()
    if kind == "project":
        cmd = [sys.executable, "-m", "tests.openai_server", "--port", str(port), "--latency", str(latency)]
    else:
        cmd = [sys.executable, str(INDEPENDENT_SERVER), str(port), "--latency", str(latency)]
    server = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    server.stdout.readline()  # "serving on ..." / "listening on ..."
    server.base_url = f"http://127.0.0.1:{port}/v1"  # type: ignore[attr-defined]
    return server


def load_nodes(n: int) -> list:
    from llama_index.core.schema import TextNode

    nodes = []
    with open(DATA / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            nodes.append(TextNode(id_=rec["_id"], text=f"{rec['title']} {rec['text']}"))
            if len(nodes) == n:
                break
    return nodes


def child(side: str, base_url: str, n_nodes: int, in_flight: int) -> None:
    """One cold run in this fresh process: prints ``{"seconds": ..., "nodes": ...}`` as its last line."""
    warnings.filterwarnings("ignore")
    from llama_index.llms.openai import OpenAI

    from llama_index_bge_finetune.generation import QuestionGenerator

    if side == "peer":  # imported only for the peer, so it cannot warm anything up for ours
        with contextlib.redirect_stderr(io.StringIO()):
            from llama_index.finetuning import generate_qa_embedding_pairs as peer_generate
    nodes = load_nodes(n_nodes)
    def one_call(tmp: str) -> tuple:
        start = time.perf_counter()
        llm = OpenAI(model="gpt-4o-mini", api_base=base_url, api_key="sk-test-bench")
        if side == "ours":
            kwargs = {"max_in_flight": in_flight} if in_flight else {}  # 0: the defaults
            done = len(QuestionGenerator(llm=llm, **kwargs).generate(nodes).dataset.corpus)
        else:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                done = len(peer_generate(nodes, llm=llm, output_path=str(Path(tmp) / f"peer{time.time()}.json"),
                                         verbose=False).corpus)
        return time.perf_counter() - start, done

    with tempfile.TemporaryDirectory() as tmp:
        seconds, done = one_call(tmp)  # cold: the timed figure
        warm = one_call(tmp)[0] if side == "ours" else None  # a second generator in the same process, for reference
    print(json.dumps({"seconds": seconds, "nodes": done, "warm_seconds": warm}))


def cold_runs(side: str, base_url: str, args: argparse.Namespace, repeats: int, in_flight: int = 0,
              warm: Optional[List[float]] = None) -> List[float]:
    """Seconds of the first call in ``repeats`` fresh processes (the second call's go to ``warm``, for reference)."""
    times: List[float] = []
    warm = [] if warm is None else warm
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, __file__, "--child", side, "--base-url", base_url, "--nodes", str(args.nodes),
             "--in-flight", str(in_flight)],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )
        rec = json.loads(out.stdout.strip().splitlines()[-1])
        assert rec["nodes"] == args.nodes, rec
        times.append(rec["seconds"])
        if rec["warm_seconds"] is not None:
            warm.append(rec["warm_seconds"])
    if warm:
        print(f"    (second call in the same process: median {statistics.median(warm):.2f} s)", flush=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=5, help="cold runs of ours per server (the median is quoted)")
    parser.add_argument("--peer-repeats", type=int, default=1)
    parser.add_argument("--in-flight", type=int, default=0, help="also time ours at this many in flight (0: defaults only)")
    parser.add_argument("--servers", default="project,independent")
    parser.add_argument("--child", choices=("ours", "peer"), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.base_url, args.nodes, args.in_flight)
        return

    from llama_index_bge_finetune.generation import QuestionGenerator
    from records import open_record

    record = open_record("generation_speed")
    default_in_flight = inspect.signature(QuestionGenerator).parameters["max_in_flight"].default
    print(f"CPU: {cpu_kind()}; {args.nodes} nodes, {args.latency * 1000:.0f} ms per request; "
          f"ours with its defaults ({default_in_flight} in flight), cold", flush=True)
    servers: Dict[str, Any] = {}
    for kind in args.servers.split(","):
        if kind == "independent" and not INDEPENDENT_SERVER.is_file():
            print(f"SKIPPED the independent server: {INDEPENDENT_SERVER} is absent (it lives in ../shared/tools).")
            continue
        servers[kind] = one_server(kind, args, default_in_flight)
    summary = [f"{kind} server: ours {r['ours_median_s']:.2f} s (floor {r['floor_s']:.2f} s), "
               f"peer {r['peer_median_s']:.2f} s, {r['ratio']:.1f}x" for kind, r in servers.items()]
    line = (f"SUMMARY ({cpu_kind()}; {args.nodes} nodes, {args.latency * 1000:.0f} ms/request, cold, defaults): "
            + "; ".join(summary))
    record.write({"nodes": args.nodes, "latency_s": args.latency, "default_in_flight": default_in_flight,
                  "servers": servers}, summary=line)
    print(line)
    print(f"record: {record.relative_path}")


def one_server(kind: str, args: argparse.Namespace, default_in_flight: int) -> Dict[str, Any]:
    """Ours (and ours at ``--in-flight``) and the peer, cold, against one server; every run's seconds."""
    server = start_server(kind, args.latency)
    out: Dict[str, Any] = {}
    try:
        warm: List[float] = []
        ours = out["ours_runs_s"] = cold_runs("ours", server.base_url, args, args.repeats, warm=warm)
        out["ours_warm_runs_s"] = warm
        print(f"[{kind}] ours (defaults): median {statistics.median(ours):.2f} s  runs {[round(t, 2) for t in ours]}",
              flush=True)
        if args.in_flight:
            more = out[f"ours_{args.in_flight}_in_flight_runs_s"] = cold_runs(
                "ours", server.base_url, args, args.repeats, args.in_flight)
            print(f"[{kind}] ours ({args.in_flight} in flight): median {statistics.median(more):.2f} s  "
                  f"runs {[round(t, 2) for t in more]}", flush=True)
        peer = out["peer_runs_s"] = cold_runs("peer", server.base_url, args, args.peer_repeats)
        print(f"[{kind}] peer (llama-index-finetuning 0.4.2): median {statistics.median(peer):.2f} s  "
              f"runs {[round(t, 2) for t in peer]}", flush=True)
    finally:
        server.terminate()
        server.wait()
    out["ours_median_s"], out["peer_median_s"] = statistics.median(ours), statistics.median(peer)
    out["floor_s"] = math.ceil(args.nodes / default_in_flight) * args.latency  # waves of requests
    out["ratio"] = out["peer_median_s"] / out["ours_median_s"]
    return out

if __name__ == "__main__":
    main()
