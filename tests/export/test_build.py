"""build_bundle: the bundle folder others load (layout, manifest, models, atomicity)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from styleengine.core.bundle import BUNDLE_FORMAT, load_bundle


def test_tiny_bundle_layout_and_manifest(tiny_bundle, tiny_checkpoint):
    from styleengine.core.fsutil import sha256_file

    b = load_bundle(tiny_bundle)
    assert b.style_name == "tiny"
    assert b.onnx("fp32").name == "model_fp32.onnx" and b.onnx("fp16").name == "model_fp16.onnx"
    assert b.checkpoint is not None and sha256_file(b.checkpoint) == sha256_file(tiny_checkpoint)
    m = b.manifest
    assert m["format"] == BUNDLE_FORMAT
    assert m["source_sha256"] == sha256_file(tiny_checkpoint)
    assert m["io"]["input"]["dtype"] == "uint8" and m["io"]["input"]["layout"] == "NHWC"
    assert m["arch"] == {"preset": "custom", "widths": [4, 8, 16], "blocks": 1, "phase_bias": True, "margin": 8}
    assert m["created_by"].startswith("styleengine ")
    for precision in ("fp32", "fp16"):
        assert m["onnx"][precision]["sha256"] == sha256_file(b.onnx(precision))
        assert m["validation"][precision]["ok"] is True
    assert m["validation"]["fp32"]["max_abs_diff"] <= 1
    assert m["tensorrt"]["built"] is False and m["plans"] == [] and "disabled" in m["tensorrt"]["reason"]
    # No temp leftovers beside the bundle.
    assert [p.name for p in tiny_bundle.parent.iterdir()] == [tiny_bundle.name]


def test_bundle_models_run_on_onnxruntime(tiny_bundle):
    import onnxruntime as ort

    b = load_bundle(tiny_bundle)
    x = np.random.default_rng(1).integers(0, 256, (2, 21, 30, 3), dtype=np.uint8)
    outs = []
    for precision in ("fp32", "fp16"):
        sess = ort.InferenceSession(str(b.onnx(precision)), providers=["CPUExecutionProvider"])
        y = sess.run(None, {"input": x})[0]
        assert y.dtype == np.uint8 and y.shape == x.shape
        outs.append(y.astype(int))
    assert np.abs(outs[0] - outs[1]).max() <= 4


def test_existing_output_needs_overwrite_and_is_kept(tiny_bundle, tiny_checkpoint, tmp_path):
    from styleengine.core.errors import StyleEngineError
    from styleengine.export.build import build_bundle

    user_dir = tmp_path / "photos"
    user_dir.mkdir()
    (user_dir / "keep.jpg").write_bytes(b"precious")
    with pytest.raises(StyleEngineError, match="use --overwrite"):
        build_bundle(tiny_checkpoint, user_dir, tensorrt="off")
    with pytest.raises(StyleEngineError, match="not a styleengine bundle"):
        build_bundle(tiny_checkpoint, user_dir, tensorrt="off", overwrite=True)
    assert (user_dir / "keep.jpg").read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    assert manifest["format"] == BUNDLE_FORMAT
