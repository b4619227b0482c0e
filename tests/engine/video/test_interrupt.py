"""Ctrl-C / SIGTERM mid-way through a real subprocess: exit 130, playable partial output, no temp files, input
untouched."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from styleengine.core.fsutil import sha256_file

from .helpers import make_video, read_video

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_midway_leaves_playable_partial_output(tmp_path, sig):
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_video(src, n=60, w=256, h=192, audio="aac")  # big enough that finalizing takes a moment
    digest = sha256_file(src)
    # 0.3 s a frame: 60 frames >= 18 s, so the signal lands mid-way even on a loaded box
    # SIGINT at its default in the child: a test run started as a background job (`cmd &` in a script) has it
    # ignored, which the child would inherit (and Python then installs no KeyboardInterrupt handler).
    proc = subprocess.Popen([sys.executable, "-m", "tests.engine.video.run_stylize", str(src), str(dst), "0.3"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # wait until the pipeline is writing (its temp file exists), then let a few frames through
    # (a fresh venv compiles every imported package's bytecode on first use: slow on a loaded 2-core box)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(p.name.startswith(".out.mp4") for p in tmp_path.iterdir()):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    assert any(p.name.startswith(".out.mp4") for p in tmp_path.iterdir()), "the pipeline never started writing"
    time.sleep(1.0)
    assert proc.poll() is None, "the run ended before the signal could land mid-way"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "partial" in err
    frames = read_video(dst)
    n = len(frames["times"])
    assert 0 < n < 60
    assert frames["times"] == pytest.approx([i * 0.04 for i in range(n)], abs=1e-3)
    # audio kept up to the partial video's end, not beyond
    assert frames["audio_packets"] and frames["audio_packets"][-1][0] <= frames["times"][-1] + 0.6
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert sha256_file(src) == digest


def test_cli_error_exit_code_is_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "tests.engine.video.run_stylize", str(tmp_path / "missing.mp4"),
                           str(tmp_path / "o.mp4"), "0"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: input not found")
