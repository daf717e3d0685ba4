"""Corpus encoding on a Ray cluster: Ray Data ``map_batches`` over a pool of encoder actors.

The model is saved once per fingerprint to a folder (``<cache>/ray-models/<fingerprint>``) and every
actor loads it from there when it starts, so no batch carries the weights. Every row carries its
index, so the vectors come back in the corpus order whatever order the actors finish in; Ray
restarts a killed actor and retries its batches, and the rows are checked so none is lost or
counted twice. On a multi-machine cluster the cache folder must be on storage every node reads
(set ``model_cache_dir`` or ``$BGE_FINETUNE_CACHE_DIR``) and the nodes need this package installed.

Example::

    from llama_index_bge_finetune.encoding import RayEncodeBackend, encode_texts

    backend = RayEncodeBackend(address="ray://head:10001", num_cpus_per_actor=4)
    vectors = encode_texts(model, passages, encode_backend=backend)
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import uuid
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

import numpy as np

from llama_index_bge_finetune.encoding.fingerprint import model_fingerprint
from llama_index_bge_finetune.errors import EncodeBackendError

logger = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "llama-index-bge-finetune[scale]"'


class CorpusEncoderActor:
    """One Ray actor's encoder: loads the saved model folder once, then encodes the batches it is given.

    Each batch is a dict of numpy columns ``row`` (the corpus index) and ``text``; the answer keeps
    ``row`` and adds ``vector``.
    """

    def __init__(self, model_dir: str, prompt: Optional[str], batch_size: int, normalize: bool) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = SentenceTransformer(model_dir, device=device)
        self.prompt = prompt or None
        self.batch_size = batch_size
        self.normalize = normalize

    def __call__(self, batch: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        vectors = self.model.encode([str(t) for t in batch["text"]], prompt=self.prompt, batch_size=self.batch_size,
                                    normalize_embeddings=self.normalize, convert_to_numpy=True, show_progress_bar=False)
        return {"row": np.asarray(batch["row"]), "vector": np.asarray(vectors, dtype=np.float32)}


class RayEncodeBackend:
    """Encodes corpora on Ray: the cluster at ``address``, one actor per GPU, or per ``num_cpus_per_actor`` CPUs.

    Args:
        address: the cluster (``"host:port"``, ``"ray://host:10001"`` or ``"auto"``); default
            ``$RAY_ADDRESS``, else the Ray session this process already runs, else a new local one.
        num_actors: encoder actors; default one per GPU of the cluster, else its CPUs divided by
            ``num_cpus_per_actor``.
        num_cpus_per_actor: CPUs each actor reserves (its torch threads).
        num_gpus_per_actor: GPUs each actor reserves; default 1 when the cluster has GPUs, else 0.
        rows_per_block: rows per Ray Data block (the unit an actor takes and Ray retries); default
            about four blocks per actor, at least one encoding batch.
        model_cache_dir: where models are saved for the actors; default
            ``$BGE_FINETUNE_CACHE_DIR/ray-models`` or ``~/.cache/llama-index-bge-finetune/ray-models``.
        connect_timeout: seconds to wait for the cluster's address to answer.

    Example::

        vectors = RayEncodeBackend(num_actors=2).encode(model, passages)

    On one machine with several GPUs, sentence-transformers' own multi-process pool
    (``model.start_multi_process_pool()``) is the lighter option.
    """

    actor_class: type = CorpusEncoderActor

    def __init__(self, address: Optional[str] = None, *, num_actors: Optional[int] = None,
                 num_cpus_per_actor: float = 1.0, num_gpus_per_actor: Optional[float] = None,
                 rows_per_block: Optional[int] = None, model_cache_dir: Union[str, "os.PathLike[str]", None] = None,
                 connect_timeout: float = 5.0) -> None:
        if num_actors is not None and num_actors < 1:
            raise EncodeBackendError(f"num_actors must be at least 1, got {num_actors}.")
        if num_cpus_per_actor <= 0:
            raise EncodeBackendError(f"num_cpus_per_actor must be positive, got {num_cpus_per_actor}.")
        if rows_per_block is not None and rows_per_block < 1:
            raise EncodeBackendError(f"rows_per_block must be at least 1, got {rows_per_block}.")
        self.address = address if address is not None else os.environ.get("RAY_ADDRESS") or None
        self.num_actors = num_actors
        self.num_cpus_per_actor = num_cpus_per_actor
        self.num_gpus_per_actor = num_gpus_per_actor
        self.rows_per_block = rows_per_block
        self.model_cache_dir = Path(model_cache_dir) if model_cache_dir is not None else _default_model_cache_dir()
        self.connect_timeout = connect_timeout

    def encode(self, model: Any, texts: Sequence[str], *, prompt: Optional[str] = None, batch_size: int = 64,
               normalize: bool = True) -> np.ndarray:
        """Float32 vectors of ``texts`` in order, encoded by the actor pool."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        ray = self.connect()
        import pandas as pd

        model_dir = self.save_model(model)
        gpus = self._gpus_per_actor(ray)
        actors = self.num_actors or self._default_actors(ray, gpus)
        per_block = self.rows_per_block or max(batch_size, math.ceil(len(texts) / (4 * actors)))
        frames = [pd.DataFrame({"row": np.arange(start, min(start + per_block, len(texts))),
                                "text": texts[start:start + per_block]}) for start in range(0, len(texts), per_block)]
        dataset = ray.data.from_pandas(frames).map_batches(
            self.actor_class,
            fn_constructor_kwargs={"model_dir": str(model_dir), "prompt": prompt, "batch_size": batch_size,
                                   "normalize": normalize},
            batch_size=batch_size, batch_format="numpy", concurrency=actors,
            num_cpus=self.num_cpus_per_actor, num_gpus=gpus,
        )
        logger.info("Encoding %d texts on Ray with %d actor(s) (%s CPU, %s GPU each), %d blocks.",
                    len(texts), actors, self.num_cpus_per_actor, gpus, len(frames))
        return _gather(dataset.iter_batches(batch_format="numpy", batch_size=None), len(texts))

    def connect(self) -> Any:
        """The ``ray`` module, connected to the cluster (checked to answer first when an address is given)."""
        ray = _import_ray()
        if self.address not in (None, "auto", "local"):
            _check_reachable(self.address, self.connect_timeout)
        if ray.is_initialized():
            return ray
        try:
            ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING,
                     log_to_driver=False)
        except (ConnectionError, RuntimeError) as exc:
            raise EncodeBackendError(
                f"Cannot connect to the Ray cluster at {self.address or 'a new local cluster'} ({exc}). Start it "
                "(`ray start --head`), fix RAY_ADDRESS, or drop --ray / encode_backend='ray' to encode locally."
            ) from exc
        return ray

    def save_model(self, model: Any) -> Path:
        """The folder the actors load ``model`` from, saved once per model fingerprint."""
        folder = self.model_cache_dir / model_fingerprint(model)
        if not (folder / "modules.json").is_file():
            tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex}.tmp")
            model.save(str(tmp))
            try:
                os.replace(tmp, folder)
            except OSError:  # another process saved the same model first
                shutil.rmtree(tmp, ignore_errors=True)
            logger.info("Saved the model for Ray actors to %s.", folder)
        return folder

    def _gpus_per_actor(self, ray: Any) -> float:
        if self.num_gpus_per_actor is not None:
            return self.num_gpus_per_actor
        return 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0

    def _default_actors(self, ray: Any, gpus: float) -> int:
        resources = ray.cluster_resources()
        if gpus:
            return max(1, int(resources.get("GPU", 0) // gpus))
        return max(1, int(resources.get("CPU", 1) // self.num_cpus_per_actor))


def _gather(batches: Any, n: int) -> np.ndarray:
    """Put each returned row at its index; a retried row kept once, a missing one an error."""
    out: Optional[np.ndarray] = None
    seen = np.zeros(n, dtype=bool)
    repeated = 0
    for batch in batches:
        rows = np.asarray(batch["row"], dtype=np.int64)
        vectors = np.asarray(batch["vector"], dtype=np.float32)
        if out is None:
            out = np.empty((n, vectors.shape[1]), dtype=np.float32)
        fresh = ~seen[rows]
        repeated += int((~fresh).sum())
        out[rows[fresh]] = vectors[fresh]
        seen[rows[fresh]] = True
    if repeated:
        logger.warning("Ray returned %d row(s) twice after a retry; each is kept once.", repeated)
    if out is None or not seen.all():
        missing = int((~seen).sum())
        raise EncodeBackendError(f"Ray returned no vector for {missing} of {n} rows; rerun the encoding.")
    return out


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:
        raise EncodeBackendError(f"encode_backend='ray' (--ray) needs Ray Data: {INSTALL_HINT}") from exc
    return ray


def _check_reachable(address: str, timeout: float) -> None:
    """Fail fast with a clear message when nothing answers at ``address`` (Ray itself retries for minutes)."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise EncodeBackendError(f"Ray address {address!r} is not host:port (e.g. 10.0.0.5:6379 or ray://head:10001).")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise EncodeBackendError(
            f"No Ray cluster answers at {address} ({exc}). Start it (`ray start --head`), fix the address "
            "(RAY_ADDRESS or RayEncodeBackend(address=...)), or drop --ray / encode_backend='ray' to encode locally."
        ) from exc


def _default_model_cache_dir() -> Path:
    env = os.environ.get("BGE_FINETUNE_CACHE_DIR")
    if env:
        return Path(env) / "ray-models"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llama-index-bge-finetune" / "ray-models"

