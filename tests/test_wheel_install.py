"""The deployment install, as a user gets it: a wheel built from this tree, installed WITHOUT extras into a fresh
virtual environment (so no torch, no editable paths), runs every zero-set-up path: a built-in on a photo, INT8
quantization of a built-in (calibration images found as package data), a weight blend of built-ins, and a
built-in on the bundled sample clip. Slow (it installs the runtime packages), but it runs in CI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "STYLEENGINE_CACHE": str(cwd / "cache")})
    assert res.returncode == 0, f"{cmd}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.mark.slow
def test_wheel_without_extras_runs_builtins_on_photo_int8_blend_and_clip(tmp_path):
    # Built from a copy of the files git knows (tracked, or new and not ignored): no build/ left in the tree,
    # and nothing an ignored local file provides can leak into the wheel.
    src = tmp_path / "src"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(src)], check=True, capture_output=True, timeout=600)
    (wheel,) = dist.glob("styleengine-*.whl")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py, cli = env_dir / "bin" / "python", env_dir / "bin" / "styleengine"
    _run([py, "-m", "pip", "install", "-q", "--no-compile", str(wheel)], tmp_path)
    # a deployment: no torch, no training or export stack
    probe = _run([py, "-c", "import importlib.util as u; print([m for m in ('torch', 'onnxscript', 'cv2') "
                            "if u.find_spec(m)])"], tmp_path)
    assert probe.stdout.strip() == "[]"
    sample = _run([cli, "styles", "--sample", "photo"], tmp_path).stdout.strip()
    assert "site-packages" in sample  # the bundled sample comes from the installed package, not this tree
    listed = json.loads(_run([cli, "styles", "--json"], tmp_path).stdout)
    assert {"starry_night", "great_wave"} <= {s["name"] for s in listed}

    _run([cli, "stylize", sample, "-o", tmp_path / "auto.jpg", "--style", "starry_night"], tmp_path)
    res = _run([cli, "stylize", sample, "-o", tmp_path / "int8.png", "--style", "great_wave", "--precision", "int8",
                "--json"], tmp_path)
    (row,) = json.loads(res.stdout)
    assert row["ok"] and row["backend"].startswith("onnxruntime")
    assert "INT8 vs FP32: PSNR" in res.stderr  # quantized here, calibrated on the packaged images
    assert list((tmp_path / "cache" / "int8").glob("*.onnx"))
    _run([cli, "stylize", sample, "-o", tmp_path / "blend.jpg", "--style", "starry_night:0.5,great_wave:0.5"], tmp_path)
    clip = _run([cli, "styles", "--sample", "clip"], tmp_path).stdout.strip()
    res = _run([cli, "stylize", clip, "-o", tmp_path / "clip.mp4", "--style", "the_scream", "--max-size", "160",
                "--json"], tmp_path)
    (row,) = json.loads(res.stdout)
    assert row["ok"] and row["extra"]["frames"] > 10
    for name in ("auto.jpg", "int8.png", "blend.jpg", "clip.mp4"):
        assert (tmp_path / name).stat().st_size > 1000, name
