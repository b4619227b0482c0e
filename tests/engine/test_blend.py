"""Multi-style specs and blending math (engine/blend.py)."""

from __future__ import annotations

import numpy as np
import pytest

from styleengine.core.errors import StyleEngineError
from styleengine.engine import blend


def _weights(spec):
    return [(p.style, round(p.weight, 6)) for p in blend.parse_style_spec(spec)]


def test_parse_normalizes_weights_and_fills_missing_ones():
    assert _weights("starry_night") == [("starry_night", 1.0)]
    assert _weights("a:0.5,b:0.5") == [("a", 0.5), ("b", 0.5)]
    assert _weights("a:3,b:1") == [("a", 0.75), ("b", 0.25)]
    assert _weights("a:0.2,b,c") == [("a", 0.2), ("b", 0.4), ("c", 0.4)]
    assert _weights("a,b") == [("a", 0.5), ("b", 0.5)]
    # Paths with a colon that is not followed by a number stay paths.
    assert _weights("C:\\styles\\x.pt:0.25,y.pt:0.75") == [("C:\\styles\\x.pt", 0.25), ("y.pt", 0.75)]
    assert blend.is_multi_style("a:0.5,b") and blend.is_multi_style("a:0.7") and not blend.is_multi_style("a")


@pytest.mark.parametrize("spec", ["", "a,,b", ":0.5", "a:-1,b", "a:0,b:0", "a,a", "a:0.7,b:0.6,c", "a:nan,b"])
def test_parse_rejects_bad_specs_in_one_line(spec):
    with pytest.raises(StyleEngineError) as exc:
        blend.parse_style_spec(spec)
    assert "\n" not in str(exc.value)


def test_blend_outputs_is_the_weighted_mean():
    a = np.full((2, 4, 4, 3), 200, np.uint8)
    b = np.full((2, 4, 4, 3), 100, np.uint8)
    out = blend.blend_outputs([a, b], [0.25, 0.75])
    assert out.dtype == np.uint8 and (out == 125).all()
    assert (blend.blend_outputs([a], [1.0]) == a).all()
    with pytest.raises(StyleEngineError):
        blend.blend_outputs([a, b[:1]], [0.5, 0.5])


def test_blend_state_dicts_interpolates_parameters():
    torch = pytest.importorskip("torch")
    from tests.conftest import make_tiny_model

    m1, m2 = make_tiny_model(seed=1), make_tiny_model(seed=2)
    sd = blend.blend_state_dicts([m1.state_dict(), m2.state_dict()], [0.3, 0.7])
    k = "conv1.conv2d.weight"
    assert torch.allclose(sd[k], 0.3 * m1.state_dict()[k] + 0.7 * m2.state_dict()[k])
    other = make_tiny_model(widths=(4, 8, 8)).state_dict()
    with pytest.raises(StyleEngineError):
        blend.blend_state_dicts([m1.state_dict(), other], [0.5, 0.5])


def test_blend_bundles_interpolates_the_networks_and_caches_the_result(tiny_bundle, tiny_bundle_b, tmp_path,
                                                                         monkeypatch):
    torch = pytest.importorskip("torch")
    from styleengine.core.bundle import load_bundle
    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.engine.backend import create_backend

    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path / "cache"))
    a, b = load_bundle(tiny_bundle), load_bundle(tiny_bundle_b)
    mixed = blend.blend_bundles([a, b], [0.25, 0.75])
    assert mixed.path.parent == tmp_path / "cache" / "blends"
    assert blend.blend_bundles([a, b], [0.25, 0.75]).path == mixed.path  # cached by content
    mixed.verify_all()
    style = mixed.manifest["style"]
    assert [p["weight"] for p in style["blend"]] == [0.25, 0.75] and style["blend"][1]["attribution"] == "B"
    # The interpolated ONNX runs like any style and equals the interpolated torch network, phase bias aside
    # (measured again on the blend).
    x = np.random.default_rng(0).integers(0, 256, (1, 24, 28, 3), dtype=np.uint8)
    ka, kb, km = load_checkpoint(a.checkpoint), load_checkpoint(b.checkpoint), load_checkpoint(mixed.checkpoint)
    interpolated = blend.blend_state_dicts([ka.state_dict, kb.state_dict], [0.25, 0.75])
    assert all(torch.allclose(km.state_dict[k].float(), v, atol=1e-2) for k, v in interpolated.items() if k != "phase_bias")
    ref_model = ka.build_model()
    ref_model.load_state_dict({**interpolated, "phase_bias": km.state_dict["phase_bias"].float()})
    with torch.no_grad():
        ref = ref_model(torch.from_numpy(x).permute(0, 3, 1, 2).float()).clamp(0, 255).round()
    ref = ref.permute(0, 2, 3, 1).numpy()
    for name in ("onnxruntime", "torch"):
        with create_backend(name, mixed, device="cpu", precision="fp32") as be:
            assert np.abs(be.infer(x).astype(float) - ref).max() <= 1, name
    # Endpoints: weight 1 is the single style's network (its bias measured again).
    only_a = blend.blend_bundles([a, b], [1.0, 0.0])
    k1 = load_checkpoint(only_a.checkpoint)
    assert all(torch.equal(k1.state_dict[k], v) for k, v in ka.state_dict.items() if k != "phase_bias")


