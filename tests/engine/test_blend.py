"""Multi-style specs and blending math (engine/blend.py)."""

from __future__ import annotations

import numpy as np
import pytest

from styleengine.engine import blend
from styleengine.errors import StyleEngineError


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


def test_blend_checkpoint_writes_a_loadable_model_with_provenance(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from styleengine.train.checkpoint import load_checkpoint, save_model
    from tests.conftest import make_tiny_model

    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path / "cache"))
    m1, m2 = make_tiny_model(seed=1), make_tiny_model(seed=2)
    p1 = save_model(tmp_path / "one.pt", m1, style={"name": "one", "attribution": "A"})
    p2 = save_model(tmp_path / "two.pt", m2, style={"name": "two", "attribution": "B"})
    parts = blend.parse_style_spec(f"{p1}:0.25,{p2}:0.75")
    assert blend.plan_blend(parts) == "weights"
    assert blend.plan_blend(parts, "outputs") == "outputs"
    out = blend.blend_checkpoint(parts)
    assert out.parent == tmp_path / "cache" / "blends"
    assert blend.blend_checkpoint(parts) == out  # cached by content
    ck = load_checkpoint(out)
    assert [b["weight"] for b in ck.style["blend"]] == [0.25, 0.75]
    assert [b["attribution"] for b in ck.style["blend"]] == ["A", "B"]
    x = torch.rand(1, 3, 24, 24) * 255
    # Endpoints: weight 1 reproduces the single model exactly.
    only = blend.blend_checkpoint(blend.parse_style_spec(f"{p1}:1,{p2}:0"), tmp_path / "only.pt")
    with torch.no_grad():
        assert torch.allclose(load_checkpoint(only).build_model()(x), m1(x), atol=1e-3)
    # Different architectures fall back to output blending (or refuse weight blending).
    p3 = save_model(tmp_path / "three.pt", make_tiny_model(widths=(4, 8, 8)), style={"name": "three"})
    mixed = blend.parse_style_spec(f"{p1},{p3}")
    assert blend.plan_blend(mixed) == "outputs"
    with pytest.raises(StyleEngineError):
        blend.plan_blend(mixed, "weights")
    # Something without a checkpoint cannot be weight-blended.
    assert blend.plan_blend(blend.parse_style_spec(f"{p1},nonexistent_style")) == "outputs"


def test_blended_stylizer_averages_outputs_of_each_style(tiny_bundle, tmp_path):
    import shutil

    from styleengine.engine.stylizer import Stylizer

    other = tmp_path / "copy.engine"
    shutil.copytree(tiny_bundle, other)
    img = np.random.default_rng(0).integers(0, 256, (2, 24, 32, 3), dtype=np.uint8)
    with Stylizer(str(tiny_bundle), "onnxruntime", verbose=False) as st:
        ref = st.stylize_batch(img)
        half = st.stylize_array(img[0])
    with blend.BlendedStylizer(f"{tiny_bundle}:0.3,{other}:0.7", "onnxruntime", verbose=False) as bst:
        out = bst(img)
        assert np.abs(out.astype(int) - ref).max() <= 1  # same model twice: the blend is that model
        assert np.abs(bst(img[0]).astype(int) - half).max() <= 1
    with blend.BlendedStylizer(f"{tiny_bundle},{other}", "onnxruntime", strength=0.0, verbose=False) as bst:
        assert np.abs(bst(img).astype(int) - img).max() <= 1  # --strength 0 gives the input back
    assert blend.resolve_blend("starry_night") == "starry_night"


def test_stylize_cli_takes_a_weight_blend_spec(tmp_path, monkeypatch):
    """`--style a.pt:0.25,b.pt:0.75` runs one interpolated network: the output equals that blend's output."""
    torch = pytest.importorskip("torch")
    from PIL import Image
    from typer.testing import CliRunner

    from styleengine.cli import app
    from styleengine.engine.styles import resolve_style
    from styleengine.train.checkpoint import load_checkpoint, save_model
    from tests.conftest import make_tiny_model

    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path / "cache"))
    p1 = save_model(tmp_path / "one.pt", make_tiny_model(seed=1), style={"name": "one"})
    p2 = save_model(tmp_path / "two.pt", make_tiny_model(seed=2), style={"name": "two"})
    spec = f"{p1}:0.25,{p2}:0.75"
    bundle = resolve_style(spec, verbose=False)
    assert [b["weight"] for b in load_checkpoint(bundle.checkpoint).style["blend"]] == [0.25, 0.75]

    rgb = np.random.default_rng(0).integers(0, 256, (20, 28, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "in.png")
    r = CliRunner().invoke(app, ["stylize", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--style", spec,
                                 "--backend", "torch"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    blended = load_checkpoint(bundle.checkpoint).build_model()
    with torch.no_grad():
        ref = blended(torch.from_numpy(rgb).permute(2, 0, 1)[None].float())[0].clamp(0, 255).round()
    got = np.asarray(Image.open(tmp_path / "out.png"))
    assert np.abs(got.astype(int) - ref.permute(1, 2, 0).numpy().astype(int)).max() <= 1
    # a spec whose parts cannot be weight-blended is a one-line error from the CLI
    r = CliRunner().invoke(app, ["stylize", str(tmp_path / "in.png"), "-o", str(tmp_path / "o2.png"),
                                 "--style", f"{p1}:0.5,nonexistent:0.5"])
    assert r.exit_code == 2
