"""Fingerprints of a model's weights and settings: the key under which its vectors may be reused.

Example::

    from sentence_transformers import SentenceTransformer
    from llama_index_bge_finetune.encoding.fingerprint import model_fingerprint

    key = model_fingerprint(SentenceTransformer("out/model"))  # changes with any weight or prompt
"""

from __future__ import annotations

import hashlib
from typing import Any, List


def hash_state_dict(module: Any) -> List[Any]:
    """Raw bytes of every parameter and buffer, in order (fast: no copies for CPU tensors)."""
    import torch

    parts: List[Any] = []
    for key, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        parts.append(key)
        parts.append(memoryview(t.view(-1).view(torch.uint8).numpy()))
    return parts


def model_fingerprint(model: Any) -> str:
    """A hex digest of a ``SentenceTransformer``'s weights and module settings (truncation, pooling, prompts)."""
    h = hashlib.blake2b(digest_size=16)
    parts: List[Any] = [str(model.max_seq_length), repr(sorted((getattr(model, "prompts", None) or {}).items()))]
    parts += [repr(m) for m in model] + hash_state_dict(model)
    for part in parts:
        h.update(b"\0")
        h.update(part if isinstance(part, memoryview) else str(part).encode())
    return h.hexdigest()
