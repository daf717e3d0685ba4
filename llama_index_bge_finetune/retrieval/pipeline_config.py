"""``retrieval.json``: the retrieval to ship with a fine-tuned model (dense, BM25, or a hybrid of both).

A run decides on its validation questions whether the fine-tuned model should retrieve alone, or
BM25 alone, or a fusion of the two (see :mod:`~llama_index_bge_finetune.evaluation.hybrid`), and
writes the decision beside the model as ``retrieval.json``, for a retriever to read::

    {
      "version": 1,
      "pipeline": "hybrid",                      # "dense", "bm25" or "hybrid"
      "fusion": {"method": "zscore", "weight": 0.3, "rrf_k": 60},   # FusionSpec; null unless hybrid
      "bm25": {"language": "english", "stopwords": "en", "k1": 1.5, "b": 0.75, "method": "lucene"},
      "chosen_on": {"questions": 790, "how": "all validation questions; cross-fitted estimate in report"},
      "reason": "hybrid zscore w=0.3 beats bm25 by +0.031 nDCG@10 on 395 held-out questions ...",
      "model_fingerprint": "3f2a...",            # the dense model's fingerprint (weights and text settings)
      "corpus_digest": "sha256:...",             # ids and texts of the corpus it was chosen over
      "evidence": {...}                          # FusionChoice.to_dict(): means, gain, interval, p-value
    }

``bm25`` is null when BM25 was not evaluated. :meth:`RetrievalConfig.load` refuses a file of
another ``version`` (a newer package wrote it) instead of guessing.

Example::

    from llama_index_bge_finetune.retrieval.pipeline_config import RetrievalConfig

    config = RetrievalConfig.load("out/model")          # reads out/model/retrieval.json
    if config.pipeline == "hybrid":
        spec, settings = config.fusion, config.bm25       # FusionSpec, BM25Settings
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from llama_index_bge_finetune import outputs
from llama_index_bge_finetune.errors import RetrievalConfigError
from llama_index_bge_finetune.retrieval.bm25 import BM25Settings
from llama_index_bge_finetune.retrieval.fusion import FusionSpec

#: The file name, inside the model folder.
CONFIG_FILE = "retrieval.json"
#: The schema version this package writes and reads.
VERSION = 1
#: The pipelines a config may name.
PIPELINES = ("dense", "bm25", "hybrid")
_KEYS = ("version", "pipeline", "fusion", "bm25", "chosen_on", "reason", "model_fingerprint", "corpus_digest",
         "evidence")

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class RetrievalConfig:
    """Which retrieval to ship with a model, and the evidence it was chosen on.

    Attributes:
        pipeline: ``"dense"`` (the model alone), ``"bm25"`` (BM25 alone) or ``"hybrid"`` (both, fused).
        fusion: the :class:`FusionSpec` of a hybrid (``None`` otherwise).
        bm25: the BM25 tokenisation and scoring (needed by ``"bm25"`` and ``"hybrid"``; ``None`` when
            BM25 was not evaluated).
        chosen_on: ``{"questions": n, "how": "..."}``: what the choice was made on.
        reason: the rule's sentence saying what decided.
        model_fingerprint: the dense model's fingerprint, so a reader can check it holds the same model.
        corpus_digest: ``"sha256:..."`` of the ids and texts the choice was made over.
        evidence: the full choice record (:meth:`FusionChoice.to_dict`), or ``None``.

    Example::

        config = RetrievalConfig("hybrid", FusionSpec("zscore", 0.3), BM25Settings(),
                                 {"questions": 790, "how": "all validation questions"}, "hybrid beats bm25 ...")
        config.save("out/model")                       # out/model/retrieval.json
        RetrievalConfig.load("out/model") == config    # True
    """

    pipeline: str
    fusion: Optional[FusionSpec] = None
    bm25: Optional[BM25Settings] = None
    chosen_on: Dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    model_fingerprint: Optional[str] = None
    corpus_digest: Optional[str] = None
    evidence: Optional[Dict[str, Any]] = None

    def __post_init__(self) -> None:
        if self.pipeline not in PIPELINES:
            raise RetrievalConfigError(f"Unknown retrieval pipeline {self.pipeline!r}; use one of {', '.join(PIPELINES)}.")
        if (self.pipeline == "hybrid") != (self.fusion is not None):
            raise RetrievalConfigError(f"A {self.pipeline!r} pipeline {'needs' if self.pipeline == 'hybrid' else 'takes no'} "
                                       "fusion spec: a hybrid names how it fuses (FusionSpec), dense and bm25 do not.")
        if self.pipeline != "dense" and self.bm25 is None:
            raise RetrievalConfigError(f"A {self.pipeline!r} pipeline needs its BM25 settings (BM25Settings()).")

    def to_dict(self) -> Dict[str, Any]:
        """The JSON-able record, with ``"version"``."""
        return {"version": VERSION, "pipeline": self.pipeline,
                "fusion": self.fusion.to_dict() if self.fusion is not None else None,
                "bm25": self.bm25.to_dict() if self.bm25 is not None else None, "chosen_on": dict(self.chosen_on),
                "reason": self.reason, "model_fingerprint": self.model_fingerprint,
                "corpus_digest": self.corpus_digest, "evidence": self.evidence}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RetrievalConfig":
        """The config of a :meth:`to_dict` record; another version or an unknown key is refused."""
        version = data.get("version")
        if version != VERSION:
            raise RetrievalConfigError(f"retrieval.json has version {version!r}; this package reads version {VERSION}. "
                                       "Upgrade llama-index-bge-finetune, or rerun the evaluation to rewrite it.")
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise RetrievalConfigError(f"retrieval.json has unknown field(s) {unknown}; version {VERSION} has "
                                       f"{', '.join(_KEYS)}.")
        try:
            fusion = FusionSpec.from_dict(data["fusion"]) if data.get("fusion") is not None else None
            bm25 = BM25Settings.from_dict(data["bm25"]) if data.get("bm25") is not None else None
        except (TypeError, ValueError) as exc:
            raise RetrievalConfigError(f"retrieval.json holds invalid settings: {exc}") from exc
        return cls(pipeline=str(data.get("pipeline")), fusion=fusion, bm25=bm25,
                   chosen_on=dict(data.get("chosen_on") or {}), reason=str(data.get("reason") or ""),
                   model_fingerprint=data.get("model_fingerprint"), corpus_digest=data.get("corpus_digest"),
                   evidence=data.get("evidence"))

    def save(self, path: PathLike) -> Path:
        """Write ``retrieval.json`` atomically into the folder ``path`` (or to ``path`` if it ends in ``.json``)."""
        target = _file(path)
        outputs.write_text(target, json.dumps(self.to_dict(), indent=2, ensure_ascii=False))
        return target

    @classmethod
    def load(cls, path: PathLike) -> "RetrievalConfig":
        """Read ``retrieval.json`` from the folder ``path`` (or the file ``path``).

        Raises:
            RetrievalConfigError: no such file, not JSON, another version, or invalid fields.
        """
        target = _file(path)
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RetrievalConfigError(f"No {CONFIG_FILE} at {target}: the model folder was not written by a run "
                                       "that evaluated BM25 and hybrids; rerun `bge-finetune run`.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RetrievalConfigError(f"{target} is not valid JSON ({exc}); rerun the evaluation to rewrite it.") from exc
        if not isinstance(data, dict):
            raise RetrievalConfigError(f"{target} holds {type(data).__name__}, not a JSON object.")
        return cls.from_dict(data)

    def describe(self) -> str:
        """The pipeline in words: ``"dense"``, ``"bm25"`` or ``"hybrid (zscore w=0.3)"``."""
        return f"hybrid ({self.fusion.label})" if self.fusion is not None else self.pipeline


def _file(path: PathLike) -> Path:
    p = Path(path)
    return p if p.suffix == ".json" else p / CONFIG_FILE
