"""`styleengine build` / `styleengine export` end to end: success paths and bad input (exit 2, nothing written)."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
from typer.testing import CliRunner

from styleengine.cli import app
from styleengine.core.bundle import load_bundle


def run(*args, cwd=None):
    old = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        return CliRunner().invoke(app, [str(a) for a in args])
    finally:
        os.chdir(old)


@pytest.fixture(scope="module")
def examples_checkpoint(tmp_path_factory):
    """A pytorch/examples-style file: a bare state dict, with the stale running stats old releases carry."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import make_tiny_model

    state = make_tiny_model(seed=3, phase_bias=False).state_dict()  # their layout has no phase bias
    state["in1.running_mean"] = torch.zeros(4)
    state["in1.running_var"] = torch.ones(4)
    path = tmp_path_factory.mktemp("examples") / "mosaic.pth"
    torch.save(state, path)
    return path


def test_build_pytorch_examples_checkpoint_default_output(examples_checkpoint, tmp_path):
    r = run("build", examples_checkpoint, "--json", "--shape", "4k", "--shape", "default", cwd=tmp_path)
    assert r.exit_code == 0, r.stderr
    out = tmp_path / "mosaic.engine"
    data = json.loads(r.stdout)
    assert data["path"] == str(out) and data["format"] == "styleengine.bundle/1"
    err_lines = r.stderr.strip().splitlines()
    notes = [line for line in err_lines if line.startswith("no TensorRT plan built: ")]
    assert len(notes) == 1 and data["tensorrt"]["built"] is False and data["tensorrt"]["reason"] in notes[0]
    # everything else on stderr is progress (plain lines: stderr is no terminal here), ending complete
    assert all(line.startswith("build mosaic.engine: ") for line in err_lines if line not in notes)
    assert any("5/5 step (100%)" in line for line in err_lines)
    assert [p["opt"] for p in data["tensorrt"]["profiles"]] == [[1, 2160, 3840], [1, 1080, 1920]]
    b = load_bundle(out)
    assert b.style_name == "mosaic" and b.manifest["source_format"] == "pytorch-examples"
    assert b.manifest["validation"]["fp32"]["ok"]
    from styleengine.core.checkpoint import load_checkpoint

    assert load_checkpoint(b.checkpoint).style["name"] == "mosaic"  # model.pt is self-describing
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mosaic.engine"]


def _leftovers(d):
    return sorted(p.name for p in d.iterdir())


def _truncated(src, d):
    p = d / "cut.pt"
    p.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    return p


def _text(src, d):
    p = d / "notes.pt"
    p.write_text("hello, not a model\n")
    return p


def _unknown_format(src, d):
    p = d / "unknown.pt"
    torch.save({"format": "someone-else/3", "weights": torch.zeros(2)}, p)
    return p


def _list(src, d):
    p = d / "list.pt"
    torch.save([torch.zeros(2)], p)
    return p


def _unknown_preset(src, d):
    obj = torch.load(src, weights_only=True)
    obj["arch"]["preset"] = "ultra"
    p = d / "ultra.pt"
    torch.save(obj, p)
    return p


def _lying_preset(src, d):
    obj = torch.load(src, weights_only=True)
    obj["arch"]["preset"] = "johnson"  # but the widths are the tiny ones
    p = d / "liar.pt"
    torch.save(obj, p)
    return p


class _Evil:
    marker = None

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _evil_pickle(src, d):
    p = d / "evil.pt"
    e = _Evil()
    e.marker = d / "PWNED"
    with open(p, "wb") as f:
        pickle.dump({"state_dict": e}, f)
    return p


def _evil_torch(src, d):
    p = d / "evil2.pt"
    e = _Evil()
    e.marker = d / "PWNED"
    torch.save({"conv1.conv2d.weight": e}, p)
    return p


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("make,msg", [
    (_truncated, "not a readable checkpoint"), (_text, "not a readable checkpoint"),
    (_unknown_format, "unknown checkpoint format"), (_list, "unknown checkpoint format"),
    (_unknown_preset, "unknown preset 'ultra'"), (_lying_preset, "says preset 'johnson'"),
    (_evil_pickle, "arbitrary unpickling|not a readable checkpoint"), (_evil_torch, "arbitrary unpickling"),
])
def test_bad_checkpoints_exit_2_one_line_nothing_written(tiny_checkpoint, tmp_path, make, msg):
    src_dir = tmp_path / "in"
    src_dir.mkdir()
    bad = make(tiny_checkpoint, src_dir)
    work = tmp_path / "work"
    work.mkdir()
    r = run("build", bad, cwd=work)
    assert r.exit_code == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    import re

    assert re.search(msg, lines[0]), lines[0]
    assert _leftovers(work) == [] and not (src_dir / "PWNED").exists()


