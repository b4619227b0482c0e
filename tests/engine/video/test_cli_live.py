"""`styleengine live` end to end through the CLI: real style bundle, real backend, file source at real pace."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from styleengine.cli import app

from .helpers import make_video, read_video


def test_cli_live_records_file_source(tiny_bundle, tmp_path):
    src, rec = tmp_path / "cam.mp4", tmp_path / "rec.mkv"
    make_video(src, n=10, audio=None)
    result = CliRunner().invoke(app, ["live", str(src), "--style", str(tiny_bundle), "--backend", "onnxruntime",
                                      "--no-preview", "--realtime", "-o", str(rec), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["frames_captured"] == 10 and summary["output"] == str(rec)
    assert len(read_video(rec)["times"]) == summary["frames_processed"] >= 1


def test_cli_live_bad_source_exit_2(tiny_bundle, tmp_path):
    result = CliRunner().invoke(app, ["live", str(tmp_path / "nope.mp4"), "--style", str(tiny_bundle),
                                      "--backend", "onnxruntime", "--no-preview"])
    assert result.exit_code == 2 and "input not found" in result.output
