"""`styleengine stylize`: files, folders, stdin/stdout, per-file errors, overwrite rules, video dispatch."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from styleengine.cli import app
from styleengine.engine import stylize_images


def _save(path, w=24, h=18, seed=0, mode="RGB"):
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 4 if mode == "RGBA" else 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a, mode).save(path)
    return path


def invoke(runner, args, **kw):
    return runner.invoke(app, ["stylize", *map(str, args)], catch_exceptions=False, **kw)


def test_single_file_and_json(runner, tiny_bundle, tmp_path):
    src = _save(tmp_path / "in.png")
    out = tmp_path / "out.jpg"
    # a named backend: --backend auto measures the CPU runtimes and may pick another one (engine/auto_cpu.py)
    r = invoke(runner, [src, "-o", out, "--style", tiny_bundle, "--backend", "onnxruntime", "--json"])
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)
    assert res[0]["ok"] and res[0]["width"] == 24 and res[0]["height"] == 18
    assert res[0]["backend"] == "onnxruntime" and res[0]["seconds"] > 0
    assert Image.open(out).format == "JPEG"
    import os

    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask  # not the 0600 of the temp file
    assert "backend: onnxruntime" in r.stderr
    # existing output: refused without --overwrite, replaced with it
    r = invoke(runner, [src, "-o", out, "--style", tiny_bundle])
    assert r.exit_code == 2 and "--overwrite" in r.stderr
    r = invoke(runner, [src, "-o", out, "--style", tiny_bundle, "--overwrite", "--max-size", "12"])
    assert r.exit_code == 0 and Image.open(out).size == (12, 9)


def test_folder_is_mirrored_and_failures_are_per_file(runner, tiny_bundle, tmp_path):
    root = tmp_path / "photos"
    _save(root / "a.png")
    _save(root / "sub" / "b.png", seed=1, mode="RGBA")
    (root / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("ignored: not an image")
    single = _save(tmp_path / "c.webp", seed=2)
    out = tmp_path / "out"
    r = invoke(runner, [root, single, tmp_path / "missing.png", "-o", out, "--style", tiny_bundle])
    assert r.exit_code == 2
    assert (out / "a.png").is_file() and (out / "sub" / "b.png").is_file() and (out / "c.webp").is_file()
    assert Image.open(out / "sub" / "b.png").mode == "RGBA"
    assert not (out / "notes.txt").exists() and not (out / "sub" / "broken.jpg").exists()
    err_lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(err_lines) == 2 and all(len(line) < 300 for line in err_lines)
    assert any("broken.jpg" in line for line in err_lines) and any("missing.png" in line for line in err_lines)
    assert "2 of 5 file(s) failed" in r.stderr
    assert not list(out.rglob(".*"))  # no temp files left behind


def test_never_overwrites_an_input(runner, tiny_bundle, tmp_path):
    src = _save(tmp_path / "in.png")
    before = src.read_bytes()
    r = invoke(runner, [src, "-o", src, "--style", tiny_bundle, "--overwrite"])
    assert r.exit_code == 2 and "overwrite an input" in r.stderr
    r = invoke(runner, [tmp_path, "-o", tmp_path, "--style", tiny_bundle, "--overwrite"])
    assert r.exit_code == 2
    assert src.read_bytes() == before


def test_stdin_to_stdout(runner, tiny_bundle, tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 20, 3), np.uint8)).save(buf, "PNG")
    r = runner.invoke(app, ["stylize", "-", "-o", "-", "--style", str(tiny_bundle)], input=buf.getvalue(),
                      catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    img = Image.open(io.BytesIO(r.stdout_bytes))
    assert img.format == "PNG" and img.size == (20, 16)


def test_bad_options_and_style_are_one_line_errors(runner, tiny_bundle, tmp_path):
    src = _save(tmp_path / "in.png")
    for args, msg in (([src, "-o", tmp_path / "o.png", "--style", "no_such_style"], "unknown style"),
                      ([src, "-o", tmp_path / "o.png", "--style", tiny_bundle, "--strength", "3"], "strength"),
                      ([src, "-o", tmp_path / "o.png", "--style", tiny_bundle, "--backend", "gpu"], "unknown backend"),
                      ([src, "--style", tiny_bundle], "-o/--output"),
                      ([src, "-o", tmp_path / "o.xyz", "--style", tiny_bundle], "cannot write .xyz")):
        r = invoke(runner, args)
        assert r.exit_code == 2, (args, r.stderr)
        assert msg in r.stderr and "Traceback" not in r.stderr


def test_video_inputs_go_to_the_streaming_engine(runner, tiny_bundle, tmp_path, monkeypatch):
    calls = []

    def fake_stylize_video(src, dst, stylizer, **kw):
        calls.append((src, dst, stylizer.backend_name, stylizer.strength, stylizer.preserve_color, kw))
        dst.write_bytes(b"video")
        return type("R", (), {"to_dict": lambda self: {"frames": 3, "fps": 9.0}})()

    # stylize_images calls the pipeline's stylize_video through its own module global
    monkeypatch.setattr(stylize_images, "stylize_video", fake_stylize_video)
    src = tmp_path / "clip.mp4"
    src.write_bytes(b"not decoded by the fake")
    img = _save(tmp_path / "still.png")
    out = tmp_path / "out"
    r = invoke(runner, [src, img, "-o", out, "--style", tiny_bundle, "--backend", "onnxruntime", "--crf", "20",
                        "--temporal", "--strength", "0.5", "--json"])
    assert r.exit_code == 0, r.stderr
    (src_arg, dst_arg, backend, strength, preserve_color, kw) = calls[0]
    assert src_arg == src and dst_arg == out / "clip.mp4" and backend == "onnxruntime"
    from styleengine.engine.temporal import TemporalStabilizer

    assert kw["crf"] == 20 and kw["temporal"] is TemporalStabilizer and "preset" not in kw and "x264_preset" not in kw
    # --strength travels in the Stylizer the pipeline gets (no frame filter; the pipeline applies no finish)
    assert strength == 0.5 and preserve_color is False and "filters" not in kw
    assert kw["overwrite"] is False and "max_size" not in kw
    kinds = {row["kind"]: row for row in json.loads(r.stdout)}
    assert kinds["video"]["extra"]["frames"] == 3 and kinds["image"]["ok"]


def test_plan_jobs_output_shapes(tmp_path):
    a = _save(tmp_path / "a.png")
    b = _save(tmp_path / "b.png")
    jobs = stylize_images.plan_jobs([str(a)], str(tmp_path / "o.png"))
    assert jobs[0].dst == tmp_path / "o.png"
    jobs = stylize_images.plan_jobs([str(a), str(b)], str(tmp_path / "new"))
    assert [j.dst for j in jobs] == [tmp_path / "new" / "a.png", tmp_path / "new" / "b.png"]
    with pytest.raises(Exception, match="exactly one"):
        stylize_images.plan_jobs([str(a), str(b)], "-")
    with pytest.raises(Exception, match="is a file"):
        stylize_images.plan_jobs([str(a), str(b)], str(a))
    dup = stylize_images.plan_jobs([str(a), str(tmp_path / "." / "a.png")], str(tmp_path / "x"))
    assert dup[1].error and "earlier input" in dup[1].error


def test_temporal_blend_option_reaches_the_stabilizer(runner, tiny_bundle, tmp_path):
    pytest.importorskip("cv2")
    from .video.helpers import make_video

    src = tmp_path / "clip.mp4"
    make_video(src, n=6, w=48, h=36, audio=None)
    stats = tmp_path / "stats.json"
    r = invoke(runner, [src, "-o", tmp_path / "out.mp4", "--style", tiny_bundle, "--backend", "onnxruntime",
                        "--precision", "fp32", "--temporal-blend", "0.3", "--stats", stats])
    assert r.exit_code == 0, r.stderr
    assert '"blend": 0.3' in stats.read_text().replace("0.30", "0.3")
    r = invoke(runner, [src, "-o", tmp_path / "out2.mp4", "--style", tiny_bundle, "--temporal-blend", "1.5"])
    assert r.exit_code == 2 and "temporal blend must be in [0, 1)" in r.stderr
    assert not (tmp_path / "out2.mp4").exists()
