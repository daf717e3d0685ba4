"""A local OpenAI-compatible HTTP server for tests and benchmarks (stdlib only).

It answers ``POST /v1/chat/completions`` with questions built deterministically from the
passage in the prompt, ``POST /v1/embeddings`` with hashed bag-of-words vectors (with their own
``embed_*`` faults), and ``GET /v1/models``; ``/v1/files`` and ``/v1/batches`` run the Batch API over the
same chat answers (status progression over polls, failed lines in the error file, expired batches with
partial output, batches that fail validation). Faults are injected per test: latency, 429 with ``Retry-After``, 500,
a hang past the client's time-out, malformed answers, answers cut off mid-JSON. A prompt asking to answer "yes or
no" gets a relevance judgment (yes when the ``Query:`` line shares a content word with the
passage). Every fault decision is a hash of (seed, passage, attempt number), so a run is
reproducible whatever the request order.

Use it through the ``openai_server`` fixture (registered in ``tests/conftest.py``)::

    def test_something(openai_server):
        openai_server.configure(latency=0.05, rate_429=0.2, answer_style="bulleted")
        client = openai.OpenAI(base_url=openai_server.base_url, api_key="sk-test-123")
        ...
        assert openai_server.total_requests == 3

or stand-alone (for benchmarks): ``python -m tests.openai_server --port 8765 --latency 0.1``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import struct
import threading
from collections import Counter
from dataclasses import dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

ANSWER_STYLES = ("numbered", "bulleted", "q_prefix", "json", "preamble", "bold", "one_line", "malformed")
DELIMITER = "---------------------"
STOPWORDS = frozenset(
    "the a an and or of to in on for with by from as at is are was were be been this that these those "
    "it its into than then there their which who whom whose what when where why how not no can could "
    "would should may might will shall also such other more most some any each all both".split()
)
BATCH_OUTCOMES = ("completed", "expired", "failed")
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo", "text-embedding-3-small", "text-embedding-ada-002")


@dataclass
class ServerConfig:
    """What the server does; change it with :meth:`OpenAITestServer.configure` between or during runs."""

    seed: int = 0
    latency: float = 0.0  # seconds added to every request
    rate_429: float = 0.0  # fraction of chat requests answered 429 with Retry-After
    retry_after: float = 0.05  # the Retry-After header value, in seconds
    rate_500: float = 0.0  # fraction of chat requests answered 500
    rate_hang: float = 0.0  # fraction of chat requests that hang for `hang_seconds`
    hang_seconds: float = 30.0
    rate_malformed: float = 0.0  # fraction of chat answers that hold no question at all
    rate_broken_json: float = 0.0  # fraction of chat answers cut off mid-JSON (200, as a dropped proxy body)
    answer_style: str = "numbered"  # one of ANSWER_STYLES
    always_fail: Tuple[str, ...] = ()  # passages containing one of these strings always fail...
    fail_status: int = 500  # ...with this status (401, 400, ... for permanent errors)
    embedding_dim: int = 64
    # Batch API (/v1/files, /v1/batches): a batch moves validating -> in_progress -> finalizing -> its end,
    # one step per `batch_polls_per_state` retrieves; its lines get the chat answers above (faults included).
    batch_polls_per_state: int = 1
    batch_outcome: str = "completed"  # one of BATCH_OUTCOMES
    batch_lines_run: int = 0  # lines an "expired" batch (or a cancelled one) answers before it stops
    batch_fail_next: int = 0  # the next this many /v1/files or /v1/batches requests are answered `fail_status`
    # /v1/embeddings faults, decided per batch (a hash of its texts) and attempt:
    embed_rate_429: float = 0.0  # fraction answered 429 with Retry-After (`retry_after`)
    embed_rate_500: float = 0.0  # fraction answered 500
    embed_rate_hang: float = 0.0  # fraction that hang for `hang_seconds` before answering
    embed_rate_malformed: float = 0.0  # fraction answered 200 with JSON cut off mid-way
    embed_always_fail: Tuple[str, ...] = ()  # a batch with a text containing one of these fails with `fail_status`


def _words(text: str) -> List[str]:
    return re.findall(r"[A-Za-z][A-Za-z0-9_-]+", text)


def passage_of(prompt: str) -> str:
    """The passage in a prompt: the text between the first two delimiter lines, else the whole prompt."""
    parts = prompt.split(DELIMITER)
    return parts[1].strip() if len(parts) >= 3 else prompt.strip()


def passage_hash(text: str) -> str:
    """The key the server counts requests under; tests compute it from a node's text."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:16]


