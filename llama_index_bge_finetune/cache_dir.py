"""Where the package caches what it computes (corpus vectors, hosted embeddings, exported models).

Example::

    from llama_index_bge_finetune.cache_dir import default_cache_dir

    default_cache_dir()   # ~/.cache/llama-index-bge-finetune/embeddings unless $BGE_FINETUNE_CACHE_DIR is set
"""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$BGE_FINETUNE_CACHE_DIR``, else ``$XDG_CACHE_HOME`` (or ``~/.cache``) ``/llama-index-bge-finetune/embeddings``."""
    env = os.environ.get("BGE_FINETUNE_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llama-index-bge-finetune" / "embeddings"
