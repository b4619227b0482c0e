"""OpenVINO's precision follows the CPU's ISA: bf16 only where the hardware runs it natively."""

from __future__ import annotations

import pytest

from styleengine.engine.backend_openvino import best_precision


@pytest.mark.parametrize(("flags", "expected"), [
    ({"avx2", "fma", "f16c"}, "fp32"),  # AMD EPYC / older Xeon: no bf16 units
    ({"avx512f", "avx512_bf16"}, "bf16"),  # Cooper Lake, Zen 4
    ({"avx512f", "amx_bf16", "amx_int8", "amx_tile"}, "bf16"),  # Sapphire Rapids and later
    ({"avx512f", "avx512_vnni"}, "fp32"),  # VNNI speeds INT8, not bf16
    (set(), "fp32"),
])
def test_best_precision_follows_the_isa(flags, expected):
    assert best_precision(frozenset(flags)) == expected