def make_questions(passage: str, n: int) -> List[str]:
    """``n`` distinct questions built from the passage's content words (deterministic)."""
    content = [w for w in dict.fromkeys(_words(passage)) if w.lower() not in STOPWORDS and len(w) > 2]
    if not content:
        content = ["this", "topic"]
    out = []
    for i in range(n):
        a = content[(2 * i) % len(content)]
        b = content[(2 * i + 1) % len(content)]
        templates = (
            "What does the text say about {a} and {b}?",
            "How is {a} related to {b}?",
            "Why does {a} matter for {b}?",
            "Which role does {a} play in {b}?",
        )
        question = templates[i % len(templates)].format(a=a, b=b)
        out.append(question if i < len(templates) else question[:-1] + f" (part {i + 1})?")
    return out


def render_answer(questions: List[str], style: str) -> str:
    """The answer text in a given style; the parser under test must recover ``questions``."""
    if style == "numbered":
        return "\n".join(f"{i}. {q}" for i, q in enumerate(questions, 1))
    if style == "bulleted":
        return "\n".join(f"- {q}" for q in questions)
    if style == "q_prefix":
        return "\n".join(f"Q{i}: {q}" for i, q in enumerate(questions, 1))
    if style == "json":
        return "```json\n" + json.dumps(questions) + "\n```"
    if style == "preamble":
        return f"Here are {len(questions)} questions based on the context:\n\n" + "\n".join(
            f"{i}) {q}" for i, q in enumerate(questions, 1)
        )
    if style == "bold":
        return "\n".join(f"**Question {i}:** {q}" for i, q in enumerate(questions, 1))
    if style == "one_line":
        return " ".join(questions)
    if style == "malformed":
        return "I'm sorry, but I cannot comply with that request"
    raise ValueError(f"unknown answer_style {style!r}; choose one of {ANSWER_STYLES}")


def judge_answer(prompt: str, passage: str) -> str:
    """A relevance judge's answer: "Yes" when the ``Query:`` line shares a content word with the passage."""
    match = re.search(r"Query:\s*(.+)", prompt)
    query = match.group(1) if match else ""
    content = lambda t: {w.lower() for w in _words(t) if w.lower() not in STOPWORDS and len(w) > 2}  # noqa: E731
    return "Yes." if content(query) & content(passage) else "No."


def hashed_embedding(text: str, dim: int) -> List[float]:
    """A normalized hashed bag of words: texts sharing words get similar vectors."""
    vec = [0.0] * dim
    for w in _words(text.lower()):
        h = int.from_bytes(hashlib.md5(w.encode()).digest()[:8], "little")
        vec[h % dim] += 1.0 if (h >> 32) & 1 else -1.0
    norm = sum(v * v for v in vec) ** 0.5
    if norm == 0:
        vec[0], norm = 1.0, 1.0
    return [v / norm for v in vec]


@dataclass
class _Reply:
    """One chat answer: status, JSON payload, extra headers, ``cut`` (bytes kept of a broken JSON), streamed parts."""

    status: int
    payload: Dict[str, Any]
    headers: Optional[Dict[str, str]] = None
    cut: Optional[int] = None
    stream: Optional[Tuple[str, str, str, Dict[str, int]]] = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default 5 resets connections when many clients connect at once


