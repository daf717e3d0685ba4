"""The run around an evaluation, for the HTML report: training log, run settings, versions, machine.

Everything is read from files a run leaves (``run.json``, ``model/training_result.json``) and from
the interpreter; anything absent is simply left out. Nothing secret gets through: keys that name a
secret (``api_key``, ``token``, ...) and strings that look like one (``sk-...``) are replaced, and so
is the value of every secret-named environment variable wherever it appears.

Example::

    from llama_index_bge_finetune.report.run_context import read_training, environment

    training = read_training([Path("run/model")])
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

logger = logging.getLogger(__name__)

HIDDEN = "(hidden)"
_SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|passwd|credential|authorization|auth)", re.I)
_SECRET_VALUE = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{8,}|Bearer\s+[^\s\"\\]{8,})")
PACKAGES = ("llama-index-bge-finetune", "sentence-transformers", "transformers", "torch", "llama-index-core",
            "numpy", "accelerate", "datasets", "openai", "onnxruntime")
# Trainer log keys that are bookkeeping, not metrics worth a chart.
_NOT_METRICS = ("runtime", "samples_per_second", "steps_per_second", "epoch", "step", "total_flos")


def secret_values() -> List[str]:
    """Values of environment variables whose names say they hold a secret (8 characters or more)."""
    return [v for k, v in os.environ.items() if _SECRET_KEY.search(k) and len(v) >= 8]


def scrub_text(text: str, secrets: Optional[Iterable[str]] = None) -> str:
    """``text`` (plain or JSON) with secret values and secret-looking strings hidden; JSON stays valid."""
    for s in secret_values() if secrets is None else secrets:
        text = text.replace(s, HIDDEN)
    if "sk-" in text or "hf_" in text or "Bearer" in text:  # the regex is slow on megabytes of JSON
        text = _SECRET_VALUE.sub(HIDDEN, text)
    return text


def redact(obj: Any, secrets: Optional[Iterable[str]] = None) -> Any:
    """A copy of ``obj`` (JSON-like) with secret-named keys and secret-looking strings hidden."""
    secrets = list(secret_values() if secrets is None else secrets)

    def clean(x: Any, key: str = "") -> Any:
        if key and _SECRET_KEY.search(key) and x not in (None, "", False):
            return HIDDEN
        if isinstance(x, dict):
            return {k: clean(v, str(k)) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, str):
            return scrub_text(x, secrets)
        return x

    return clean(obj)


def read_json(path: Path) -> Optional[Dict[str, Any]]:
    """A JSON object from ``path``, or ``None`` when absent or unreadable (logged)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        logger.warning("Could not read %s for the report: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


def read_training(folders: Iterable[Path]) -> Optional[Dict[str, Any]]:
    """The first ``training_result.json`` found in ``folders``, shaped for the report's training section.

    Returns ``None`` when no folder holds one. ``loss`` and ``evaluations`` come from the trainer's
    ``log_history`` when the file has it (``[]`` otherwise).
    """
    for folder in folders:
        data = read_json(Path(folder) / "training_result.json")
        if data is None:
            continue
        loss, evals, lr = [], [], []
        for entry in data.get("log_history") or []:
            if not isinstance(entry, dict):
                continue
            step = entry.get("step")
            if "loss" in entry and isinstance(entry["loss"], (int, float)):
                loss.append({"step": step, "epoch": entry.get("epoch"), "loss": entry["loss"]})
            if isinstance(entry.get("learning_rate"), (int, float)):
                lr.append({"step": step, "learning_rate": entry["learning_rate"]})
            for key, value in entry.items():
                if key.startswith("eval_") and isinstance(value, (int, float)) and not key.endswith(_NOT_METRICS):
                    evals.append({"step": step, "epoch": entry.get("epoch"), "metric": key[5:], "value": value})
        return {
            "folder": str(folder),
            "steps": data.get("steps"),
            "train_seconds": data.get("train_seconds"),
            "total_seconds": data.get("total_seconds"),
            "mining_seconds": data.get("mining_seconds"),
            "examples_per_second": data.get("examples_per_second"),
            "final_loss": data.get("final_loss"),
            "mean_loss": data.get("mean_loss"),
            "pairs": data.get("pairs"),
            "pairs_with_negatives": data.get("pairs_with_negatives"),
            "resumed_from_step": data.get("resumed_from_step"),
            "hyperparameters": data.get("hyperparameters") or {},
            "evaluation": data.get("evaluation") or {},
            "loss": loss,
            "evaluations": evals,
            "learning_rate": lr,
        }
    return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
    return ", ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags)


def environment() -> Dict[str, Any]:
    """Python, package versions and the machine (CPU kind, cores, memory, GPU)."""
    from importlib import metadata

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    memory = None
    try:
        memory = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    gpu = None
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        except Exception:  # noqa: BLE001 - a broken CUDA setup must not break the report
            gpu = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cpu_features": _cpu_flags(),
        "cores": os.cpu_count(),
        "memory_gb": memory,
        "gpu": gpu or "none",
        "packages": versions,
    }
