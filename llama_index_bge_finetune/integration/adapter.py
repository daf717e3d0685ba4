"""A query-side linear adapter for indexes that cannot be re-embedded (huge or third-party ones).

The document vectors stay exactly as they are; only query vectors go through a learned linear map
``q -> W q (+ b)`` that moves them next to the passages that answer them. llama-index-finetuning's
``EmbeddingAdapterFinetuneEngine`` does the same, but embeds every query and passage again at
every step of every epoch, one text at a time. The base model is frozen, so its vectors never
change: :class:`QueryAdapterFinetuneEngine` embeds each passage and query once (passages through
the on-disk embedding cache), then trains on the cached matrices, which also makes the whole
corpus available as negatives at every step. The saved folder loads with llama-index's
``LinearLayer``/``AdapterEmbeddingModel`` too::

    from llama_index.core import VectorStoreIndex
    from llama_index_bge_finetune.integration import QueryAdapterFinetuneEngine, from_finetuned

    base = from_finetuned("BAAI/bge-small-en-v1.5")         # the model that built the index
    engine = QueryAdapterFinetuneEngine(train_dataset, base, epochs=20, model_output_path="adapter")
    engine.finetune()
    print(engine.evaluate(val_dataset).metrics["ndcg@10"])
    index = VectorStoreIndex.from_vector_store(store, embed_model=engine.get_finetuned_model())
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from llama_index_bge_finetune.encoding.backends import EncodeBackendSpec
from llama_index_bge_finetune.errors import IntegrationError, MissingFilesError, StaleVectorsError, TrainingError
from llama_index_bge_finetune.encoding.encoders import Encoder
from llama_index_bge_finetune.integration.fingerprint import EmbedModelFingerprint, fingerprint_embed_model

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
ADAPTER_INFO = "adapter_info.json"
NEGATIVES = ("corpus", "in-batch")


class QueryAdapterFinetuneEngine:
    """Train a linear query adapter over a frozen embedding model, on cached embeddings.

    Args:
        dataset: the training questions and passages (an ``EmbeddingQAFinetuneDataset``, ours or
            llama-index-finetuning's, a dict or a JSON path).
        embed_model: the frozen model that embedded the index: a LlamaIndex ``BaseEmbedding``
            (e.g. ``HuggingFaceEmbedding``) or a model folder.
        batch_size: queries per step (10, as llama-index-finetuning).
        epochs: passes over the queries; cheap here, so more than the peer's 1 pays off.
        lr: AdamW learning rate.
        bias: learn a bias too (the saved layer then has one, as ``LinearLayer(bias=True)``).
        negatives: ``"corpus"`` (default) scores every query against every cached passage;
            ``"in-batch"`` uses only the batch's passages, as llama-index-finetuning does.
        scale: similarity scale of the ranking loss (20, as MultipleNegativesRankingLoss).
        warmup_ratio: share of steps with a linearly rising learning rate.
        model_output_path: folder the adapter is saved to.
        cache: ``True`` for the default embedding cache folder, a folder, or ``False`` for none.
        seed: seeds the shuffling and so makes training repeatable.
        encode_backend: where the passages are encoded: ``"local"`` (default) or ``"ray"`` (Ray Data
            actors, see :mod:`llama_index_bge_finetune.encoding`).

    Every relevant passage of a query is a training pair (the peer keeps only the first). Passages
    relevant to other queries in a step are not used as their negatives.
    """

    def __init__(
        self,
        dataset: Any,
        embed_model: Any,
        batch_size: int = 10,
        epochs: int = 1,
        lr: float = 1e-3,
        bias: bool = False,
        negatives: str = "corpus",
        scale: float = 20.0,
        warmup_ratio: float = 0.1,
        model_output_path: PathLike = "model_output",
        cache: Union[bool, PathLike] = True,
        seed: int = 0,
        encode_backend: EncodeBackendSpec = "local",
    ) -> None:
        from llama_index_bge_finetune.dataset import EmbeddingQAFinetuneDataset
        from llama_index_bge_finetune.integration.settings import resolve_finetuned

        if negatives not in NEGATIVES:
            raise IntegrationError(f"negatives must be one of {NEGATIVES}, got {negatives!r}.")
        for name, value in (("batch_size", batch_size), ("epochs", epochs)):
            if not isinstance(value, int) or value < 1:
                raise IntegrationError(f"{name} must be a positive integer, got {value!r}.")
        if not lr > 0 or not 0 <= warmup_ratio < 1:
            raise IntegrationError(f"lr must be > 0 and warmup_ratio in [0, 1); got lr={lr}, warmup_ratio={warmup_ratio}.")
        self.dataset = EmbeddingQAFinetuneDataset.coerce(dataset).clean()
        if not self.dataset.queries:
            raise TrainingError("The dataset has no query with a relevant passage in its corpus; nothing to train on.")
        self.embed_model = resolve_finetuned(embed_model)
        self.batch_size, self.epochs, self.lr, self.bias = batch_size, epochs, lr, bias
        self.negatives, self.scale, self.warmup_ratio, self.seed = negatives, scale, warmup_ratio, seed
        self.model_output_path = Path(model_output_path)
        self.cache = cache
        self.encode_backend = encode_backend
        self.timings: Dict[str, float] = {}
        self._layer: Optional[_LinearAdapter] = None

    # ------------------------------------------------------------------ embeddings, once
    def _encoder(self) -> Any:
        from llama_index_bge_finetune.encoding.resolve import resolve_encoder

        return resolve_encoder(self.embed_model, encode_backend=self.encode_backend)

    def _embedding_cache(self) -> Any:
        from llama_index_bge_finetune.retrieval.corpus_cache import EmbeddingCache

        if self.cache is False or self.cache is None:
            return None
        return EmbeddingCache(None if self.cache is True else self.cache)

    def _embed(self, encoder: Any, dataset: Any) -> Tuple[np.ndarray, np.ndarray, List[Tuple[int, int]]]:
        """(query vectors, passage vectors, (query row, passage row) pairs), each text embedded once."""
        doc_ids = list(dataset.corpus)
        if self.negatives == "in-batch":  # only the passages that are some query's answer are needed
            wanted = {d for docs in dataset.relevant_docs.values() for d in docs}
            doc_ids = [d for d in doc_ids if d in wanted]
        doc_texts = [dataset.corpus[d] for d in doc_ids]
        cache = self._embedding_cache()
        docs = cache.get_or_encode(encoder, doc_texts) if cache is not None else encoder.encode_corpus(doc_texts)
        docs = np.array(docs, dtype=np.float32)  # the cache's read-only memory map, in RAM for training
        qids = list(dataset.queries)
        queries = encoder.encode_queries([dataset.queries[q] for q in qids])
        row = {d: i for i, d in enumerate(doc_ids)}
        pairs = [(qi, row[d]) for qi, q in enumerate(qids) for d in dataset.relevant_docs[q]]
        return queries, docs, pairs

    # ------------------------------------------------------------------ training
    def finetune(self) -> None:
        """Embed the data once, train the adapter, save it to ``model_output_path``."""
        t0 = time.perf_counter()
        queries, docs, pairs = self._embed(self._encoder(), self.dataset)
        self.timings["embed"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # tiny matrices: thread hand-offs cost more than they save
        try:
            layer = self._train(queries, docs, pairs)
        finally:
            torch.set_num_threads(threads)
        self.timings["train"] = time.perf_counter() - t0
        self._layer = layer.eval()
        self.save(self.model_output_path)

    def _train(self, queries: np.ndarray, docs: np.ndarray, pairs: List[Tuple[int, int]]) -> "_LinearAdapter":
        from transformers import get_linear_schedule_with_warmup

        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        q = torch.from_numpy(queries)
        d = torch.nn.functional.normalize(torch.from_numpy(docs), dim=-1)
        pair_q = torch.tensor([p[0] for p in pairs])
        pair_d = torch.tensor([p[1] for p in pairs])
        relevant = torch.zeros(len(queries), len(docs), dtype=torch.bool)
        relevant[pair_q, pair_d] = True
        layer = _LinearAdapter(q.shape[1], q.shape[1], bias=self.bias)
        opt = torch.optim.AdamW(layer.parameters(), lr=self.lr)
        steps_per_epoch = -(-len(pairs) // self.batch_size)
        total = steps_per_epoch * self.epochs
        sched = get_linear_schedule_with_warmup(opt, int(total * self.warmup_ratio), total)
        layer.train()
        for epoch in range(self.epochs):
            order = torch.randperm(len(pairs), generator=gen)
            epoch_loss = 0.0
            for start in range(0, len(pairs), self.batch_size):
                idx = order[start:start + self.batch_size]
                bq, bd = pair_q[idx], pair_d[idx]
                out = torch.nn.functional.normalize(layer(q[bq]), dim=-1)
                if self.negatives == "corpus":
                    cand = d
                    target = bd
                    mask = relevant[bq]  # other relevant passages of the same query are not negatives
                else:
                    cand = d[bd]
                    target = torch.arange(len(idx))
                    mask = relevant[bq][:, bd]
                scores = self.scale * out @ cand.T
                mask = mask.clone()
                mask[torch.arange(len(idx)), target] = False
                scores = scores.masked_fill(mask, float("-inf"))
                loss = torch.nn.functional.cross_entropy(scores, target)
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(layer.parameters(), 1.0)
                opt.step()
                sched.step()
                epoch_loss += loss.item()
            logger.info("Adapter epoch %d/%d: mean loss %.4f", epoch + 1, self.epochs, epoch_loss / steps_per_epoch)
        return layer

    def save(self, path: PathLike) -> Path:
        """Write the adapter as llama-index ``LinearLayer`` files plus ``adapter_info.json``."""
        if self._layer is None:
            raise TrainingError("The adapter is not trained yet: call finetune() first.")
        return self._layer.save(Path(path), base=fingerprint_embed_model(self.embed_model), settings={
            "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "negatives": self.negatives,
        })

    def get_finetuned_model(self, **kwargs: Any) -> "QueryAdapterEmbedding":
        """The base model with the trained adapter on its queries, as a LlamaIndex embedding."""
        if self._layer is None:
            raise TrainingError("The adapter is not trained yet: call finetune() first.")
        return QueryAdapterEmbedding(base_embed_model=self.embed_model, adapter_path=str(self.model_output_path), **kwargs)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, dataset: Any, k_values: Sequence[int] = (1, 3, 5, 10),
                 adapter: Union[bool, PathLike] = True) -> Any:
        """Score the adapted model with the package's evaluator.

        ``adapter=False`` scores the bare base model; a folder scores another saved adapter over the
        same base (e.g. one from llama-index-finetuning's ``EmbeddingAdapterFinetuneEngine``).
        Passage vectors come from the embedding cache, so scoring several adapters and the base
        costs one corpus encoding. Returns an ``EvaluationResult`` (``.metrics["ndcg@10"]``, ...).
        """
        from llama_index_bge_finetune.evaluation.embedding_evaluator import evaluate_encoder
        from llama_index_bge_finetune.evaluation.metrics import check_k_values
        from llama_index_bge_finetune.evaluation.queries import load_dataset, scorable_queries

        ds = load_dataset(dataset)
        qids, rels, info = scorable_queries(ds)
        encoder = self._encoder()
        if isinstance(adapter, (str, os.PathLike)):
            encoder = _AdapterEncoder(encoder, _LinearAdapter.load(Path(adapter)))
        elif adapter:
            if self._layer is None:
                raise TrainingError("The adapter is not trained yet: call finetune() first, or pass adapter=False.")
            encoder = _AdapterEncoder(encoder, self._layer)
        return evaluate_encoder(encoder, ds, qids, rels, info, check_k_values(k_values), cache=self._embedding_cache())


class _LinearAdapter(torch.nn.Module):
    """``nn.Linear`` under the attribute name llama-index's ``LinearLayer`` uses, so its files load there."""

    def __init__(self, in_features: int, out_features: int, bias: bool = False) -> None:
        super().__init__()
        self.config = {"in_features": in_features, "out_features": out_features, "bias": bias}
        self.linear = torch.nn.Linear(in_features, out_features, bias=bias)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(out_features, in_features))  # start as the identity
            if bias:
                self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)

    def save(self, path: Path, base: EmbedModelFingerprint, settings: Dict[str, Any]) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        (path / "config.json").write_text(json.dumps(self.config))
        torch.save(self.state_dict(), path / "pytorch_model.bin")
        info = {"base_model": base.to_dict(), "training": settings}
        (path / ADAPTER_INFO).write_text(json.dumps(info, indent=2))
        return path

    @classmethod
    def load(cls, path: Path) -> "_LinearAdapter":
        """Read a saved adapter folder (ours or llama-index's ``LinearLayer``)."""
        config = json.loads((path / "config.json").read_text())
        layer = cls(config["in_features"], config["out_features"], bias=bool(config.get("bias", False)))
        layer.load_state_dict(torch.load(path / "pytorch_model.bin", map_location="cpu"))
        return layer.eval()

    def numpy_weights(self) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        w = self.linear.weight.detach().cpu().numpy()
        b = self.linear.bias.detach().cpu().numpy() if self.linear.bias is not None else None
        return w, b