class OpenAITestServer:
    """The running server: its URL, its configuration and what it has seen."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **config: Any) -> None:
        self.config = ServerConfig()
        self.configure(**config)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.reset_counters()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:  # keep test output quiet
                return

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                server._handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                server._handle(self, "POST")

        self.httpd = _Server((host, port), Handler)
        self.host, self.port = self.httpd.server_address[:2]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # ------------------------------------------------------------------ control
    @property
    def base_url(self) -> str:
        """The ``api_base`` / ``base_url`` to give clients, ending in ``/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def configure(self, **changes: Any) -> "OpenAITestServer":
        """Change fault injection or answer style; unknown names raise ``TypeError``."""
        names = {f.name for f in fields(ServerConfig)}
        for key, value in changes.items():
            if key not in names:
                raise TypeError(f"unknown server option {key!r}; valid: {sorted(names)}")
            if key == "answer_style" and value not in ANSWER_STYLES:
                raise ValueError(f"unknown answer_style {value!r}; choose one of {ANSWER_STYLES}")
            if key == "batch_outcome" and value not in BATCH_OUTCOMES:
                raise ValueError(f"unknown batch_outcome {value!r}; choose one of {BATCH_OUTCOMES}")
            setattr(self.config, key, value)
        return self

    def reset_counters(self) -> None:
        """Forget every request seen so far."""
        self.total_requests = 0
        self.in_flight = 0
        self.max_in_flight = 0  # most requests handled at the same time
        self.chat_requests = 0
        self.embedding_requests = 0
        self.embedding_batches: Counter = Counter()  # hash of a batch's texts -> requests (all outcomes)
        self.embedding_texts: Counter = Counter()  # text -> times it was sent for embedding (all outcomes)
        self.embedded_texts: Counter = Counter()  # text -> times its vector was answered (200 with a vector)
        self.per_passage: Counter = Counter()  # passage hash -> chat requests (all outcomes)
        self.answered: Counter = Counter()  # passage hash -> successful chat answers
        self.status_counts: Counter = Counter()
        self.auth_headers: List[str] = []
        self.bodies: List[Dict[str, Any]] = []
        self.reset_batches()

    def start(self) -> "OpenAITestServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "OpenAITestServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals
    def _chance(self, kind: str, key: str, attempt: int) -> float:
        digest = hashlib.sha256(f"{self.config.seed}|{kind}|{key}|{attempt}".encode()).digest()
        return int.from_bytes(digest[:8], "little") / 2**64

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._route(h, method)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _route(self, h: BaseHTTPRequestHandler, method: str) -> None:
        path = h.path.split("?")[0].rstrip("/")
        if "/files" in path or "/batches" in path:
            return self._batch_route(h, method, path)
        body: Dict[str, Any] = {}
        if method == "POST":
            raw = h.rfile.read(int(h.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                return self._send(h, 400, {"error": {"message": "invalid JSON body", "type": "invalid_request_error"}})
        with self._lock:
            self.total_requests += 1
            self.auth_headers.append(h.headers.get("Authorization", ""))
            self.bodies.append(body)
        if self.config.latency:
            self._stop.wait(self.config.latency)
        if method == "GET" and path.endswith("/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "test"} for m in MODELS]
            return self._send(h, 200, {"object": "list", "data": data})
        if method == "POST" and path.endswith("/chat/completions"):
            return self._chat(h, body)
        if method == "POST" and path.endswith("/completions"):
            return self._chat(h, {**body, "messages": [{"role": "user", "content": body.get("prompt", "")}]}, legacy=True)
        if method == "POST" and path.endswith("/embeddings"):
            return self._embeddings(h, body)
        return self._send(h, 404, {"error": {"message": f"no route {method} {path}", "type": "invalid_request_error"}})

    def _chat(self, h: BaseHTTPRequestHandler, body: Dict[str, Any], legacy: bool = False) -> None:
        reply = self._chat_reply(body, legacy)
        if reply.stream is not None:
            return self._stream(h, *reply.stream)
        return self._send(h, reply.status, reply.payload, headers=reply.headers, cut=reply.cut)

    def _chat_reply(self, body: Dict[str, Any], legacy: bool = False) -> "_Reply":
        """What the server answers to one chat request (over HTTP or as a batch line), faults included."""
        messages = body.get("messages") or []
        prompt = "\n".join(
            m["content"] if isinstance(m.get("content"), str) else " ".join(p.get("text", "") for p in m.get("content") or [])
            for m in messages
            if m.get("role") != "system"
        )
        passage = passage_of(prompt)
        key = passage_hash(passage)
        with self._lock:
            self.chat_requests += 1
            self.per_passage[key] += 1
            attempt = self.per_passage[key]
        cfg = self.config
        if any(s in passage for s in cfg.always_fail):
            return _Reply(cfg.fail_status, {"error": {"message": "injected permanent failure", "type": "server_error"}})
        if self._chance("429", key, attempt) < cfg.rate_429:
            return _Reply(
                429, {"error": {"message": "Rate limit reached (injected)", "type": "rate_limit_error"}},
                headers={"Retry-After": f"{cfg.retry_after:g}", "retry-after-ms": str(int(cfg.retry_after * 1000))},
            )
        if self._chance("500", key, attempt) < cfg.rate_500:
            return _Reply(500, {"error": {"message": "Internal error (injected)", "type": "server_error"}})
        if self._chance("hang", key, attempt) < cfg.rate_hang:
            self._stop.wait(cfg.hang_seconds)
        if "yes or no" in prompt.lower():
            text = judge_answer(prompt, passage)
        else:
            match = re.search(r"(\d+)\s+(?:\w+\s+){0,3}questions", prompt)
            n = int(match.group(1)) if match else 2
            style = "malformed" if self._chance("malformed", key, attempt) < cfg.rate_malformed else cfg.answer_style
            text = render_answer(make_questions(passage, n), style)
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        with self._lock:
            self.answered[key] += 1
        model = body.get("model", "gpt-4o-mini")
        rid = f"chatcmpl-{key}-{attempt}"
        if legacy:
            payload = {"id": rid, "object": "text_completion", "created": 0, "model": model,
                       "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}], "usage": usage}
            return _Reply(200, payload)
        if body.get("stream"):
            return _Reply(200, {}, stream=(rid, model, text, usage))
        payload = {
            "id": rid, "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": usage,
        }
        if self._chance("broken_json", key, attempt) < cfg.rate_broken_json:
            return _Reply(200, payload, cut=40)
        return _Reply(200, payload)

    def _stream(self, h: BaseHTTPRequestHandler, rid: str, model: str, text: str, usage: Dict[str, int]) -> None:
        chunks = []
        for i, piece in enumerate(re.findall(r"\S+\s*|\s+", text)):
            delta = {"content": piece} if i else {"role": "assistant", "content": piece}
            chunks.append({"id": rid, "object": "chat.completion.chunk", "created": 0, "model": model,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
        chunks.append({"id": rid, "object": "chat.completion.chunk", "created": 0, "model": model,
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage})
        data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        raw = data.encode()
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)
        with self._lock:
            self.status_counts[200] += 1

    def _embeddings(self, h: BaseHTTPRequestHandler, body: Dict[str, Any]) -> None:
        """Hashed bag-of-words vectors (texts sharing words are near), with the ``embed_*`` faults."""
        inputs = body.get("input", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        texts = [t if isinstance(t, str) else " ".join(f"t{x}" for x in t) for t in inputs]  # token ids as words
        key = hashlib.sha256("\0".join(texts).encode("utf-8")).hexdigest()[:16]
        with self._lock:
            self.embedding_requests += 1
            self.embedding_batches[key] += 1
            self.embedding_texts.update(texts)
            attempt = self.embedding_batches[key]
        cfg = self.config
        if any(s in t for t in texts for s in cfg.embed_always_fail):
            return self._send(h, cfg.fail_status, {"error": {"message": "injected permanent failure", "type": "invalid_request_error"}})
        if self._chance("embed-429", key, attempt) < cfg.embed_rate_429:
            return self._send(
                h, 429, {"error": {"message": "Rate limit reached (injected)", "type": "rate_limit_error"}},
                headers={"Retry-After": f"{cfg.retry_after:g}", "retry-after-ms": str(int(cfg.retry_after * 1000))},
            )
        if self._chance("embed-500", key, attempt) < cfg.embed_rate_500:
            return self._send(h, 500, {"error": {"message": "Internal error (injected)", "type": "server_error"}})
        if self._chance("embed-hang", key, attempt) < cfg.embed_rate_hang:
            self._stop.wait(cfg.hang_seconds)
        dim = int(body.get("dimensions") or cfg.embedding_dim)
        data = []
        for i, text in enumerate(texts):
            vec = hashed_embedding(text, dim)
            if body.get("encoding_format") == "base64":
                emb: Any = base64.b64encode(struct.pack(f"<{dim}f", *vec)).decode()
            else:
                emb = vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        tokens = sum(len(t.split()) for t in texts)
        payload = {"object": "list", "data": data, "model": body.get("model", "text-embedding-3-small"),
                   "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        if self._chance("embed-malformed", key, attempt) < cfg.embed_rate_malformed:
            return self._send(h, 200, payload, cut=40)
        with self._lock:
            self.embedded_texts.update(texts)
        return self._send(h, 200, payload)

    # ------------------------------------------------------------------ Batch API: /v1/files, /v1/batches
    def reset_batches(self) -> None:
        """Forget every uploaded file and batch."""
        self.files: Dict[str, Dict[str, Any]] = {}  # file id -> {"meta": file object, "data": bytes}
        self.batches: Dict[str, Dict[str, Any]] = {}  # batch id -> batch object (plus "_polls")
        self.batches_created = 0
        self.files_uploaded = 0

    def _batch_route(self, h: BaseHTTPRequestHandler, method: str, path: str) -> None:
        raw = h.rfile.read(int(h.headers.get("Content-Length") or 0)) if method == "POST" else b""
        with self._lock:
            self.total_requests += 1
            self.auth_headers.append(h.headers.get("Authorization", ""))
            fail = self.config.batch_fail_next > 0
            self.config.batch_fail_next -= int(fail)
        if fail:
            return self._send(h, self.config.fail_status, {"error": {"message": "injected Batch API failure",
                                                                     "type": "server_error"}})
        parts = path.split("/")
        tail = parts[parts.index("files" if "/files" in path else "batches") + 1:]
        if "/files" in path:
            if method == "POST" and not tail:
                return self._upload(h, raw)
            file = self.files.get(tail[0]) if tail else None
            if file is None:
                return self._send(h, 404, {"error": {"message": f"no file {path}", "type": "invalid_request_error"}})
            if tail[1:] == ["content"]:
                return self._send_bytes(h, 200, file["data"], "application/jsonl")
            return self._send(h, 200, file["meta"])
        if method == "POST" and not tail:
            return self._create_batch(h, json.loads(raw or b"{}"))
        with self._lock:
            batch = self.batches.get(tail[0]) if tail else None
            if batch is not None and tail[1:] == ["cancel"]:
                batch["status"], batch["_cancel"] = "cancelling", True
            elif batch is not None:
                self._advance_batch(batch)
            view = {k: v for k, v in batch.items() if not k.startswith("_")} if batch else None
        if view is None:
            return self._send(h, 404, {"error": {"message": f"no batch {path}", "type": "invalid_request_error"}})
        return self._send(h, 200, view)

    def _upload(self, h: BaseHTTPRequestHandler, raw: bytes) -> None:
        import email
        import email.policy

        message = email.message_from_bytes(b"Content-Type: " + h.headers.get("Content-Type", "").encode() + b"\r\n\r\n"
                                           + raw, policy=email.policy.HTTP)
        fields_: Dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields_[name] = (part.get_filename(), part.get_payload(decode=True))
        if "file" not in fields_ or fields_.get("purpose", (None, b""))[1] != b"batch":
            return self._send(h, 400, {"error": {"message": "expected multipart fields file and purpose=batch",
                                                 "type": "invalid_request_error"}})
        filename, data = fields_["file"]
        with self._lock:
            self.files_uploaded += 1
        meta = self._store_file(data, filename or "upload.jsonl", "batch")
        return self._send(h, 200, meta)

    def _store_file(self, data: bytes, filename: str, purpose: str) -> Dict[str, Any]:
        with self._lock:
            file_id = f"file-{len(self.files) + 1:04d}"
            meta = {"id": file_id, "object": "file", "bytes": len(data), "created_at": 0, "filename": filename,
                    "purpose": purpose, "status": "processed"}
            self.files[file_id] = {"meta": meta, "data": data}
        return meta

    def _create_batch(self, h: BaseHTTPRequestHandler, body: Dict[str, Any]) -> None:
        if body.get("input_file_id") not in self.files:
            return self._send(h, 400, {"error": {"message": "unknown input_file_id", "type": "invalid_request_error"}})
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return self._send(h, 400, {"error": {"message": "endpoint must be /v1/chat/completions and "
                                                            "completion_window 24h", "type": "invalid_request_error"}})
        with self._lock:
            self.batches_created += 1
            batch_id = f"batch_{self.batches_created:04d}"
            lines = self.files[body["input_file_id"]]["data"].count(b"\n")
            batch = {"id": batch_id, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                     "input_file_id": body["input_file_id"], "completion_window": "24h", "status": "validating",
                     "output_file_id": None, "error_file_id": None, "created_at": 0,
                     "request_counts": {"total": lines, "completed": 0, "failed": 0},
                     "metadata": body.get("metadata"), "_polls": 0}
            self.batches[batch_id] = batch
            view = {k: v for k, v in batch.items() if not k.startswith("_")}
        return self._send(h, 200, view)

    def _advance_batch(self, batch: Dict[str, Any]) -> None:
        """One retrieve's worth of progress (called under the lock); at its end the lines are answered."""
        if batch["status"] in ("completed", "failed", "expired", "cancelled") or batch.get("_running"):
            return
        batch["_polls"] += 1
        step = batch["_polls"] // max(1, self.config.batch_polls_per_state)
        outcome = "cancelled" if batch.get("_cancel") else self.config.batch_outcome
        if outcome == "failed" and step >= 1:
            batch["status"] = "failed"
            batch["errors"] = {"object": "list", "data": [
                {"code": "invalid_request", "message": "injected validation failure", "line": 1, "param": None}]}
            return
        if outcome != "cancelled" and step < 3:
            batch["status"] = ("validating", "in_progress", "finalizing")[step]
            return
        batch["status"], batch["_running"] = "finalizing", True  # a concurrent retrieve sees it still finalizing
        self._lock.release()  # the lines go through the chat logic, which takes the lock itself
        try:
            self._run_batch(batch, outcome)
        finally:
            self._lock.acquire()

    def _run_batch(self, batch: Dict[str, Any], outcome: str) -> None:
        lines = [json.loads(x) for x in self.files[batch["input_file_id"]]["data"].split(b"\n") if x.strip()]
        out: List[str] = []
        errors: List[str] = []
        for i, line in enumerate(lines):
            rid = f"batch_req_{batch['id']}_{i}"
            if outcome in ("expired", "cancelled") and i >= self.config.batch_lines_run:
                code = "batch_expired" if outcome == "expired" else "batch_cancelled"
                errors.append(json.dumps({"id": rid, "custom_id": line["custom_id"], "response": None, "error": {
                    "code": code, "message": f"This request could not be executed before the batch {outcome}."}}))
                continue
            if line.get("method") != "POST" or line.get("url") != batch["endpoint"]:
                reply = _Reply(400, {"error": {"message": "line url/method do not match the batch endpoint"}})
            else:
                reply = self._chat_reply(line["body"])
            record = json.dumps({"id": rid, "custom_id": line["custom_id"], "error": None, "response": {
                "status_code": reply.status, "request_id": rid, "body": reply.payload}})
            (out if reply.status == 200 else errors).append(record)
        if out:
            batch["output_file_id"] = self._store_file("".join(x + "\n" for x in out).encode(), "output.jsonl",
                                                       "batch_output")["id"]
        if errors:
            batch["error_file_id"] = self._store_file("".join(x + "\n" for x in errors).encode(), "errors.jsonl",
                                                      "batch_output")["id"]
        batch["request_counts"] = {"total": len(lines), "completed": len(out), "failed": len(errors)}
        batch["status"] = outcome

    def _send_bytes(self, h: BaseHTTPRequestHandler, status: int, raw: bytes, content_type: str) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)
        with self._lock:
            self.status_counts[status] += 1

    def _send(self, h: BaseHTTPRequestHandler, status: int, payload: Dict[str, Any],
              headers: Optional[Dict[str, str]] = None, cut: Optional[int] = None) -> None:
        raw = json.dumps(payload).encode()[:cut]  # ``cut``: only the first bytes of the JSON (a broken answer)
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(raw)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (time-out)
            pass
        with self._lock:
            self.status_counts[status] += 1


@pytest.fixture
def openai_server() -> Iterator[OpenAITestServer]:
    """A fresh local OpenAI-compatible server on 127.0.0.1 and a free port, for one test."""
    with OpenAITestServer() as server:
        yield server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--answer-style", default="numbered", choices=ANSWER_STYLES)
    args = parser.parse_args()
    server = OpenAITestServer(port=args.port, latency=args.latency, answer_style=args.answer_style)
    print(f"serving on {server.base_url}", flush=True)
    server.httpd.serve_forever()


if __name__ == "__main__":
    main()
