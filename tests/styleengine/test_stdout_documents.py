"""When a command is asked for a result document (--json, --stats -), stdout carries exactly that one JSON
document: progress, notes and per-file lines go to stderr. Checked at the Python level (CliRunner) and at the
file-descriptor level (capfd: nothing a C library prints reaches fd 1 either)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleengine.cli import app

TRAIN_ASSETS = Path(__file__).resolve().parents[1] / "assets" / "train"


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    from tests.engine.video.helpers import make_video

    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    make_video(path, n=6, w=48, h=36)
    return path


def _images(folder: Path, n: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = np.random.default_rng(i).integers(0, 256, (18, 24, 3), dtype=np.uint8)
        Image.fromarray(a).save(folder / f"p{i}.png")
    return folder


def one_document(runner, capfd, args: list, progress: str | None = None):
    """Run the command; stdout must be exactly one JSON document and nothing may reach fd 1 otherwise."""
    capfd.readouterr()
    r = runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    fd = capfd.readouterr()
    assert r.exit_code == 0, (args, r.stderr)
    doc = json.loads(r.stdout)  # raises on a second document or any stray line
    assert fd.out == "", f"printed to fd 1 outside sys.stdout: {fd.out[:300]!r}"
    if progress is not None:
        assert progress in r.stderr, r.stderr
        assert progress not in r.stdout
    return doc, r


def test_stylize_json(runner, capfd, tiny_bundle, tmp_path):
    photos = _images(tmp_path / "photos")
    doc, r = one_document(runner, capfd, ["stylize", photos, "-o", tmp_path / "out", "--style", tiny_bundle,
                                          "--backend", "onnxruntime", "--json"], progress="stylize: 2/2 file")
    assert [Path(row["output"]).name for row in doc] == ["p0.png", "p1.png"]


def test_stylize_stats_to_stdout(runner, capfd, tiny_bundle, clip, tmp_path):
    doc, r = one_document(runner, capfd, ["stylize", clip, "-o", tmp_path / "out.mp4", "--style", tiny_bundle,
                                          "--backend", "onnxruntime", "--stats", "-"])
    assert doc["frames"] == 6
    assert "clip.mp4 -> " in r.stderr  # the per-file line moved to stderr


def test_only_one_option_may_use_stdout(runner, tiny_bundle, clip, tmp_path):
    r = runner.invoke(app, ["stylize", str(clip), "-o", str(tmp_path / "o.mp4"), "--style", str(tiny_bundle),
                            "--json", "--stats", "-"])
    assert r.exit_code == 2 and r.stdout == ""
    assert [line for line in r.stderr.splitlines() if line.startswith("error:")] == [
        "error: only one of --json, -o - and --stats - can use stdout"]


def test_bench_json(runner, capfd, tiny_bundle):
    doc, _ = one_document(runner, capfd, ["bench", tiny_bundle, "--backend", "onnxruntime", "--size", "32",
                                          "--iters", "3", "--warmup", "1", "--no-baseline", "--threads", "1",
                                          "--json"])
    assert isinstance(doc, dict)


def test_env_json(runner, capfd):
    doc, _ = one_document(runner, capfd, ["env", "--json"])
    assert "backends" in doc


def test_styles_json(runner, capfd):
    doc, _ = one_document(runner, capfd, ["styles", "--json"])
    assert isinstance(doc, list)


def test_train_json(runner, capfd, tmp_path):
    pytest.importorskip("torch")
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted(TRAIN_ASSETS.glob("photo_*.jpg"))[:2]:
        shutil.copy(p, photos / p.name)
    doc, _ = one_document(runner, capfd, [
        "train", TRAIN_ASSETS / "style_starry_night.jpg", photos, "-o", tmp_path / "m.pt", "--preset", "fast",
        "--loss-net", "efficientnet-lite0", "--random-loss-net", "--steps", "2", "--image-size", "32",
        "--style-size", "48", "--batch-size", "1", "--checkpoint-every", "0", "--preview-every", "0",
        "--log-every", "1", "--json"], progress="train: 2/2 step")
    assert doc["steps"] == 2


def test_build_json(runner, capfd, tiny_checkpoint, tmp_path):
    pytest.importorskip("torch")
    doc, _ = one_document(runner, capfd, ["build", tiny_checkpoint, "-o", tmp_path / "t.engine", "--tensorrt", "off",
                                          "--json"], progress="5/5 step")
    assert doc["path"] == str(tmp_path / "t.engine")


def test_export_json(runner, capfd, tiny_bundle, tmp_path):
    doc, _ = one_document(runner, capfd, ["export", tiny_bundle, "--onnx", tmp_path / "m.onnx", "--json"])
    assert doc["written"]


def test_live_json(runner, capfd, tiny_bundle, clip, tmp_path):
    doc, _ = one_document(runner, capfd, ["live", clip, "--style", tiny_bundle, "--backend", "onnxruntime",
                                          "--no-preview", "--frames", "3", "-o", tmp_path / "rec.mp4", "--json"])
    assert doc["frames_processed"] >= 1


def test_eval_flicker_json(runner, capfd, tiny_bundle, clip):
    pytest.importorskip("cv2")
    doc, _ = one_document(runner, capfd, ["eval", "flicker", clip, "--style", tiny_bundle, "--backend", "onnxruntime",
                                          "--frames", "3", "--blend", "0.5", "--json"])
    assert doc["frames"] == 3
