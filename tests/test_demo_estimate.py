"""The demo's time estimate: per CPU kind from the measured runs, scaled by pairs x epochs, ISA caps applied."""

from __future__ import annotations

import pytest

from llama_index_bge_finetune.cli import estimate
from llama_index_bge_finetune.cli.estimate import (DEMO_TIMINGS, TRAINING_SHARE, busy_note, demo_estimate_line,
                                                   demo_pairs, estimate_seconds, format_duration)
from llama_index_bge_finetune.precisions import cpu_kind

AVX2 = frozenset({"sse4_2", "avx", "avx2", "fma"})
AVX512 = AVX2 | {"avx512f", "avx512bw", "avx512vl"}
BF16 = AVX512 | {"avx512_bf16"}
AMX = AVX512 | {"amx_bf16", "amx_tile"}


@pytest.mark.parametrize("flags, kind", [(BF16, "bf16"), (AMX, "bf16"), (AVX512, "avx512"), (AVX2, "avx2"),
                                         (frozenset({"sse4_2", "avx"}), "older")])
def test_cpu_kind_from_flags(flags: frozenset, kind: str) -> None:
    assert cpu_kind(flags, environ={}) == kind


@pytest.mark.parametrize("environ, kind", [
    ({"ATEN_CPU_CAPABILITY": "avx2"}, "avx2"),
    ({"ATEN_CPU_CAPABILITY": "avx512"}, "bf16"),
    ({"ATEN_CPU_CAPABILITY": "default"}, "older"),
    ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, "avx512"),
    ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, "bf16"),
    ({"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}, "avx2"),
    ({"ATEN_CPU_CAPABILITY": ""}, "bf16"),
])
def test_isa_caps_slow_the_kind_down_never_up(environ: dict, kind: str) -> None:
    assert cpu_kind(BF16, environ=environ) == kind
    assert cpu_kind(AVX2, environ=environ) in ("avx2", "older")  # a cap never makes a CPU faster


def test_the_estimate_of_the_measured_demo_is_the_measurement_of_each_kind() -> None:
    assert demo_pairs(160) == 256  # 128 training chunks x 2 questions: the measured runs' work
    for kind, timing in DEMO_TIMINGS.items():
        assert estimate_seconds(kind, 256, 1) == pytest.approx(timing.seconds)
        assert timing.source
    assert estimate_seconds("bf16", 256, 1) < estimate_seconds("avx512", 256, 1) < estimate_seconds("avx2", 256, 1)


def test_only_training_grows_with_pairs_and_epochs() -> None:
    base = DEMO_TIMINGS["avx2"].seconds
    assert estimate_seconds("avx2", 256, 2) == pytest.approx(base * (1 + TRAINING_SHARE))
    assert estimate_seconds("avx2", 512, 1) == pytest.approx(estimate_seconds("avx2", 256, 2))
    assert estimate_seconds("avx2", 0, 1) == pytest.approx(base * (1 - TRAINING_SHARE))
    with pytest.raises(ValueError, match="epochs"):
        estimate_seconds("avx2", 256, 0)


def test_no_estimate_without_a_measured_kind() -> None:
    assert estimate_seconds("older", 256, 1) is None
    assert estimate_seconds(None, 256, 1) is None


def test_durations_read_as_a_person_would_say_them() -> None:
    assert format_duration(145) == "about 2.5 minutes"
    assert format_duration(98) == "about 1.5 minutes"
    assert format_duration(87) == "about 90 seconds"
    assert format_duration(3) == "about 10 seconds"


def test_a_busy_machine_is_named_with_its_load() -> None:
    assert busy_note(load=6.16, cores=2) == " This machine is busy (load average 6.2 on 2 cores): expect it to take longer."
    assert busy_note(load=1.5, cores=2) == ""


def test_demo_line_names_the_estimate_and_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(estimate, "busy_note", lambda: "")
    monkeypatch.setattr(estimate, "cpu_description", lambda: "Test CPU, AVX2 only")
    monkeypatch.setattr(estimate, "cpu_kind", lambda: "avx2")
    line = demo_estimate_line(160, 1, packaged_model=True)
    assert line == ("The demo takes about 2.5 minutes on a 2-core CPU like this one (Test CPU, AVX2 only); "
                    "less with more cores.")
    assert "another base model" in demo_estimate_line(160, 1, packaged_model=False)
    monkeypatch.setattr(estimate, "cpu_kind", lambda: "older")
    assert demo_estimate_line(160, 1, packaged_model=True).startswith("No time estimate for this CPU (Test CPU")
