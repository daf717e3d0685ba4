"""Question generation through OpenAI's Batch API: half the price, outside the live rate limits.

:class:`BatchQuestionGenerator` writes one request line per node that still needs questions (the
same chat-completions body the live path sends), uploads the file, creates a batch, polls it,
downloads and parses the results into the usual dataset, and lists the nodes that got no
questions with their reason. OpenAI runs a batch within its 24 h completion window.

Resuming: the uploaded file's id and the batch id are saved beside the checkpoint
(``<checkpoint>.batches.json``) *before* waiting, so a process stopped at any point after the
submission reattaches to the same batch when rerun and never submits (nor pays for) it twice.
Finished nodes go to the checkpoint as usual, so nodes answered earlier, by this path or by the
live one, are not sent again. Lines of an expired or cancelled batch that never ran are reported
as failures and are the only ones a rerun submits.

Example::

    from llama_index.llms.openai import OpenAI
    from llama_index_bge_finetune.generation import BatchQuestionGenerator

    gen = BatchQuestionGenerator(llm=OpenAI(model="gpt-4o-mini"), poll_interval=60)
    result = gen.generate(nodes, checkpoint_path="cache/generation.jsonl")  # blocks until the batch is done
    result.dataset.save_json("train.json")
    print(result.usage.summary(), result.failures)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple, Union

from llama_index.core.llms import LLM
from llama_index.core.schema import BaseNode

from llama_index_bge_finetune import outputs
from llama_index_bge_finetune.errors import GenerationError
from llama_index_bge_finetune.generation._common import build_dataset, skip_empty, unique_nodes
from llama_index_bge_finetune.generation.batch_cost import CostEstimate, estimate_cost
from llama_index_bge_finetune.generation.checkpoint import Checkpoint
from llama_index_bge_finetune.generation.llm_generator import ProgressCallback, QuestionGenerator
from llama_index_bge_finetune.generation.openai_direct import MalformedAnswer, chat_model_kwargs, parse_chat_completion, request_body
from llama_index_bge_finetune.generation.prompts import DEFAULT_QA_GENERATE_PROMPT_TMPL
from llama_index_bge_finetune.generation.result import GenerationResult, NodeFailure, Usage
from llama_index_bge_finetune.retries import RetryPolicy, redact_secrets

logger = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
#: OpenAI's limits for one batch: 50,000 requests and a 200 MB input file (this stays below both).
MAX_REQUESTS_PER_BATCH = 50_000
MAX_BATCH_FILE_BYTES = 190 * 1024 * 1024
FINAL_STATES = frozenset({"completed", "failed", "expired", "cancelled"})
_RERUN = "; rerun the same command to submit the missing nodes only"
_NOT_RUN = {
    "expired": "the batch expired (its completion window ended) before this request ran",
    "cancelled": "the batch was cancelled before this request ran",
    "completed": "the batch finished without an answer for this request",
}


class BatchQuestionGenerator(QuestionGenerator):
    """Writes questions per node through OpenAI's Batch API (half the live price, no live rate limits).

    Takes the live generator's model, prompt and question count, and gives the same dataset for
    the same answers; it blocks until the batch is finished (OpenAI: within 24 h). It needs
    llama-index's ``OpenAI`` chat model (key, base URL and options are taken from it; the key is
    sent to the server only). Before submitting, the estimated cost at the live and at the Batch
    API price is logged (and passed to ``on_estimate``).

    Args:
        llm: a ``llama_index.llms.openai.OpenAI`` chat model; ``None`` uses ``Settings.llm``.
        num_questions_per_chunk: questions asked per node.
        qa_generate_prompt_tmpl: prompt with ``{context_str}`` and ``{num_questions_per_chunk}``.
        poll_interval: seconds between two status checks of a running batch.
        max_wait: seconds to wait for the batches before giving up with a :class:`GenerationError`
            (the batches keep running; a rerun collects them); ``None`` waits until they end.
        completion_window: the batch's completion window (OpenAI accepts ``"24h"``).
        max_requests_per_batch: requests per batch; more nodes are split over several batches.
        on_estimate: called with the :class:`~llama_index_bge_finetune.generation.batch_cost.CostEstimate`
            before anything is uploaded.
        retry_policy: how each file and batch call (upload, create, status, download) is retried
            and timed out (default: :class:`~llama_index_bge_finetune.retries.RetryPolicy`'s
            defaults); the openai client's own retries are off, so a call is never retried twice over.

    Example::

        from llama_index.llms.openai import OpenAI

        gen = BatchQuestionGenerator(llm=OpenAI(model="gpt-4o-mini"), poll_interval=60)
        result = gen.generate(nodes, checkpoint_path="cache/generation.jsonl")
    """

    def __init__(
        self,
        llm: Optional[LLM] = None,
        num_questions_per_chunk: int = 2,
        qa_generate_prompt_tmpl: str = DEFAULT_QA_GENERATE_PROMPT_TMPL,
        poll_interval: float = 30.0,
        max_wait: Optional[float] = None,
        completion_window: str = "24h",
        max_requests_per_batch: int = MAX_REQUESTS_PER_BATCH,
        on_estimate: Optional[Callable[[CostEstimate], None]] = None,
        retry_policy: Optional[RetryPolicy] = None,
    ) -> None:
        super().__init__(llm=llm, num_questions_per_chunk=num_questions_per_chunk,
                         qa_generate_prompt_tmpl=qa_generate_prompt_tmpl, retry_policy=retry_policy)
        if not poll_interval > 0:
            raise GenerationError(f"poll_interval must be a positive number of seconds, got {poll_interval!r}.")
        if max_wait is not None and not max_wait > 0:
            raise GenerationError(f"max_wait must be a positive number of seconds or None, got {max_wait!r}.")
        if not isinstance(max_requests_per_batch, int) or not 1 <= max_requests_per_batch <= MAX_REQUESTS_PER_BATCH:
            raise GenerationError(f"max_requests_per_batch must be an integer from 1 to {MAX_REQUESTS_PER_BATCH:,} "
                                  f"(OpenAI's limit), got {max_requests_per_batch!r}.")
        kwargs = chat_model_kwargs(self.llm)
        if kwargs is None:
            raise GenerationError(
                f"The Batch API path needs llama-index's OpenAI chat model (llama_index.llms.openai.OpenAI), "
                f"got {type(self.llm).__name__}. Pass llm=OpenAI(model=...), or generate without the Batch API."
            )
        self.poll_interval = float(poll_interval)
        self.max_wait = max_wait
        self.completion_window = completion_window
        self.max_requests_per_batch = max_requests_per_batch
        self.on_estimate = on_estimate
        self._model_kwargs: Dict[str, Any] = kwargs

    uses_batch_api = True

    def describe(self) -> str:
        """A short label for the CLI, e.g. ``OpenAI gpt-4o-mini (Batch API)``."""
        return super().describe() + " (Batch API)"

    # ------------------------------------------------------------------ public
    async def agenerate(self, nodes: Sequence[BaseNode], checkpoint_path: Optional[Union[str, Path]] = None,
                        on_progress: Optional[ProgressCallback] = None) -> GenerationResult:
        """:meth:`generate` in a worker thread (waiting on a batch is mostly sleeping)."""
        return await asyncio.to_thread(self.generate, nodes, checkpoint_path, on_progress)

    def generate(self, nodes: Sequence[BaseNode], checkpoint_path: Optional[Union[str, Path]] = None,
                 on_progress: Optional[ProgressCallback] = None) -> GenerationResult:
        """Generate questions for ``nodes`` through batches; ``on_progress(done, total)`` while polling.

        Without ``checkpoint_path`` nothing is kept between runs: a stopped run cannot reattach to
        its batch (pass one for anything that takes long).
        """
        pairs, skipped = skip_empty(unique_nodes(nodes))
        usage = Usage(model=self.model_name.split(":", 1)[1], batch_api=True)
        ckpt = Checkpoint(checkpoint_path) if checkpoint_path is not None else None
        questions, todo = self._plan(pairs, ckpt, usage)
        if ckpt is None:
            logger.warning("No checkpoint path: a stopped run cannot reattach to its batch and would submit again.")
        run = _BatchRun(self, todo, ckpt, usage, _BatchState.beside(checkpoint_path), on_progress, len(pairs))
        try:
            run.collect_recorded()
            missing = [key for key in todo if key not in run.answered and key not in run.seen]
            if missing:
                run.submit(missing)
                run.collect_recorded()
        finally:
            if ckpt is not None:
                ckpt.close()
            run.close()
        failures: List[NodeFailure] = []
        for key, (_, node_ids) in todo.items():
            if key in run.answered:
                for node_id in node_ids:
                    questions[node_id] = run.answered[key]
            else:
                reason = run.failed.get(key, "not submitted")
                failures.extend(NodeFailure(node_id=n, reason=reason, attempts=1) for n in node_ids)
        order = {node_id: i for i, (node_id, _) in enumerate(pairs)}
        failures.sort(key=lambda f: order[f.node_id])
        logger.info("Batch generation done: %s; %d nodes failed.", usage.summary(), len(failures))
        return GenerationResult(dataset=build_dataset(pairs, questions, self.query_source),
                                failures=failures + skipped, usage=usage)

    def request_line(self, key: str, text: str) -> Dict[str, Any]:
        """The batch input line asking for one node's questions: the live path's body, ``custom_id`` = ``key``."""
        return {"custom_id": key, "method": "POST", "url": ENDPOINT,
                "body": request_body(self._model_kwargs, self._prompt(text))}


def warn_if_batches_pending(checkpoint_path: Union[str, Path]) -> None:
    """Warn when batches submitted for ``checkpoint_path`` are not collected (a live run would pay for them again)."""
    state = _BatchState.beside(checkpoint_path)
    if state.records:
        ids = ", ".join(str(r.get("batch_id") or r.get("input_file_id")) for r in state.records)
        logger.warning("Batches submitted by an earlier run (%s) are recorded in %s and not collected yet; rerun "
                       "with the Batch API (--batch-api) to collect them instead of asking for their chunks again.",
                       ids, state.path)


class _BatchState:
    """The batches submitted for one checkpoint and not yet collected, saved atomically as JSON."""

    def __init__(self, path: Optional[Path]) -> None:
        self.path = path
        self.records: List[Dict[str, Any]] = []
        if path is not None and path.is_file():
            try:
                self.records = list(json.loads(path.read_text(encoding="utf-8"))["batches"])
            except (ValueError, KeyError, TypeError) as exc:
                raise GenerationError(
                    f"The batch record {path} is unreadable ({exc}). It lists the batches already submitted; "
                    "restore it, or delete it to submit the missing nodes again (batches it listed are paid anyway)."
                ) from exc

    @classmethod
    def beside(cls, checkpoint_path: Optional[Union[str, Path]]) -> "_BatchState":
        if checkpoint_path is None:
            return cls(None)
        ckpt = Path(checkpoint_path)
        return cls(ckpt.with_name(ckpt.stem + ".batches.json"))

    def folder(self) -> Optional[Path]:
        return self.path.parent if self.path is not None else None

    def save(self) -> None:
        if self.path is not None:
            outputs.write_text(self.path, json.dumps({"batches": self.records}, indent=1) + "\n")


@dataclass
class _Poll:
    status: str
    completed: int
    failed: int
    batch: Any


class _BatchRun:
    """One run's batches: submit, wait, collect; the answers land in the checkpoint as they are read."""

    def __init__(self, gen: BatchQuestionGenerator, todo: Dict[str, Tuple[str, List[str]]], ckpt: Optional[Checkpoint],
                 usage: Usage, state: _BatchState, on_progress: Optional[ProgressCallback], total: int) -> None:
        self.gen, self.todo, self.ckpt, self.usage, self.state = gen, todo, ckpt, usage, state
        self.on_progress, self.total = on_progress, total
        self.base_done = total - sum(len(ids) for _, ids in todo.values())
        self.answered: Dict[str, List[str]] = {}
        self.failed: Dict[str, str] = {}
        self.seen: Set[str] = set()  # keys that were in a batch collected by this run
        policy = gen.retry_policy
        self._client = gen.llm._get_client().with_options(max_retries=0, timeout=policy.timeout)
        self._temp: Optional[Any] = None

    # -------------------------------------------------------------- submit
    def submit(self, keys: Sequence[str]) -> None:
        lines = [self.gen.request_line(key, self.todo[key][0]) for key in keys]
        estimate = estimate_cost([line["body"] for line in lines], self.usage.model, self.gen.num_questions_per_chunk,
                                 self.ckpt)
        logger.info("%s", estimate.summary())
        if self.gen.on_estimate is not None:
            self.gen.on_estimate(estimate)
        for part in _split(lines, self.gen.max_requests_per_batch, MAX_BATCH_FILE_BYTES):
            self._submit_one(part)

    def _submit_one(self, lines: List[str]) -> None:
        digest = hashlib.sha256("".join(json.loads(line)["custom_id"] for line in lines).encode()).hexdigest()[:12]
        path = self._folder() / f"{self.state.path.stem if self.state.path else 'generation'}-{digest}.input.jsonl"
        outputs.write_text(path, "".join(line + "\n" for line in lines))
        # A path, not an open file: a retried upload reads the file again from its start.
        uploaded = self._call("upload the batch input file", self._client.files.create, file=path, purpose="batch")
        record: Dict[str, Any] = {"input_file_id": uploaded.id, "batch_id": None, "input_path": str(path),
                                  "requests": len(lines), "model": self.usage.model}
        self.state.records.append(record)
        self.state.save()  # a stop from here on reuses the uploaded file
        self._create(record)

    def _create(self, record: Dict[str, Any]) -> None:
        batch = self._call("create the batch", self._client.batches.create, input_file_id=record["input_file_id"],
                           endpoint=ENDPOINT, completion_window=self.gen.completion_window,
                           metadata={"source": "llama-index-bge-finetune question generation"})
        record["batch_id"] = batch.id
        self.state.save()  # before any waiting: a rerun reattaches instead of submitting again
        where = f" (recorded in {self.state.path})" if self.state.path else ""
        logger.info("Submitted batch %s with %d requests%s; if this process stops, rerun the same command: it waits "
                    "for this batch instead of submitting again.", batch.id, record["requests"], where)

    # -------------------------------------------------------------- wait and collect
    def collect_recorded(self) -> None:
        """Wait for every recorded batch to end, then read its answers and forget it."""
        for record in self.state.records:
            if not record.get("batch_id"):  # stopped between upload and creation: the file is already uploaded
                self._create(record)
        if not self.state.records:
            return
        polls = self._wait()
        for record in list(self.state.records):
            self._collect(record, polls[record["batch_id"]])
            self.state.records.remove(record)
            self.state.save()
            Path(record["input_path"]).unlink(missing_ok=True)

    def _wait(self) -> Dict[str, _Poll]:
        start = time.monotonic()
        last: Dict[str, str] = {}
        while True:
            polls = {r["batch_id"]: self._poll(r["batch_id"]) for r in self.state.records}
            for batch_id, poll in polls.items():
                if last.get(batch_id) != poll.status:
                    logger.info("Batch %s: %s (%d requests done, %d failed).", batch_id, poll.status, poll.completed,
                                poll.failed)
                    last[batch_id] = poll.status
            if self.on_progress:
                done = self.base_done + sum(p.completed + p.failed for p in polls.values())
                self.on_progress(min(done, self.total), self.total)
            if all(p.status in FINAL_STATES for p in polls.values()):
                return polls
            waited = time.monotonic() - start
            if self.gen.max_wait is not None and waited >= self.gen.max_wait:
                running = ", ".join(f"{b} ({p.status})" for b, p in polls.items() if p.status not in FINAL_STATES)
                raise GenerationError(
                    f"The batches are still running after {waited:.0f} s: {running}. They keep running at OpenAI; "
                    "rerun the same command later to collect them (they are not submitted again)."
                )
            time.sleep(self.gen.poll_interval)

    def _poll(self, batch_id: str) -> _Poll:
        batch = self._call(f"check batch {batch_id}", self._client.batches.retrieve, batch_id)
        counts = getattr(batch, "request_counts", None)
        return _Poll(status=str(batch.status), completed=int(getattr(counts, "completed", 0) or 0),
                     failed=int(getattr(counts, "failed", 0) or 0), batch=batch)

    def _collect(self, record: Dict[str, Any], poll: _Poll) -> None:
        batch = poll.batch
        submitted = set(_input_keys(Path(record["input_path"])))
        for line in self._download(batch.output_file_id):
            self._read_line(line)
        for line in self._download(getattr(batch, "error_file_id", None)):
            self._read_line(line)
        self.seen |= submitted
        if poll.status == "failed":
            errors = getattr(getattr(batch, "errors", None), "data", None) or []
            detail = "; ".join(f"{getattr(e, 'code', '')}: {getattr(e, 'message', '')}" for e in errors[:3])
            reason = f"the batch failed ({detail or 'no reason given'})"
        else:
            reason = _NOT_RUN.get(poll.status, f"the batch ended as {poll.status}")
        for key in submitted:
            if key in self.todo and key not in self.answered and key not in self.failed:
                self.failed[key] = reason + _RERUN
        answered = sum(1 for k in submitted if k in self.answered)
        logger.info("Batch %s %s: %d of %d requests gave questions.", batch.id, poll.status, answered, len(submitted))
        if answered < len(submitted):
            logger.warning("Batch %s %s: %d requests got no questions (%s); a rerun submits only those.", batch.id,
                           poll.status, len(submitted) - answered, reason if poll.status != "completed" else
                           "see the failures for each node's reason")

    def _download(self, file_id: Optional[str]) -> Iterator[Dict[str, Any]]:
        if not file_id:
            return
        content = self._call(f"download file {file_id}", self._client.files.content, file_id)
        for raw in content.content.split(b"\n"):
            if not raw.strip():
                continue
            try:
                yield json.loads(raw)
            except ValueError:
                logger.warning("Ignoring an unreadable line in batch file %s: %r", file_id, raw[:80])

    def _read_line(self, line: Dict[str, Any]) -> None:
        key = line.get("custom_id")
        if key not in self.todo or key in self.answered:
            return
        self.seen.add(key)
        text = self.todo[key][0]
        response = line.get("response") or {}
        status = response.get("status_code")
        if status != 200:
            error = line.get("error") or (response.get("body") or {}).get("error") or {}
            message = error.get("message") if isinstance(error, dict) else str(error)
            code = error.get("code") if isinstance(error, dict) else None
            head = f"HTTP {status}" if status else f"batch error {code or ''}".rstrip()
            hint = "" if status else _RERUN  # not run (expired, cancelled): the next run submits it again
            self.failed[key] = f"{head}: {redact_secrets(str(message or 'no message'))[:200]}{hint}"
            return
        self.usage.requests += 1
        try:
            answer = parse_chat_completion(json.dumps(response.get("body")).encode())
        except MalformedAnswer as exc:
            self.failed[key] = f"MalformedAnswer: {str(exc)[:200]}"
            return
        self.usage.prompt_tokens += answer.prompt_tokens
        self.usage.completion_tokens += answer.completion_tokens
        found = self.gen._parse_answer(answer.text, text)
        if not found:
            self.failed[key] = f"the answer held no usable question: {answer.text[:80]!r}"
            return
        self.answered[key] = found
        self.failed.pop(key, None)
        if self.ckpt is not None:
            self.ckpt.append(key, {"questions": found, "model": self.gen.model_name})

    # -------------------------------------------------------------- plumbing
    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import openai

        try:
            return self.gen.retry_policy.call(lambda: fn(*args, **kwargs))
        except openai.OpenAIError as exc:
            kept = (f" (the submitted batches are recorded in {self.state.path}: rerun the same command to pick "
                    "them up, or delete that file to forget them)") if self.state.records and self.state.path else ""
            raise GenerationError(
                f"Could not {what} through the OpenAI Batch API: {type(exc).__name__}: "
                f"{redact_secrets(str(exc))[:300]}{kept}. Check OPENAI_API_BASE, the network and the key."
            ) from exc

    def _folder(self) -> Path:
        folder = self.state.folder()
        if folder is None:
            import tempfile

            if self._temp is None:
                self._temp = tempfile.TemporaryDirectory(prefix="bge-finetune-batch-")
            folder = Path(self._temp.name)
        return folder

    def close(self) -> None:
        if self._temp is not None:
            self._temp.cleanup()
            self._temp = None


def _split(lines: Sequence[Dict[str, Any]], max_requests: int, max_bytes: int) -> Iterator[List[str]]:
    """The JSONL lines in parts of at most ``max_requests`` lines and ``max_bytes`` bytes."""
    part: List[str] = []
    size = 0
    for line in lines:
        raw = json.dumps(line, ensure_ascii=False)
        n = len(raw.encode("utf-8")) + 1
        if part and (len(part) >= max_requests or size + n > max_bytes):
            yield part
            part, size = [], 0
        part.append(raw)
        size += n
    if part:
        yield part


def _input_keys(path: Path) -> List[str]:
    """The ``custom_id`` of every line of a batch input file written by this run or an earlier one."""
    if not path.is_file():
        logger.warning("The batch input file %s is gone: nodes its batch did not answer are resubmitted.", path)
        return []
    keys = []
    with open(path, "rb") as f:
        for raw in f:
            if raw.strip():
                keys.append(json.loads(raw)["custom_id"])
    return keys

