"""The training precisions a user can name and the CPU kind they depend on, without importing torch.

The CLI refuses a typo at once and names the CPU before any model library loads. Which precision a
device trains in is decided by ``training.core.precision_flags``.
"""

from __future__ import annotations

import os
from typing import FrozenSet, Mapping, Optional, Tuple

from llama_index_bge_finetune.errors import TrainingError

PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: Precisions every device trains in; fp16 needs a GPU.
ANY_DEVICE_PRECISIONS = ("auto", "fp32", "bf16")


def check_precision_name(precision: str) -> None:
    """Raise :class:`TrainingError` naming the valid choices when ``precision`` is not one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise TrainingError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")


#: Environment variables that make PyTorch and oneDNN use fewer instructions than the CPU has
#: (``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` runs as on an AVX2-only CPU).
ISA_CAPS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")

#: CPU flags of the instructions oneDNN uses for bfloat16 matrix products.
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_info() -> Tuple[str, Optional[FrozenSet[str]]]:
    """The CPU's model name and its flags from ``/proc/cpuinfo`` (flags ``None`` where it cannot be read)."""
    import platform

    model, flags = platform.processor() or platform.machine(), frozenset()
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name") and ":" in line:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and ":" in line:
                    flags = frozenset(line.split(":", 1)[1].split())
    except OSError:
        return model, None
    return model, flags


def cpu_description() -> str:
    """The CPU model and the kind that decides training speed, e.g. ``AMD EPYC, AVX2 only (no AVX-512, no native bf16)``.

    Native bf16 means a flag of :data:`NATIVE_BF16_FLAGS` (AVX512-BF16 or AMX).
    """
    model, flags = cpu_info()
    flags = flags or frozenset()
    kind = {
        "bf16": "AVX-512 with native bf16" + (" and AMX" if "amx_bf16" in flags else ""),
        "avx512": "AVX-512, no native bf16",
        "avx2": "AVX2 only (no AVX-512, no native bf16)",
        "older": "no AVX2",
    }[hardware_kind(flags)]
    capped = [f"{name}={os.environ[name]}" for name in ISA_CAPS if os.environ.get(name)]
    if capped:
        kind += f"; PyTorch's kernels capped by {', '.join(capped)}"
    return f"{model}, {kind}"


#: The CPU kinds that decide training speed, fastest first: native bfloat16 (AVX512-BF16 or AMX),
#: AVX-512 without it, AVX2 only, and older.
CPU_KINDS = ("bf16", "avx512", "avx2", "older")

# The fastest kind each value of an ISA_CAPS variable leaves PyTorch (values it does not name cap nothing).
_ATEN_CAPS = {"default": "older", "avx2": "avx2", "avx512": "bf16"}
_ONEDNN_CAPS = {"sse41": "older", "avx": "older", "avx2": "avx2", "avx2_vnni": "avx2", "avx2_vnni_2": "avx2",
                "avx512_core": "avx512", "avx512_core_vnni": "avx512"}


def hardware_kind(flags: FrozenSet[str]) -> str:
    """The :data:`CPU_KINDS` entry of a CPU with these ``/proc/cpuinfo`` flags."""
    if flags & NATIVE_BF16_FLAGS:
        return "bf16"
    if "avx512f" in flags:
        return "avx512"
    return "avx2" if "avx2" in flags else "older"


def cpu_kind(flags: Optional[FrozenSet[str]] = None, environ: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """This CPU's kind (:data:`CPU_KINDS`) as PyTorch uses it: the hardware's, or slower where an
    :data:`ISA_CAPS` variable caps PyTorch's or oneDNN's instructions (``ATEN_CPU_CAPABILITY=avx2`` on
    an AVX-512 CPU gives ``"avx2"``). ``None`` where the flags cannot be read (not Linux).

    ``flags`` and ``environ`` default to this machine's (:func:`cpu_info`, ``os.environ``).
    """
    if flags is None:
        flags = cpu_info()[1]
        if flags is None:
            return None
    environ = os.environ if environ is None else environ
    kinds = [hardware_kind(flags)]
    for variable, caps in (("ATEN_CPU_CAPABILITY", _ATEN_CAPS), ("ONEDNN_MAX_CPU_ISA", _ONEDNN_CAPS)):
        cap = caps.get(environ.get(variable, "").strip().lower())
        if cap is not None:
            kinds.append(cap)
    return max(kinds, key=CPU_KINDS.index)
