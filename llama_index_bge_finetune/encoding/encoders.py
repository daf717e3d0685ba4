"""Encoders: what embeds queries and passages for evaluation, mining and re-embedding.

An encoder embeds queries and passages in large batches into L2-normalised float32 arrays (or raw
vectors for dot-product models) and names itself with a *fingerprint*: a hash of everything that
changes its vectors (weights, pooling, prompts, normalisation), so an embedding cache keyed by it
never serves vectors from another model. :func:`~llama_index_bge_finetune.encoding.resolve.resolve_encoder`
builds the right one from a model spec.

Example::

    from sentence_transformers import SentenceTransformer
    from llama_index_bge_finetune.encoding.encoders import SentenceTransformerEncoder

    enc = SentenceTransformerEncoder(SentenceTransformer("out/model"), query_instruction="")
    vectors = enc.encode_corpus(["a passage", "another one"])
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, List, Optional, Sequence, TypeVar, Union

import numpy as np

from llama_index_bge_finetune.encoding.backends import EncodeBackendSpec, encode_texts
from llama_index_bge_finetune.encoding.fingerprint import hash_state_dict

logger = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx-int8")
T = TypeVar("T")


@dataclass
class EvalModel:
    """A model plus how to evaluate it, for when a bare spec is not enough.

    Args:
        model: a model folder or hub id, a ``SentenceTransformer``, or a LlamaIndex ``BaseEmbedding``.
        query_instruction: text put before every query; ``None`` uses the one saved with the model
            (a folder's ``query`` prompt, the BGE instruction for BGE hub ids); ``""`` uses none.
        backend: ``"torch"`` (exact, the default) or ``"onnx-int8"`` (an int8-quantised ONNX Runtime
            export, about 2x faster on CPU, slightly different vectors: measure its metric change).
        batch_size: passages per forward pass.
    """

    model: Any
    query_instruction: Optional[str] = None
    backend: str = "torch"
    batch_size: int = 64


ModelSpec = Union[str, "os.PathLike[str]", Any, EvalModel]


class Encoder:
    """Embeds queries and passages; subclasses implement ``_encode`` and ``_fingerprint_parts``."""

    name: str = "model"
    normalize: bool = True

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors, one row per text, float32."""
        return self._finish(self._encode(list(texts), is_query=True))

    def encode_corpus(self, texts: Sequence[str]) -> np.ndarray:
        """Passage vectors, one row per text, float32."""
        return self._finish(self._encode(list(texts), is_query=False))

    def fingerprint(self) -> str:
        """A hex digest that changes whenever the passage vectors would change."""
        if getattr(self, "_fp", None) is None:
            h = hashlib.blake2b(digest_size=16)
            h.update(type(self).__name__.encode())
            h.update(str(self.normalize).encode())
            for part in self._fingerprint_parts():
                h.update(b"\0")
                h.update(part if isinstance(part, (bytes, memoryview)) else str(part).encode())
            self._fp = h.hexdigest()
        return self._fp

    backend: str = "torch"
    source: str = ""
    query_instruction: Optional[str] = None

    def describe(self) -> dict:
        """What the report prints about this encoder (never an API key)."""
        return {"name": self.name, "source": self.source, "encoder": type(self).__name__, "backend": self.backend,
                "query_instruction": self.query_instruction, "fingerprint": self.fingerprint()}

    def plan(self, texts: Sequence[str]) -> Any:
        """Called with every text an evaluation will encode, before the first is encoded.

        Local models need nothing here; a hosted model states what the texts will cost
        (see :class:`~llama_index_bge_finetune.encoding.hosted.HostedEmbeddingEncoder`).
        """
        return None

    # ------------------------------------------------------------ hooks
    def _encode(self, texts: List[str], is_query: bool) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fingerprint_parts(self) -> Sequence[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _finish(self, vecs: Any) -> np.ndarray:
        arr = np.asarray(vecs, dtype=np.float32)
        if arr.ndim != 2:
            arr = arr.reshape(len(arr), -1)
        if self.normalize and len(arr):
            norms = np.linalg.norm(arr, axis=1, keepdims=True)
            arr = arr / np.where(norms == 0, 1.0, norms)
        return arr


class SentenceTransformerEncoder(Encoder):
    """A ``SentenceTransformer`` with a query instruction; passages get the model's document prompt.

    Args:
        model: the ``SentenceTransformer``.
        query_instruction: text put before every query (``None``: the model's saved ``query`` prompt).
        batch_size: texts per forward pass.
        name: the label in reports (default: the model's name).
        encode_backend: where the corpus is encoded (``"local"`` or ``"ray"``, see
            :mod:`llama_index_bge_finetune.encoding`); queries are always encoded here.
        document_prompt: text put before every passage (``None``: the model's saved ``document`` or
            ``text`` prompt, else none).
        normalize: L2-normalise the vectors (``None``: unless the model scores with a dot product).
        show_progress_bar: sentence-transformers' progress bar while encoding the corpus locally.
    """

    def __init__(self, model: Any, query_instruction: Optional[str] = None, batch_size: int = 64, name: str = "",
                 encode_backend: EncodeBackendSpec = "local", *, document_prompt: Optional[str] = None,
                 normalize: Optional[bool] = None, show_progress_bar: bool = False) -> None:
        self.model = model
        self.encode_backend = encode_backend
        prompts = getattr(model, "prompts", {}) or {}
        self.query_instruction = prompts.get("query") or "" if query_instruction is None else query_instruction
        saved_document_prompt = prompts.get("document") or prompts.get("text") or ""
        self.document_prompt = saved_document_prompt if document_prompt is None else document_prompt
        self.batch_size = int(batch_size)
        self.normalize = getattr(model, "similarity_fn_name", "cosine") != "dot" if normalize is None else normalize
        self.show_progress_bar = show_progress_bar
        self.name = name or _model_label(model)
        self.source = _model_label(model)
        self._fp: Optional[str] = None

    def _encode(self, texts: List[str], is_query: bool) -> np.ndarray:
        prompt = self.query_instruction if is_query else self.document_prompt
        return encode_texts(self.model, texts, prompt=prompt or None, batch_size=self.batch_size, normalize=False,
                            encode_backend="local" if is_query else self.encode_backend,
                            show_progress_bar=self.show_progress_bar and not is_query)

    def _fingerprint_parts(self) -> Sequence[Any]:
        config = [repr(m) for m in self.model]  # module configs: pooling mode, dims, ...
        return [self.document_prompt, str(self.model.max_seq_length), *config, *hash_state_dict(self.model)]


class LlamaIndexEncoder(Encoder):
    """Any LlamaIndex ``BaseEmbedding``: batched text embeddings, concurrent query embeddings."""

    def __init__(self, embed_model: Any, query_concurrency: int = 16, name: str = "") -> None:
        self.embed_model = embed_model
        self.query_concurrency = max(1, int(query_concurrency))
        self.source = f"{embed_model.class_name()}({getattr(embed_model, 'model_name', '')})"
        self.name = name or getattr(embed_model, "model_name", None) or embed_model.class_name()
        self._fp: Optional[str] = None

    def _encode(self, texts: List[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        if not is_query:
            return np.asarray(self.embed_model.get_text_embedding_batch(texts), dtype=np.float32)
        return np.asarray(_run(self._aqueries(texts)), dtype=np.float32)

    async def _aqueries(self, texts: List[str]) -> List[List[float]]:
        sem = asyncio.Semaphore(self.query_concurrency)

        async def one(text: str) -> List[float]:
            async with sem:
                return await retry_already_borrowed(lambda: self.embed_model.aget_query_embedding(text))

        return list(await asyncio.gather(*(one(t) for t in texts)))

    def _fingerprint_parts(self) -> Sequence[Any]:
        fields = {}
        for key, value in self.embed_model.model_dump().items():
            lowered = key.lower()
            if any(s in lowered for s in ("key", "secret", "token", "callback", "batch", "workers", "retries", "timeout")):
                continue
            if isinstance(value, (str, int, float, bool, type(None))):
                fields[key] = value
        parts: List[Any] = [self.embed_model.class_name(), json.dumps(fields, sort_keys=True)]
        inner = getattr(self.embed_model, "_model", None)
        if inner is not None and hasattr(inner, "state_dict"):
            parts += [repr(m) for m in inner] + hash_state_dict(inner)
        return parts


class HuggingFaceEmbeddingEncoder(SentenceTransformerEncoder):
    """A LlamaIndex ``HuggingFaceEmbedding``, encoded through its ``SentenceTransformer`` in large batches.

    Gives the same vectors as its ``get_query_embedding``/``get_text_embedding_batch`` (same prompts,
    same normalisation) without a Python call per query.
    """

    def __init__(self, embed_model: Any, query_instruction: Optional[str] = None, batch_size: int = 64, name: str = "",
                 encode_backend: EncodeBackendSpec = "local") -> None:
        st = embed_model._model
        prompts = st.prompts or {}
        qi = prompts.get("query") or "" if query_instruction is None else query_instruction
        super().__init__(st, query_instruction=qi, batch_size=batch_size, name=name or embed_model.model_name,
                         encode_backend=encode_backend)
        self.document_prompt = prompts.get("text") or ""
        self.normalize = bool(embed_model.normalize)
        self.source = f"HuggingFaceEmbedding({embed_model.model_name})"


def _model_label(model: Any) -> str:
    card = getattr(model, "model_card_data", None)
    label = getattr(card, "base_model", None) or getattr(model, "name_or_path", None)
    if not label:
        try:
            label = model[0].auto_model.config.name_or_path
        except Exception:  # a model without a transformer first module
            label = ""
    return os.path.basename(str(label).rstrip("/")) or type(model).__name__


async def retry_already_borrowed(make_call: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """Await ``make_call()``, retrying on Hugging Face fast tokenizers' thread-safety error.

    LlamaIndex's ``HuggingFaceEmbedding`` embeds async queries in worker threads that share one
    Rust tokenizer, which intermittently raises ``RuntimeError: Already borrowed`` under
    concurrency (huggingface/tokenizers#537, huggingface/transformers#47085). A retry succeeds.
    """
    for attempt in range(attempts):
        try:
            return await make_call()
        except RuntimeError as exc:
            if "Already borrowed" not in str(exc) or attempt == attempts - 1:
                raise
            logger.debug("Retrying after a concurrent tokenizer use (%s).", exc)
            await asyncio.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _run(coro: Any) -> Any:
    """Run a coroutine from sync code, also inside a running loop (Jupyter), via llama-index's helper."""
    from llama_index.core.async_utils import asyncio_run

    return asyncio_run(coro)
