"""One conformance test for every backend configuration this machine can run, against the torch FP32 reference.

Each configuration must return (N, H, W, 3) uint8 for a uint8 batch of odd sizes (not multiples of 4), stay in
range, and match the reference within its precision's tolerance. GPU configurations are marked and skipped here.
"""

from __future__ import annotations

import numpy as np
import pytest

from styleengine.engine.backend import REGISTRY, get_backend
from styleengine.engine.bundle import load_bundle
from styleengine.engine.hardware import cuda_device_count
from styleengine.errors import StyleEngineError

# uint8 levels: (max |diff|, mean |diff|). The tiny test net amplifies its input x20 at the output layer,
# so these are loose for FP16/INT8; real styles are far tighter (see benchmarks/results/cpu_speed.json).
TOLERANCE = {"fp32": (2, 0.05), "fp16": (24, 2.0), "int8": (12, 2.0)}

GPU = pytest.mark.skipif(cuda_device_count() == 0, reason="needs an NVIDIA GPU")
CONFIGS = [
    pytest.param("torch", {"device": "cpu", "precision": "fp32"}, "fp32", id="torch-cpu-fp32"),
    pytest.param("onnxruntime", {"provider": "cpu", "precision": "fp32"}, "fp32", id="ort-cpu-fp32"),
    pytest.param("onnxruntime", {"provider": "cpu", "precision": "int8"}, "int8", id="ort-cpu-int8"),
    # The I/O-binding path the GPU providers use, exercised on the CPU.
    pytest.param("onnxruntime", {"provider": "cpu", "io_binding": True}, "fp32", id="ort-cpu-iobinding"),
    # The FP16 model on the CPU EP (ORT computes it through FP32 casts): checks the FP16 file itself.
    pytest.param("onnxruntime", {"provider": "cpu", "precision": "fp16"}, "fp16", id="ort-cpu-fp16model"),
    pytest.param("onnxruntime", {"provider": "cuda"}, "fp16", id="ort-cuda-fp16", marks=[pytest.mark.gpu, GPU]),
    pytest.param("onnxruntime", {"provider": "tensorrt"}, "fp16", id="ort-trt-fp16",
                 marks=[pytest.mark.gpu, pytest.mark.tensorrt, GPU]),
    pytest.param("torch", {"device": "cuda"}, "fp16", id="torch-cuda-fp16", marks=[pytest.mark.gpu, GPU]),
    pytest.param("tensorrt", {}, "fp16", id="tensorrt-fp16", marks=[pytest.mark.gpu, pytest.mark.tensorrt, GPU]),
]


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    return load_bundle(tiny_bundle)


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(1)
    b = rng.integers(0, 256, (2, 30, 42, 3), dtype=np.uint8)
    y, x = np.mgrid[0:30, 0:42]
    b[1, ..., 0], b[1, ..., 1] = (x * 6).astype(np.uint8), (y * 8).astype(np.uint8)  # a smooth frame too
    return b


@pytest.fixture(scope="module")
def reference(bundle, batch):
    with get_backend("torch")(bundle, device="cpu", precision="fp32") as be:
        return be.infer(batch)


@pytest.mark.parametrize("name,kwargs,precision", CONFIGS)
def test_backend_conforms_to_torch_reference(name, kwargs, precision, bundle, batch, reference, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path / "cache"))
    cls = get_backend(name)
    ok, why = cls.available()
    if not ok:
        pytest.skip(why)
    with cls(bundle, **kwargs) as be:
        assert be.loaded
        out = be.infer(batch)
        assert be.describe()["backend"] == name
        if precision == "int8":  # the measured quality cost travels with the backend
            q = be.describe()["int8_vs_fp32"]
            assert q["frames"] == 2 and q["psnr_db"] > 25 and q["max_abs_diff"] < 64
        single = be.infer(np.ascontiguousarray(batch[1:2]))  # a new shape on a loaded backend
    assert not be.loaded  # the context manager closed it
    assert out.shape == batch.shape and out.dtype == np.uint8
    assert single.shape == (1, 30, 42, 3)
    assert out.std() > 5  # not a constant image
    diff = np.abs(out.astype(int) - reference.astype(int))
    max_tol, mean_tol = TOLERANCE[precision]
    assert diff.max() <= max_tol and diff.mean() <= mean_tol, (diff.max(), diff.mean())
    assert np.array_equal(single[0], out[1]) or precision != "fp32"  # batching does not change results


@pytest.mark.parametrize("name", ["torch", "onnxruntime"])
def test_backend_rejects_wrong_input(name, bundle):
    with get_backend(name)(bundle, device="cpu") as be:
        for bad in (np.zeros((1, 8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8), np.zeros((1, 8, 8, 4), np.uint8)):
            with pytest.raises(StyleEngineError, match="uint8"):
                be.infer(bad)


def test_registry_names_and_unknown_backend():
    assert set(REGISTRY) == {"tensorrt", "onnxruntime", "torch"}
    with pytest.raises(StyleEngineError, match="unknown backend"):
        get_backend("opencl")


def test_gpu_requests_fail_clearly_without_a_gpu(bundle):
    if cuda_device_count():
        pytest.skip("this machine has a GPU")
    for provider in ("cuda", "tensorrt"):
        with pytest.raises(StyleEngineError, match="GPU"):
            get_backend("onnxruntime")(bundle, provider=provider).load()
    with pytest.raises(StyleEngineError, match="fp16 needs CUDA|CUDA"):
        get_backend("torch")(bundle, device="cpu", precision="fp16").load()


def test_ort_tensorrt_ep_options(bundle, tmp_path, monkeypatch):
    """Provider options for ORT's TensorRT EP (checked without a GPU; the session itself needs one)."""
    import styleengine.engine.backend_onnxruntime as mod

    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path))
    monkeypatch.setattr(mod, "cuda_device_count", lambda: 1)
    be = mod.OnnxRuntimeBackend(bundle, provider="tensorrt", device="cuda:1")
    model = be._model_path()
    assert be.precision == "fp16" and model.name == "model_fp16.onnx"
    (name, trt), (cuda_name, cuda), cpu = be._providers(model)
    assert (name, cuda_name, cpu) == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    assert trt["device_id"] == 1 == cuda["device_id"] and trt["trt_fp16_enable"] is True
    assert trt["trt_profile_min_shapes"].startswith("input:1x") and trt["trt_profile_max_shapes"].endswith("x3")
    assert trt["trt_timing_cache_path"] == str(tmp_path / "ort-trt")
    assert trt["trt_engine_cache_path"].startswith(str(tmp_path / "ort-trt") + "/")  # per model content
    lo_h, lo_w, hi_h, hi_w = be.shape_limits()
    assert lo_h <= 64 and hi_h >= 1080 and be.max_batch_size() >= 1
