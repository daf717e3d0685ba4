"""How long ``bge-finetune demo`` takes on this CPU: measured demo runs per CPU kind, scaled by the work.

:data:`DEMO_TIMINGS` holds one measured run of the default demo per CPU kind
(:func:`llama_index_bge_finetune.precisions.cpu_kind`): 160 chunks of 256 tokens, offline questions,
256 training pairs, one epoch, the packaged all-MiniLM-L6-v2, on 2 cores. Its training share
(:data:`TRAINING_SHARE`) grows with pairs x epochs; the rest (start-up, reading, mining, evaluation)
is counted as fixed. The share was measured on the AVX2 CPU and is assumed on the others.

Example::

    estimate_seconds("avx2", pairs=256, epochs=1)   # 145.0, the calibration itself
    estimate_seconds("avx2", pairs=256, epochs=2)   # 234.9: training runs twice, the rest once
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Dict, Optional

from llama_index_bge_finetune.precisions import cpu_description, cpu_kind


@dataclass(frozen=True)
class DemoTiming:
    """Wall seconds of the default demo on one CPU kind, and where they were measured."""

    seconds: float
    source: str


#: The default demo's wall time (interpreter start to exit) per CPU kind; the CLI's own "Done in"
#: figure is about 3 s less (imports). Measured on 2-core machines; benchmarks/RESULTS.md has the runs
#: and benchmarks/results/demo_wall_time.md the check of this table.
DEMO_TIMINGS: Dict[str, DemoTiming] = {
    "bf16": DemoTiming(87.0, "2-core AMD EPYC with AVX-512 and native bf16 (bf16 autocast): 84 s as the CLI "
                             "reports it, 2026-12-03, 6edba02, plus 3 s start-up"),
    "avx512": DemoTiming(98.0, "2-core Intel Xeon @ 2.80GHz, AVX-512 without native bf16 (fp32): 98 s wall "
                               "(95 s as the CLI reports it), 2026-12-04, 9c46a4c"),
    "avx2": DemoTiming(145.0, "2-core AMD EPYC (Zen 1), AVX2 only (fp32), shared with other jobs: 132 s wall "
                              "on 2026-12-07 (4caa55a) and 158 s in an earlier run; their mean"),
}

#: The work of the measured runs: training pairs and epochs.
DEMO_PAIRS = 256
DEMO_EPOCHS = 1.0

#: Share of the demo's wall time that grows with pairs x epochs: the trainer's 81 s of the 132 s run
#: on the AVX2 CPU (mining, model loads, evaluation and start-up make the rest).
TRAINING_SHARE = 0.62


def estimate_seconds(kind: Optional[str], pairs: int, epochs: float) -> Optional[float]:
    """Wall seconds of a demo-like run of ``pairs`` training pairs for ``epochs`` on a 2-core CPU of ``kind``.

    ``None`` for a kind without a measured run (a CPU without AVX2, or one whose flags are unknown).
    """
    timing = DEMO_TIMINGS.get(kind or "")
    if timing is None:
        return None
    if pairs < 0 or epochs <= 0:
        raise ValueError(f"pairs must be >= 0 and epochs > 0, got pairs={pairs}, epochs={epochs}.")
    work = (pairs * epochs) / (DEMO_PAIRS * DEMO_EPOCHS)
    return timing.seconds * ((1.0 - TRAINING_SHARE) + TRAINING_SHARE * work)


def demo_pairs(chunks: int, questions_per_chunk: int = 2, val_fraction: float = 0.2) -> int:
    """Training pairs of a demo over ``chunks`` chunks: the questions of the chunks not held out for evaluation."""
    held_out = max(1, round(chunks * val_fraction)) if chunks > 1 else 0
    return (chunks - held_out) * questions_per_chunk


def format_duration(seconds: float) -> str:
    """``"about 2.5 minutes"`` (half minutes) from 90 s on, ``"about 40 seconds"`` (tens) below."""
    if seconds >= 90:
        minutes = round(seconds / 30) / 2
        return f"about {minutes:g} minutes"
    return f"about {max(10, round(seconds / 10) * 10)} seconds"


def demo_estimate_line(chunks: int, epochs: float, packaged_model: bool) -> str:
    """The line the demo prints before it starts: its estimated time on this CPU, and the CPU."""
    kind = cpu_kind()
    seconds = estimate_seconds(kind, demo_pairs(chunks), epochs)
    cpu = cpu_description()
    if seconds is None:
        return f"No time estimate for this CPU ({cpu}): the demo was timed on CPUs with AVX2 or AVX-512."
    line = f"The demo takes {format_duration(seconds)} on a 2-core CPU like this one ({cpu}); less with more cores."
    if not packaged_model:
        line += " (Timed with the packaged all-MiniLM-L6-v2; another base model takes a different time.)"
    return line + busy_note()


def busy_note(load: Optional[float] = None, cores: Optional[int] = None) -> str:
    """A sentence for the estimate when other work already keeps every core busy (1-minute load average >= cores).

    The timings were measured with the cores to the demo: on a 2-core machine at a load average of 6
    the same demo took 2.6x as long (benchmarks/results/demo_wall_time.md). ``load`` and ``cores``
    default to this machine's (no note where the load average is unknown).
    """
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # not available on this platform
            return ""
    cores = cores or os.cpu_count() or 1
    if load < cores:
        return ""
    return f" This machine is busy (load average {load:.1f} on {cores} cores): expect it to take longer."
