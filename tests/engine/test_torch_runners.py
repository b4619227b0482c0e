"""The bench's torch rows run the numerics they are labelled with: the eager FP32 baseline with TF32 off, the
TF32 row with TF32 on, cuDNN autotuning on for every row (as in the shipped backend), and the FP16 variants on
the shipped backend's model (FP16 convolutions, InstanceNorm in FP32). CPU torch: the flags exist and can be
read there, and FP16 convolutions run (slowly)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from styleengine.engine.backend_torch import cuda_numerics, half_convs, uint8_forward  # noqa: E402
from styleengine.engine.bench.grid import run_bench  # noqa: E402
from styleengine.engine.bench.torch_runners import (  # noqa: E402
    BASELINE_VARIANT,
    VARIANTS,
    TorchRunner,
    numerics_of,
    variant_model,
)
from tests.conftest import make_tiny_model  # noqa: E402


def flags() -> tuple[bool, bool, bool]:
    return (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)


class FlagSpy(torch.nn.Module):
    """Wraps a model; records (matmul TF32, cuDNN TF32, cuDNN benchmark) at every forward."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.seen: list[tuple[bool, bool, bool]] = []

    def forward(self, x):
        self.seen.append(flags())
        return self.inner(x)


@pytest.fixture
def tf32_everywhere():
    """A process whose settings would make 'FP32' secretly TF32 and leave autotuning off; restored after."""
    before = flags()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = False
    yield (True, True, False)
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = before


def batch(n: int = 1, h: int = 20, w: int = 28) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("variant", [BASELINE_VARIANT, "fp16-cl"])
def test_rows_run_with_tf32_off_and_autotuning_on_and_restore_the_flags(tf32_everywhere, variant):
    runner = TorchRunner(make_tiny_model(), "cpu", variant)
    spy = FlagSpy(runner.model)
    runner.model = spy
    out = runner.run(batch())
    assert out.shape == (1, 20, 28, 3) and out.dtype == np.uint8
    assert spy.seen and set(spy.seen) == {(False, False, True)}  # inside every forward, prepare's included
    assert flags() == tf32_everywhere  # the process's own settings are back
    runner.close()


def test_baseline_is_true_fp32_on_cuda_too_and_the_tf32_row_is_labelled():
    assert numerics_of(BASELINE_VARIANT, cuda=True) == "fp32"
    assert numerics_of("tf32", cuda=True) == "tf32"
    assert numerics_of("fp16-cl", cuda=True) == numerics_of("cudagraph", cuda=True) == "fp16"
    with cuda_numerics(numerics_of(BASELINE_VARIANT, cuda=True)):
        assert flags() == (False, False, True)
    with cuda_numerics(numerics_of("tf32", cuda=True)):
        assert flags() == (True, True, True)
    assert "tf32" in VARIANTS
    with pytest.raises(RuntimeError, match="TF32"):
        TorchRunner(make_tiny_model(), "cpu", "tf32")


def _structure(model) -> list[tuple[str, str, tuple]]:
    return [(name, type(m).__name__, tuple(p.dtype for p in m.parameters(recurse=False)))
            for name, m in model.named_modules()]


def test_fp16_variants_run_the_shipped_model_instance_norm_in_fp32():
    model = make_tiny_model()
    shipped = half_convs(copy.deepcopy(model).eval())
    for variant in ("fp16-cl", "cudagraph", "compile"):
        v = variant_model(model, variant, half=True)
        assert _structure(v) == _structure(shipped)
        norms = [m for m in v.modules() if type(m).__name__ == "Fp32InstanceNorm"]
        inner = [m for m in v.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
        assert norms and len(norms) == len(inner)  # every InstanceNorm wrapped
        assert all(p.dtype == torch.float32 for m in norms for p in m.parameters())
        assert all(m.weight.dtype == torch.float16 for m in v.modules() if isinstance(m, torch.nn.Conv2d))
    # The same numbers as the shipped backend's model on the same input (FP16 convolutions run on a CPU too).
    x = torch.from_numpy(batch(1, 24, 32))
    with torch.inference_mode():
        a = uint8_forward(variant_model(model, "fp16-cl", half=True), x, torch.float16, False)
        b = uint8_forward(shipped, x, torch.float16, False)
    assert torch.equal(a, b)
    # The baseline (and the TF32 row) keep the network as it is: FP32, no wrappers.
    base = variant_model(model, BASELINE_VARIANT, half=True)
    assert not [m for m in base.modules() if type(m).__name__ == "Fp32InstanceNorm"]
    assert all(p.dtype == torch.float32 for p in base.parameters())


def test_cpu_variant_rows_have_the_wrappers_in_fp32():
    runner = TorchRunner(make_tiny_model(), "cpu", "fp16-cl")
    assert runner.precision == "fp32" and runner.dtype == torch.float32
    assert [m for m in runner.model.modules() if type(m).__name__ == "Fp32InstanceNorm"]
    assert all(p.dtype == torch.float32 for p in runner.model.parameters())
    base = TorchRunner(make_tiny_model(), "cpu", BASELINE_VARIANT)
    np.testing.assert_array_equal(runner.run(batch()), base.run(batch()))  # a no-op wrapper in FP32


def test_grid_lists_the_tf32_row_as_unavailable_on_a_cpu(tiny_checkpoint, tmp_path):
    import json
    import shutil

    from styleengine.core.bundle import BUNDLE_FORMAT, CHECKPOINT, MANIFEST

    folder = tmp_path / "tiny.engine"  # the torch part of a bundle: no ONNX export needed
    folder.mkdir()
    shutil.copy2(tiny_checkpoint, folder / CHECKPOINT)
    (folder / MANIFEST).write_text(json.dumps({"format": BUNDLE_FORMAT, "style": {"name": "tiny"}, "preset": "custom",
                                               "arch": {"preset": "custom", "widths": [4, 8, 16], "blocks": 1}}))
    report = run_bench(str(folder), backend=[], size="16", device="cpu", warmup=0, iters=1,
                       variant="tf32,fp16-cl", threads=1)
    by = {r["variant"]: r for r in report.rows}
    assert by["tf32"]["status"] == "unavailable" and "TF32" in by["tf32"]["reason"]
    assert by["fp16-cl"]["status"] == "ok" and by["eager"]["status"] == "ok"


def _cuda() -> bool:
    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs torch with CUDA and an NVIDIA GPU")
def test_cuda_rows_numerics_and_labels(tf32_everywhere):
    """On the device: every row's forwards (graph capture included) see its own flags; labels say them."""
    want = {BASELINE_VARIANT: ((False, False, True), "fp32"), "tf32": ((True, True, True), "tf32"),
            "fp16-cl": ((True, True, True), "fp16"), "cudagraph": ((True, True, True), "fp16")}
    for variant, (seen, precision) in want.items():
        runner = TorchRunner(make_tiny_model(), "cuda", variant)
        spy = FlagSpy(runner.model)
        runner.model = spy
        x = batch(2, 32, 48)
        runner.prepare(x)
        out = runner.run(x)
        assert out.shape == x.shape and runner.precision == precision
        assert set(spy.seen) == {seen}, variant
        assert runner.last_timings()["gpu_ms"] > 0
        if variant != BASELINE_VARIANT:
            assert [m for m in runner.model.modules() if type(m).__name__ == "Fp32InstanceNorm"] or variant == "tf32"
        runner.close()
    assert flags() == tf32_everywhere
