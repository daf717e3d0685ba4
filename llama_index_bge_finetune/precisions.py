"""The training precisions a user can name and the CPU kind they depend on, without importing torch.

The CLI refuses a typo at once and names the CPU before any model library loads. Which precision a
device trains in is decided by ``training.core.precision_flags``.
"""

from __future__ import annotations

import os
from typing import FrozenSet, Optional, Tuple

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
    if flags & NATIVE_BF16_FLAGS:
        kind = "AVX-512 with native bf16" + (" and AMX" if "amx_bf16" in flags else "")
    elif "avx512f" in flags:
        kind = "AVX-512, no native bf16"
    elif "avx2" in flags:
        kind = "AVX2 only (no AVX-512, no native bf16)"
    else:
        kind = "no AVX2"
    capped = [f"{name}={os.environ[name]}" for name in ISA_CAPS if os.environ.get(name)]
    if capped:
        kind += f"; PyTorch's kernels capped by {', '.join(capped)}"
    return f"{model}, {kind}"
