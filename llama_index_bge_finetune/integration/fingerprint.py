"""Which model made a set of vectors: a name and a hash of the weights, comparable across runs.

Two models give interchangeable document vectors only when they are the same weights with the
same text-side settings, so the fingerprint covers exactly those::

    from llama_index_bge_finetune.integration import fingerprint_embed_model, from_finetuned

    fp = fingerprint_embed_model(from_finetuned("out/model"))
    print(fp.name, fp.short)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Dict, Optional


@dataclass(frozen=True)
class EmbedModelFingerprint:
    """The identity of the model that embeds documents.

    Attributes:
        name: the model's name or folder (for messages; not compared).
        kind: the LlamaIndex embedding class (``HuggingFaceEmbedding``, ``OpenAIEmbedding``, ...).
        digest: sha256 over the weights and the text-side settings; for API models without
            local weights, over the class and model name.
    """

    name: str
    kind: str
    digest: str

    @property
    def short(self) -> str:
        """The first 12 hex digits of the digest, for folder and collection names."""
        return self.digest[:12]

    def to_dict(self) -> Dict[str, str]:
        """A JSON-ready dict, as stored beside an index."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "EmbedModelFingerprint":
        """Read back what :meth:`to_dict` stored."""
        return cls(name=str(data["name"]), kind=str(data["kind"]), digest=str(data["digest"]))

    def same_vectors_as(self, other: "EmbedModelFingerprint") -> bool:
        """True when both models embed documents identically."""
        return self.digest == other.digest

    def describe(self) -> str:
        """``name (kind, sha256 abc123...)`` for error messages."""
        return f"{self.name} ({self.kind}, weights sha256 {self.short})"


def document_side_model(embed_model: Any) -> Any:
    """The model that embeds documents: the base model under a query-side adapter, else itself."""
    inner = getattr(embed_model, "_base_embed_model", None)
    return document_side_model(inner) if inner is not None else embed_model


def fingerprint_embed_model(embed_model: Any) -> EmbedModelFingerprint:
    """Fingerprint the document side of a LlamaIndex embedding (or a ``SentenceTransformer``).

    A query-side adapter (``QueryAdapterEmbedding``, llama-index's ``AdapterEmbeddingModel``)
    fingerprints as its base model, because it leaves document vectors unchanged.
    """
    model = document_side_model(embed_model)
    kind = type(model).__name__
    name = str(getattr(model, "model_name", None) or kind)
    settings: Dict[str, Any] = {"kind": kind}
    module = _torch_module(model)
    h = hashlib.sha256()
    if module is None:
        settings["model_name"] = name
    for key in ("text_instruction", "normalize", "max_length", "dimensions"):
        value = getattr(model, key, None)
        if value is not None:
            settings[key] = value
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    if module is not None:
        _hash_weights(module, h)
    return EmbedModelFingerprint(name=name, kind=kind, digest=h.hexdigest())


def _torch_module(model: Any) -> Optional[Any]:
    """The torch module holding the weights: a SentenceTransformer itself or a wrapper's ``_model``."""
    import torch

    if isinstance(model, torch.nn.Module):
        return model
    inner = getattr(model, "_model", None)
    return inner if isinstance(inner, torch.nn.Module) else None


def _hash_weights(module: Any, h: "hashlib._Hash") -> None:
    import torch

    with torch.no_grad():
        for key, tensor in sorted(module.state_dict().items()):
            h.update(key.encode())
            h.update(str(tensor.dtype).encode())
            h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
