"""Python API (Stylizer), style resolution and backend selection."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from styleengine import Stylizer
from styleengine.engine import select, styles
from styleengine.engine.bundle import load_bundle
from styleengine.errors import StyleEngineError


@pytest.fixture(scope="module")
def st(tiny_bundle):
    with Stylizer(tiny_bundle, backend="onnxruntime", verbose=False) as s:
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
    with Stylizer(tiny_bundle, backend="onnxruntime", max_size=20, verbose=False) as s:
        assert s(a).shape == (10, 20, 3)
    with Stylizer(tiny_bundle, backend="onnxruntime", strength=0.0, verbose=False) as s:
        assert np.array_equal(s(a), a)
    with Stylizer(tiny_bundle, backend="onnxruntime", preserve_color=True, verbose=False) as s:
        out = s(a)
        assert out.shape == a.shape
    with pytest.raises(StyleEngineError, match="strength"):
        Stylizer(tiny_bundle, strength=2.0, verbose=False)


def test_oversize_image_names_max_size(st, monkeypatch):
    import styleengine.engine.stylizer as mod

    monkeypatch.setattr(mod, "DEFAULT_MAX_PIXELS", 1000)
    monkeypatch.setattr(st.backend, "device", "cuda:0")  # GPU backends: a pixel cap
    with pytest.raises(StyleEngineError, match="--max-size"):
        st(_img(40, 30))
    monkeypatch.setattr(st.backend, "device", "cpu")
    st(_img(40, 30))  # the CPU checks memory instead of pixels

    def oom(batch):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(st.backend, "infer", oom)
    with pytest.raises(StyleEngineError, match="GPU out of memory.*--max-size"):
        st(_img(40, 30))
    monkeypatch.undo()
    monkeypatch.setattr(mod, "DEFAULT_MAX_PIXELS", 10**9)
    monkeypatch.setattr(mod, "available_memory", lambda: 40 * 30 * 4 * 4 * 2)  # bytes for ~2 channels only
    with pytest.raises(StyleEngineError, match="GiB of memory.*--max-size"):
        st(_img(40, 30))
    assert st(_img(10, 10)).shape == (10, 10, 3)


def test_bad_input_types_and_closed_stylizer(tiny_bundle):
    s = Stylizer(tiny_bundle, backend="onnxruntime", verbose=False)
    with pytest.raises(StyleEngineError, match="uint8"):
        s(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(StyleEngineError, match="PIL image"):
        s(42)
    s.close()
    with pytest.raises(StyleEngineError, match="closed"):
        s(_img())


def test_auto_backend_picks_the_cpu_path_and_says_so(tiny_bundle, capsys):
    with Stylizer(tiny_bundle) as s:
        assert s.backend_name == "onnxruntime"
        assert s.describe()["provider"] == "cpu"
    assert "backend: onnxruntime" in capsys.readouterr().err


def test_candidates_order_with_and_without_gpu(monkeypatch):
    monkeypatch.setattr(select, "cuda_device_count", lambda: 0)
    assert [(n, k.get("precision")) for n, k in select.candidates()] == [
        ("onnxruntime", "int8"), ("onnxruntime", "fp32"), ("torch", "fp32")]
    assert select.candidates(precision="int8") == [("onnxruntime", {"provider": "cpu", "precision": "int8"})]
    monkeypatch.setattr(select, "cuda_device_count", lambda: 1)
    cands = select.candidates()
    assert [(n, k.get("provider")) for n, k in cands] == [
        ("tensorrt", None), ("onnxruntime", "tensorrt"), ("onnxruntime", "cuda"), ("torch", None),
        ("onnxruntime", "cpu"), ("onnxruntime", "cpu"), ("torch", None)]
    assert cands[3][1]["device"] == "cuda" and cands[6][1]["device"] == "cpu"
    assert [c[0] for c in select.candidates("torch", device="cpu")] == ["torch"]
    with pytest.raises(StyleEngineError, match="unknown backend"):
        select.candidates("cuda")
    monkeypatch.setattr(select, "cuda_device_count", lambda: 0)
    with pytest.raises(StyleEngineError, match="no NVIDIA GPU"):
        select.candidates(device="cuda:0")
    with pytest.raises(StyleEngineError, match="unknown device"):
        select.candidates(device="tpu")


def test_open_backend_falls_back_and_reports(tiny_bundle, monkeypatch):
    """A GPU machine whose GPU stack is broken still ends up on the CPU path, with the reasons logged."""
    monkeypatch.setattr(select, "cuda_device_count", lambda: 1)
    import styleengine.engine.backend_onnxruntime as ort_mod

    monkeypatch.setattr(ort_mod, "cuda_device_count", lambda: 1)
    monkeypatch.setattr(select, "get_backend", _get_backend_without_torch_cuda)
    logs = []
    be = select.open_backend(load_bundle(tiny_bundle), "auto", log=logs.append)
    try:
        assert be.name == "onnxruntime" and be.provider == "cpu"
    finally:
        be.close()
    assert logs[-1].startswith("backend: onnxruntime") and "skipped faster backends" in logs[0]
    with pytest.raises(StyleEngineError, match="no usable backend"):
        select.open_backend(load_bundle(tiny_bundle), "tensorrt", log=logs.append)


def _get_backend_without_torch_cuda(name):
    from styleengine.engine.backend import get_backend

    cls = get_backend(name)
    if name != "torch":
        return cls

    class NoCuda(cls):
        def load(self):
            if str(self.device).startswith("cuda"):
                raise StyleEngineError("torch cannot use CUDA here")
            return super().load()

    return NoCuda


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

    monkeypatch.setattr(build_mod, "build_bundle", fake_build)
    copy = tmp_path / "renamed.pth"
    shutil.copy(tiny_checkpoint, copy)
    b1 = styles.resolve_style(tiny_checkpoint, verbose=False)
    b2 = styles.resolve_style(copy, verbose=False)  # same bytes under another name: the cache is reused
    assert b1.path == b2.path and len(calls) == 1
    assert str(b1.path).startswith(str(tmp_path / "cache"))
    with open(copy, "ab") as f:  # edited checkpoint: new hash, rebuilt
        f.write(b"\0")
    assert styles.cached_bundle_path(copy, __import__("styleengine.fsutil").fsutil.sha256_file(copy)) != b1.path


def test_builtin_names_resolve_through_builtin_styles(tiny_bundle, tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path / "cache"))
    from styleengine.engine import builtin_styles

    monkeypatch.setattr(builtin_styles, "builtin_path", lambda name, *a: tiny_checkpoint if name == "mona" else None)
    monkeypatch.setattr(styles, "bundle_for_checkpoint", lambda p, verbose=True: load_bundle(tiny_bundle) if p == tiny_checkpoint else None)
    assert styles.resolve_style("mona").path == tiny_bundle


def test_zero_size_array_is_refused(st):
    with pytest.raises(StyleEngineError, match="zero size"):
        st(np.zeros((0, 5, 3), np.uint8))
