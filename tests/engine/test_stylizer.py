"""Python API (Stylizer), style resolution and backend selection."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from styleengine import Stylizer
from styleengine.core.bundle import load_bundle
from styleengine.core.errors import StyleEngineError
from styleengine.engine import select, styles


@pytest.fixture(scope="module")
def st(tiny_bundle):
    with Stylizer(tiny_bundle, backend="onnxruntime") as s:
        yield s


def _img(w=40, h=30, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_array_pil_path_and_batch_return_the_same_kind(st, tmp_path):
    a = _img()
    out = st(a)
    assert isinstance(out, np.ndarray) and out.shape == a.shape and out.dtype == np.uint8
    pil = st(Image.fromarray(a))
    assert isinstance(pil, Image.Image) and pil.size == (40, 30) and pil.mode == "RGB"
    assert np.array_equal(np.asarray(pil), out)
    p = tmp_path / "x.png"
    Image.fromarray(a).save(p)
    from_path = st(str(p))
    assert isinstance(from_path, Image.Image) and np.array_equal(np.asarray(from_path), out)
    frames = [_img(seed=i) for i in range(3)]
    batch = st.stylize_batch(frames)
    assert batch.shape == (3, 30, 40, 3)
    assert np.array_equal(batch[0], st(frames[0]))
    assert np.array_equal(st(np.stack(frames)), batch)
    with pytest.raises(StyleEngineError, match="one size"):
        st.stylize_batch([_img(), _img(20, 20)])


def test_rgba_pil_keeps_alpha(st):
    rgba = np.dstack([_img(), np.full((30, 40), 128, np.uint8)])
    out = st(Image.fromarray(rgba, "RGBA"))
    assert out.mode == "RGBA" and np.all(np.asarray(out)[..., 3] == 128)


def test_tiny_images_are_padded_and_cropped_back(st):
    for h, w in ((1, 1), (5, 3), (7, 64)):
        out = st(_img(w, h))
        assert out.shape == (h, w, 3)


def test_max_size_strength_and_preserve_color(tiny_bundle):
    a = _img(80, 40)
    with Stylizer(tiny_bundle, backend="onnxruntime", max_size=20) as s:
        assert s(a).shape == (10, 20, 3)
    with Stylizer(tiny_bundle, backend="onnxruntime", strength=0.0) as s:
        assert np.array_equal(s(a), a)
    with Stylizer(tiny_bundle, backend="onnxruntime", preserve_color=True) as s:
        out = s(a)
        assert out.shape == a.shape
    with pytest.raises(StyleEngineError, match="strength"):
        Stylizer(tiny_bundle, strength=2.0)


def test_oversize_image_names_max_size(st, monkeypatch):
    import styleengine.engine.stylizer as mod
    from styleengine.engine.backend import ShapeLimits

    monkeypatch.setattr(st.backend, "shape_limits", lambda: ShapeLimits(max_pixels=1000))  # a GPU-like cap
    with pytest.raises(StyleEngineError, match="--max-size"):
        st(_img(40, 30))
    monkeypatch.undo()
    st(_img(40, 30))  # the CPU checks memory instead of pixels

    def oom(batch):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(st.backend, "infer", oom)
    with pytest.raises(StyleEngineError, match="GPU out of memory.*--max-size"):
        st(_img(40, 30))
    monkeypatch.undo()
    monkeypatch.setattr(mod, "available_memory", lambda: 40 * 30 * 4 * 4 * 2)  # bytes for ~2 channels only
    with pytest.raises(StyleEngineError, match="GiB of memory.*--max-size"):
        st(_img(40, 30))
    assert st(_img(10, 10)).shape == (10, 10, 3)


def test_batches_stay_within_the_backends_maximum(st, monkeypatch):
    calls = []
    real = st.backend.infer
    monkeypatch.setattr(st.backend, "max_batch_size", lambda: 2)
    monkeypatch.setattr(st.backend, "infer", lambda b: calls.append(len(b)) or real(b))
    out = st.stylize_batch(np.stack([_img(seed=i) for i in range(5)]))
    assert out.shape == (5, 30, 40, 3) and calls == [2, 2, 1]
    assert st.batch_size == 1  # CPU: streaming sends frames one by one
    assert st.last_timings["frames"] == 5 and st.last_timings["wall_ms"] > 0


def test_bad_input_types_and_closed_stylizer(tiny_bundle):
    s = Stylizer(tiny_bundle, backend="onnxruntime")
    with pytest.raises(StyleEngineError, match="uint8"):
        s(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(StyleEngineError, match="PIL image"):
        s(42)
    s.close()
    with pytest.raises(StyleEngineError, match="closed"):
        s(_img())


def test_auto_backend_measures_the_cpu_runtimes_and_says_so(tiny_bundle, caplog, tmp_path, monkeypatch):
    import logging

    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path))
    caplog.set_level(logging.INFO, logger="styleengine")
    with Stylizer(tiny_bundle) as s:
        assert s.backend_name == "auto"
        s(_img())
        assert s.backend_name.startswith("auto -> ") and s.describe()["choices"]
    text = caplog.text
    assert "backend: auto" in text and "auto: " in text and "measured: onnxruntime fp32" in text


def test_candidates_with_and_without_gpu(monkeypatch):
    monkeypatch.setattr(select, "cuda_device_count", lambda: 0)
    assert [c.label for c in select.candidates()] == ["auto (cpu)"]
    assert [c.label for c in select.candidates(precision="int8")] == ["onnxruntime (cpu, int8)"]
    assert [c.label for c in select.candidates(precision="bf16")] == ["openvino (cpu, bf16)"]
    assert [c.backend for c in select.candidates(precision="fp32")] == ["onnxruntime", "openvino", "torch"]
    monkeypatch.setattr(select, "cuda_device_count", lambda: 1)
    assert [c.label for c in select.candidates()] == [
        "tensorrt (cuda:0)", "onnxruntime (tensorrt EP, cuda:0)", "onnxruntime (cuda EP, cuda:0)", "torch (cuda:0)",
        "auto (cpu)"]
    assert [c.label for c in select.candidates("torch", device="cpu")] == ["torch (cpu)"]
    assert [c.label for c in select.candidates("torch")] == ["torch (cuda:0)", "torch (cpu)"]
    assert [c.label for c in select.candidates(device="cuda:1")][0] == "tensorrt (cuda:1)"
    with pytest.raises(StyleEngineError, match="unknown backend"):
        select.candidates("cuda")
    with pytest.raises(StyleEngineError, match="unknown precision"):
        select.candidates(precision="int4")
    monkeypatch.setattr(select, "cuda_device_count", lambda: 0)
    with pytest.raises(StyleEngineError, match="no NVIDIA GPU"):
        select.candidates(device="cuda:0")
    with pytest.raises(StyleEngineError, match="unknown device"):
        select.candidates(device="tpu")


def test_open_backend_falls_back_and_reports(tiny_bundle, monkeypatch, caplog):
    """A GPU machine whose GPU stack is broken still ends up on the CPU path, with the reasons logged."""
    import logging

    caplog.set_level(logging.INFO, logger="styleengine")
    monkeypatch.setattr(select, "cuda_device_count", lambda: 1)
    be = select.open_backend(load_bundle(tiny_bundle), "auto")
    try:
        assert be.name == "auto"
    finally:
        be.close()
    assert "skipped tensorrt (cuda:0): TensorRT is not installed" in caplog.text
    assert "skipped onnxruntime (cuda EP, cuda:0):" in caplog.text
    with pytest.raises(StyleEngineError, match="the tensorrt backend cannot run here: .*TensorRT is not installed"):
        select.open_backend(load_bundle(tiny_bundle), "tensorrt")
    with pytest.raises(StyleEngineError, match="options need a named --backend"):
        select.open_backend(load_bundle(tiny_bundle), "auto", options={"threads": 1})
    with pytest.raises(StyleEngineError, match="no option 'thred'"):
        select.open_backend(load_bundle(tiny_bundle), "onnxruntime", options={"thred": 1})


# ----------------------------------------------------------------------------- style resolution
def test_resolve_bundle_folder_and_errors(tiny_bundle, tmp_path):
    assert styles.resolve_style(tiny_bundle).path == tiny_bundle
    assert styles.resolve_style(str(tiny_bundle)).style_name == "tiny"
    with pytest.raises(StyleEngineError, match="not a styleengine bundle"):
        styles.resolve_style(tmp_path)
    with pytest.raises(StyleEngineError, match="unknown style 'nosuchstyle'"):
        styles.resolve_style("nosuchstyle")
    with pytest.raises(StyleEngineError, match="no such file"):
        styles.resolve_style(str(tmp_path / "missing.pt"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(StyleEngineError, match=r"\.pt/\.pth"):
        styles.resolve_style(tmp_path / "notes.txt")


def test_checkpoint_is_built_once_and_cached_by_hash(tiny_bundle, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path / "cache"))
    calls = []

    def fake_build(ckpt, output, **kw):  # the real builder is tested by the export stage; this counts calls
        calls.append((ckpt, output))
        shutil.copytree(tiny_bundle, output)
        return type("R", (), {"path": output})()

    import styleengine.export.build as build_mod
    from styleengine.core.fsutil import sha256_file
    from styleengine.engine import loaders

    monkeypatch.setattr(build_mod, "build_bundle", fake_build)
    copy = tmp_path / "renamed.pth"
    shutil.copy(tiny_checkpoint, copy)
    b1 = styles.resolve_style(tiny_checkpoint)
    b2 = styles.resolve_style(copy)  # same bytes under another name: the cache is reused
    assert b1.path == b2.path and len(calls) == 1
    assert str(b1.path).startswith(str(tmp_path / "cache"))
    with open(copy, "ab") as f:  # edited checkpoint: new hash, rebuilt
        f.write(b"\0")
    assert loaders.cached_bundle_path(sha256_file(copy)) != b1.path


def test_builtin_names_resolve_through_builtin_styles(tiny_bundle, monkeypatch):
    from styleengine.engine import builtin_styles

    monkeypatch.setattr(builtin_styles, "builtin_bundle",
                        lambda name, *a: load_bundle(tiny_bundle) if name == "mona" else None)
    assert styles.resolve_style("mona").path == tiny_bundle


def test_zero_size_array_is_refused(st):
    with pytest.raises(StyleEngineError, match="zero size"):
        st(np.zeros((0, 5, 3), np.uint8))