@pytest.mark.parametrize("args,msg", [
    (["--shape", "4x4"], "within 8..16384"), (["--shape", "1080x1920:720x1280:2160x3840"], "min <= opt <= max"),
    (["--shape", "big"], "not HxW"), (["--tensorrt", "maybe"], "unknown tensorrt mode"),
    (["--tensorrt", "require"], "cannot build a TensorRT plan"), (["--opt-level", "7"], "out of range (0..5)"),
])
def test_bad_options_exit_2_nothing_written(tiny_checkpoint, tmp_path, args, msg):
    r = run("build", tiny_checkpoint, "-o", tmp_path / "x.engine", *args)
    assert r.exit_code == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert _leftovers(tmp_path) == []


def test_existing_bundle_needs_overwrite_and_failed_rebuild_keeps_old(tiny_bundle, tiny_checkpoint, tmp_path):
    import shutil

    target = tmp_path / "kept.engine"
    shutil.copytree(tiny_bundle, target)
    before = (target / "manifest.json").read_text()
    r = run("build", tiny_checkpoint, "-o", target)
    assert r.exit_code == 2 and "use --overwrite" in r.stderr
    r = run("build", tiny_checkpoint, "-o", target, "--overwrite", "--shape", "2x2")
    assert r.exit_code == 2
    assert (target / "manifest.json").read_text() == before and _leftovers(tmp_path) == ["kept.engine"]


def test_export_steps_from_checkpoint(tiny_checkpoint, tmp_path):
    import onnx

    r = run("export", tiny_checkpoint, "--onnx", tmp_path / "m.onnx", "--fp16", tmp_path / "m16.onnx",
            "--triton", tmp_path / "repo", "--name", "tiny", "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["written"]["triton"] == str(tmp_path / "repo")
    assert (tmp_path / "repo" / "tiny_onnx" / "config.pbtxt").is_file()
    assert data["validation"]["fp32"]["max_abs_diff"] <= 1 and data["validation"]["fp16"]["ok"]
    m32, m16 = onnx.load(str(tmp_path / "m.onnx")), onnx.load(str(tmp_path / "m16.onnx"))
    init16 = {t.name: t.data_type for t in m16.graph.initializer}
    assert init16["net.conv1.conv2d.weight"] == onnx.TensorProto.FLOAT16
    assert {t.name: t.data_type for t in m32.graph.initializer}["net.conv1.conv2d.weight"] == onnx.TensorProto.FLOAT
    r = run("export", tiny_checkpoint, "--onnx", tmp_path / "m.onnx")
    assert r.exit_code == 2 and "use --overwrite" in r.stderr


def test_export_bad_input(tiny_bundle, tmp_path):
    r = run("export", tiny_bundle)
    assert r.exit_code == 2 and "nothing to export" in r.stderr
    r = run("export", tmp_path / "missing.pt", "--onnx", tmp_path / "a.onnx")
    assert r.exit_code == 2 and "not found" in r.stderr
    r = run("export", tiny_bundle, "--onnx", tmp_path / "no" / "a.onnx")
    assert r.exit_code == 2 and "does not exist" in r.stderr
    assert _leftovers(tmp_path) == []


def test_export_triton_from_bundle(tiny_bundle, tmp_path):
    r = run("export", tiny_bundle, "--triton", tmp_path / "repo", "--max-batch-size", "2")
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == str(tmp_path / "repo")
    assert "no TensorRT plan in the bundle" in r.stderr
    assert (tmp_path / "repo" / "tiny_onnx" / "1" / "model.onnx").is_file()


def test_train_state_is_saved_as_a_plain_model_file(tiny_checkpoint, tmp_path):
    from styleengine.core.checkpoint import MODEL_FORMAT, TRAIN_STATE_FORMAT, load_checkpoint
    from styleengine.export.build import _write_checkpoint

    obj = torch.load(tiny_checkpoint, weights_only=True)
    obj.update(format=TRAIN_STATE_FORMAT, optimizer={"state": {}, "param_groups": []}, step=7)
    src = tmp_path / "run.train-state.pt"
    torch.save(obj, src)
    ckpt = load_checkpoint(src)
    _write_checkpoint(ckpt, src, tmp_path / "model.pt")
    raw = torch.load(tmp_path / "model.pt", weights_only=True)
    assert raw["format"] == MODEL_FORMAT and "optimizer" not in raw and raw["style"]["name"] == "tiny"
    assert all(torch.equal(raw["state_dict"][k], v.float()) for k, v in ckpt.state_dict.items())