def _apply(vectors: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray]) -> np.ndarray:
    """Normalise base query vectors (as in training), then map them."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    out = (vectors / np.where(norms == 0, 1.0, norms)) @ weight.T
    return out + bias if bias is not None else out


class _AdapterEncoder(Encoder):
    """An evaluation encoder: passages through the base encoder (same cache key), queries through the adapter."""

    def __init__(self, base: Encoder, layer: _LinearAdapter) -> None:
        self.base = base
        self.weight, self.bias = layer.numpy_weights()
        self.name = f"{base.name} + query adapter"
        self.source = base.source

    def encode_corpus(self, texts: Sequence[str]) -> np.ndarray:
        return self.base.encode_corpus(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._finish(_apply(self.base.encode_queries(texts), self.weight, self.bias))

    def fingerprint(self) -> str:
        return self.base.fingerprint()  # the passage vectors are the base model's


class QueryAdapterEmbedding(BaseEmbedding):
    """A LlamaIndex embedding: the base model for passages, base model + linear adapter for queries.

    Passage vectors equal the base model's, so it queries an index built by the base model
    (the stale-vector guard fingerprints it as the base model).

    Example::

        embed = QueryAdapterEmbedding.load("adapter", base_embed_model=from_finetuned(base_path))
        index = VectorStoreIndex.from_vector_store(store, embed_model=embed)
    """

    adapter_path: str = Field(description="Folder with the adapter's config.json and pytorch_model.bin.")
    _base_embed_model: BaseEmbedding = PrivateAttr()
    _weight: np.ndarray = PrivateAttr()
    _bias: Optional[np.ndarray] = PrivateAttr()

    def __init__(self, base_embed_model: BaseEmbedding, adapter_path: PathLike, **kwargs: Any) -> None:
        path = Path(adapter_path)
        if not (path / "config.json").is_file() or not (path / "pytorch_model.bin").is_file():
            raise MissingFilesError(
                f"{path} is not an adapter folder (needs config.json and pytorch_model.bin); pass the "
                "model_output_path of QueryAdapterFinetuneEngine or EmbeddingAdapterFinetuneEngine."
            )
        _check_base(path, base_embed_model)
        kwargs.setdefault("embed_batch_size", base_embed_model.embed_batch_size)
        kwargs.setdefault("model_name", f"{base_embed_model.model_name} + query adapter {path.name}")
        super().__init__(adapter_path=str(path), **kwargs)
        self._base_embed_model = base_embed_model
        self._weight, self._bias = _LinearAdapter.load(path).numpy_weights()

    @classmethod
    def load(cls, adapter_path: PathLike, base_embed_model: Any = None) -> "QueryAdapterEmbedding":
        """Load an adapter folder; the base model defaults to the one recorded in it (when it is a folder)."""
        from llama_index_bge_finetune.integration.settings import resolve_finetuned

        if base_embed_model is None:
            info = _adapter_info(Path(adapter_path))
            if info is None:
                raise MissingFilesError(f"{adapter_path} has no {ADAPTER_INFO}; pass base_embed_model= explicitly.")
            base_embed_model = info["base_model"]["name"]
        return cls(base_embed_model=resolve_finetuned(base_embed_model), adapter_path=adapter_path)

    @classmethod
    def class_name(cls) -> str:
        return "QueryAdapterEmbedding"

    def _adapt(self, vector: List[float]) -> List[float]:
        return _apply(np.asarray(vector, dtype=np.float32), self._weight, self._bias).tolist()

    def _get_query_embedding(self, query: str) -> List[float]:
        return self._adapt(self._base_embed_model._get_query_embedding(query))

    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self._adapt(await self._base_embed_model._aget_query_embedding(query))

    def _get_text_embedding(self, text: str) -> List[float]:
        return self._base_embed_model._get_text_embedding(text)

    async def _aget_text_embedding(self, text: str) -> List[float]:
        return await self._base_embed_model._aget_text_embedding(text)

    def _get_text_embeddings(self, texts: List[str]) -> List[List[float]]:
        return self._base_embed_model._get_text_embeddings(texts)


def _adapter_info(path: Path) -> Optional[Dict[str, Any]]:
    p = path / ADAPTER_INFO
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else None


def _check_base(path: Path, base_embed_model: Any) -> None:
    """Refuse a base model other than the one the adapter was trained on (when the folder records it)."""
    info = _adapter_info(path)
    if info is None:
        logger.warning("%s records no base model (trained by llama-index-finetuning?); cannot check it.", path)
        return
    trained = EmbedModelFingerprint.from_dict(info["base_model"])
    current = fingerprint_embed_model(base_embed_model)
    if not trained.same_vectors_as(current):
        raise StaleVectorsError(
            f"The adapter in {path} was trained on {trained.describe()}, not on {current.describe()}; "
            "its query vectors only match the first model's passages. Pass the base model that built the "
            "index, or train a new adapter on this one."
        )