def test_weight_blend_measures_its_phase_bias_again(tiny_bundle, tiny_bundle_b, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    from styleengine.core.bundle import load_bundle
    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.core.phase_pattern import phase_pattern

    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path / "cache"))
    a, b = load_bundle(tiny_bundle), load_bundle(tiny_bundle_b)
    # Where the check keeps the corrected bias (here: a check that scores less of a 4-px pattern as better; on
    # random nets the real one may go either way)...
    with monkeypatch.context() as m:
        m.setattr(blend, "mean_peakiness",
                  lambda stylize, photos: float(np.abs(phase_pattern([stylize(p) for p in photos])).mean()))
        mixed = blend.blend_bundles([a, b], [0.5, 0.5])
    plain = blend.blend_state_dicts([load_checkpoint(p.checkpoint).state_dict for p in (a, b)], [0.5, 0.5])
    got = load_checkpoint(mixed.checkpoint).state_dict["phase_bias"].float()
    assert (got - plain["phase_bias"]).abs().max() > 0.5  # the random parts' biases do not cancel the blend's
    # ...what is left on the calibration photos, in the FP32 and FP16 graphs alike, is next to nothing.
    for precision in ("fp32", "fp16"):
        run = blend._runner(mixed.onnx(precision).read_bytes())
        left = phase_pattern([run(p) for p in blend._calibration_photos()])
        assert float(np.sqrt(np.mean(left ** 2))) < 0.3, precision
    # Where the corrected bias does not lower the peakiness on the calibration photos kept out of the measuring
    # (here: a check that scores a 4-px pattern as better), the blend's bias is zero, in every file alike.
    with monkeypatch.context() as m:
        m.setattr(blend, "mean_peakiness",
                  lambda stylize, photos: -float(np.abs(phase_pattern([stylize(p) for p in photos])).mean()))
        m.setenv("STYLEENGINE_CACHE", str(tmp_path / "cache_zero"))
        zeroed = blend.blend_bundles([a, b], [0.5, 0.5])
    assert load_checkpoint(zeroed.checkpoint).state_dict["phase_bias"].abs().max() == 0
    for precision in ("fp32", "fp16"):
        graph = onnx.load(str(zeroed.onnx(precision)))
        bias = next(t for t in graph.graph.initializer if t.name == blend.PHASE_BIAS)
        assert np.abs(numpy_helper.to_array(bias)).max() == 0, precision
    # Without ONNX Runtime the interpolated bias is kept (nothing to measure with).
    monkeypatch.setattr(blend, "_runner", lambda model_bytes: None)
    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path / "cache2"))
    kept = load_checkpoint(blend.blend_bundles([a, b], [0.5, 0.5]).checkpoint).state_dict["phase_bias"].float()
    assert torch.allclose(kept, plain["phase_bias"], atol=1e-2)


def test_blend_refuses_different_architectures_and_tampered_parts(tiny_bundle, tmp_path, monkeypatch):
    import json
    import shutil

    from styleengine.core.bundle import load_bundle

    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path / "cache"))
    other = tmp_path / "other.engine"
    shutil.copytree(tiny_bundle, other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["arch"]["widths"] = [4, 8, 8]
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StyleEngineError, match="same preset|one preset"):
        blend.blend_bundles([load_bundle(tiny_bundle), load_bundle(other)], [0.5, 0.5])
    tampered = tmp_path / "tampered.engine"
    shutil.copytree(tiny_bundle, tampered)
    with open(tampered / "model_fp32.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(StyleEngineError, match="does not match its manifest"):
        blend.blend_bundles([load_bundle(tiny_bundle), load_bundle(tampered)], [0.5, 0.5])


def test_blended_stylizer_averages_outputs_of_each_style(tiny_bundle, tmp_path):
    import shutil

    from styleengine.engine.stylizer import BlendedStylizer, Stylizer

    other = tmp_path / "copy.engine"
    shutil.copytree(tiny_bundle, other)
    img = np.random.default_rng(0).integers(0, 256, (2, 24, 32, 3), dtype=np.uint8)
    with Stylizer(str(tiny_bundle), "onnxruntime") as st:
        ref = st.stylize_batch(img)
        half = st.stylize_array(img[0])
    with BlendedStylizer(f"{tiny_bundle}:0.3,{other}:0.7", "onnxruntime") as bst:
        out = bst(img)
        assert np.abs(out.astype(int) - ref).max() <= 1  # same model twice: the blend is that model
        assert np.abs(bst(img[0]).astype(int) - half).max() <= 1
    with BlendedStylizer(f"{tiny_bundle},{other}", "onnxruntime", strength=0.0) as bst:
        assert np.abs(bst(img).astype(int) - img).max() <= 1  # --strength 0 gives the input back


def test_stylize_cli_takes_a_weight_blend_spec(tiny_bundle, tiny_bundle_b, tmp_path, monkeypatch):
    """`--style a:0.25,b:0.75` runs one interpolated network: the output equals that blend's output."""
    from PIL import Image
    from typer.testing import CliRunner

    from styleengine.cli import app
    from styleengine.engine.backend import create_backend
    from styleengine.engine.styles import resolve_style

    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path / "cache"))
    spec = f"{tiny_bundle}:0.25,{tiny_bundle_b}:0.75"
    bundle = resolve_style(spec)
    assert [b["weight"] for b in bundle.manifest["style"]["blend"]] == [0.25, 0.75]
    rgb = np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "in.png")
    r = CliRunner().invoke(app, ["stylize", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--style", spec,
                                 "--backend", "onnxruntime"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    with create_backend("onnxruntime", bundle, device="cpu") as be:
        ref = be.infer(rgb[None])[0]
    assert np.abs(np.asarray(Image.open(tmp_path / "out.png")).astype(int) - ref).max() <= 1
    # a spec whose parts cannot be weight-blended is a one-line error from the CLI
    r = CliRunner().invoke(app, ["stylize", str(tmp_path / "in.png"), "-o", str(tmp_path / "o2.png"),
                                 "--style", f"{tiny_bundle}:0.5,nonexistent:0.5"])
    assert r.exit_code == 2 and "error:" in r.output and "Traceback" not in r.output
