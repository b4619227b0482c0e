"""The shipped built-in styles: listed without torch, self-describing, attributed, runnable on every backend."""

from __future__ import annotations

import json

import numpy as np
import pytest

from styleengine.core.errors import StyleEngineError
from styleengine.engine import builtin_styles as bs
from styleengine.engine.backend import REGISTRY, create_backend, get_backend

REQUIRED = {"starry_night", "great_wave", "composition_vii", "the_scream", "udnie", "woman_with_hat", "shipwreck"}


def test_the_paintings_are_shipped_as_verified_bundles_and_attributed():
    found = {s.name: s for s in bs.list_builtins()}
    assert REQUIRED <= set(found)
    for s in found.values():
        assert s.path.is_dir() and s.path.parent == bs.STYLES_DIR
        b = s.bundle()
        b.verify_all()  # every model file matches the manifest's sha256
        assert b.onnx("fp32") and b.onnx("fp16") and b.checkpoint  # runs without torch; torch backend too
        assert sum(f.stat().st_size for f in s.path.rglob("*") if f.is_file()) < 4_000_000
        assert s.artist and s.title and s.year
        assert "public domain" in s.attribution and s.artist in s.attribution
        assert (b.manifest["style"] or {}).get("attribution") == s.attribution
        assert s.train_summary["steps"] > 0 and s.train_summary["loss_net"] == "efficientnet-lite0"
        assert s.train_summary["init_from"] and s.train_summary["style_size"] and s.train_summary["data"]  # lineage
        assert bs.style_image_path(s.painting) is not None  # reference for `eval flicker`'s style distance
    assert bs.builtin_bundle("starry_night").path == found["starry_night"].path
    assert bs.builtin_bundle("no_such_style") is None


def test_no_picasso():
    text = json.dumps([s.to_dict() for s in bs.list_builtins()]).lower()
    assert "picasso" not in text and not any("picasso" in p for p in bs.PAINTINGS)


def test_checkpoints_are_fp16_and_match_the_index():
    pytest.importorskip("torch")
    import torch

    from styleengine.core.checkpoint import load_checkpoint

    for s in bs.list_builtins():
        ck = load_checkpoint(s.checkpoint)
        assert ck.sha256 == s.bundle().manifest["source_sha256"], f"{s.name}: bundle is stale"
        assert ck.arch.preset == s.preset
        assert all(v.dtype == torch.float16 for v in ck.state_dict.values() if v.is_floating_point())
        assert ck.style["name"] == s.name and ck.style["attribution"] == s.attribution
        assert ck.train_config["loss_net"].startswith("efficientnet-lite0")
        assert ck.train_config["steps"] == s.train_summary["steps"]
        for key in ("average_from", "average_every"):  # weight averaging (None: the last step's weights)
            assert ck.train_config.get(key) == s.train_summary.get(key), (s.name, key)
        if ck.train_config.get("init_from"):  # lineage recorded by the trainer (fine-tuned since --init-from)
            assert ck.train_config["init_from"]["name"] in s.train_summary["init_from"]
        # Every built-in's fixed 4-px pattern was measured on training photos and the bias that cancels it checked
        # on others, as the trainer does (core.phase_bias): shipped where it lowered the peakiness there, else zero.
        record = s.train_summary["phase_bias"]
        assert ck.arch.phase_bias and ck.train_config["phase_bias"] == record
        assert record["images"] >= 8 and record["check_images"] >= 4
        assert record["kept"] == (record["peakiness_with"] < record["peakiness_without"])
        if record["kept"]:
            assert ck.state_dict["phase_bias"].abs().max() > 0.1
        else:
            assert ck.state_dict["phase_bias"].abs().max() == 0


def test_index_errors_are_one_line(tmp_path):
    (tmp_path / "index.json").write_text("{not json")
    with pytest.raises(StyleEngineError):
        bs.list_builtins(tmp_path)
    assert bs.list_builtins(tmp_path / "missing") == []


def test_every_builtin_runs_on_every_available_backend():
    img = np.random.default_rng(0).integers(0, 256, (1, 40, 56, 3), dtype=np.uint8)
    names = [n for n in REGISTRY if get_backend(n).available_for(device="cpu")[0]]
    assert "onnxruntime" in names
    for s in bs.list_builtins():
        bundle = s.bundle()
        outs = {}
        for name in names:
            with create_backend(name, bundle, device="cpu", precision="fp32") as be:
                outs[name] = be.infer(img)
            assert outs[name].shape == img.shape and outs[name].dtype == np.uint8
            assert outs[name].std() > 10  # a real picture, not a flat field
        ref = outs["onnxruntime"].astype(np.float32)
        for name, o in outs.items():  # one FP32 graph (torch: the same FP16-stored weights): within 1 level
            assert np.abs(o.astype(np.float32) - ref).max() <= 2, name


def test_styles_command_lists_them(monkeypatch):
    from typer.testing import CliRunner

    from styleengine.cli import app

    res = CliRunner().invoke(app, ["styles", "--json"])
    assert res.exit_code == 0
    listed = {d["name"]: d for d in json.loads(res.stdout)}
    assert REQUIRED <= set(listed) and all(d["attribution"] for d in listed.values())
    res = CliRunner().invoke(app, ["styles"])
    assert res.exit_code == 0 and "Vincent van Gogh" in res.stdout and "Hokusai" in res.stdout


def test_bundled_samples_for_zero_setup_runs():
    from typer.testing import CliRunner

    from styleengine.cli import app

    photo, clip = bs.sample_path("photo"), bs.sample_path("clip")
    assert photo.stat().st_size < 100_000 and clip.stat().st_size < 200_000
    res = CliRunner().invoke(app, ["styles", "--sample", "clip"])
    assert res.exit_code == 0 and res.stdout.strip() == str(clip)
    bad = CliRunner().invoke(app, ["styles", "--sample", "nope"])
    assert bad.exit_code == 2 and "unknown sample" in bad.output


def test_index_is_written_in_the_paintings_order_then_by_name(tmp_path):
    names = list(bs.PAINTINGS)
    entries = {n: {"bundle": f"{n}.engine"} for n in ["zz_custom", "aa_custom", *reversed(names)]}
    bs.write_index(entries, tmp_path)
    assert list(bs.read_index(tmp_path)) == [*names, "aa_custom", "zz_custom"]
