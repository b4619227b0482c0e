"""Output containers: `--codec auto` picks what the container holds, audio is re-encoded at a rate its encoder
accepts, GIF gets palette frames, and video outputs that cannot be written are one-line errors."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from styleengine.cli import app
from styleengine.core.errors import StyleEngineError
from styleengine.engine.video import writer as writer_mod
from styleengine.engine.video.writer import VideoWriter, WriterConfig, choose_codec

from .helpers import make_video, read_video

N_FRAMES = 10


def make_clip_with_aac_44k(path: Path, *, n: int = N_FRAMES, w: int = 48, h: int = 36) -> Path:
    """H.264 + AAC stereo at 44.1 kHz (a rate Opus cannot take), 25 fps."""
    make_video(path, n=n, w=w, h=h, audio="aac", audio_rate=44100, audio_layout="stereo")
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip_with_aac_44k(tmp_path_factory.mktemp("clip") / "clip.mp4")


def stylize(runner, *args):
    return runner.invoke(app, ["stylize", *map(str, args)], catch_exceptions=False)


def streams(path: Path) -> dict:
    import av

    with av.open(str(path)) as c:
        audio = [{"codec": s.codec_context.name, "rate": s.codec_context.sample_rate} for s in c.streams.audio]
        video = c.streams.video[0].codec_context.name
        frames = sum(1 for _ in c.decode(video=0))
    return {"video": video, "audio": audio, "frames": frames}


def test_clip_has_aac_at_44k(clip):
    assert streams(clip)["audio"] == [{"codec": "aac", "rate": 44100}]


@pytest.mark.parametrize("suffix, codec", [(".mp4", ("libx264", "h264_nvenc")), (".mkv", ("libx264", "h264_nvenc")),
                                           (".mov", ("libx264", "h264_nvenc")), (".webm", ("libvpx-vp9",)),
                                           (".gif", ("gif",))])
def test_auto_codec_is_one_the_container_holds(suffix, codec):
    assert choose_codec("auto", f"out{suffix}") in codec


def test_unknown_extension_is_refused_before_any_work():
    with pytest.raises(StyleEngineError, match=r"no video container for the extension \.gifv"):
        choose_codec("auto", "out.gifv")


def test_audio_rate_follows_the_encoder():
    assert writer_mod.audio_rate("libopus", 44100) == 48000
    assert writer_mod.audio_rate("libopus", 22050) == 24000
    assert writer_mod.audio_rate("aac", 44100) == 44100


def test_webm_plays_with_opus_audio_at_48k(runner, tiny_bundle, clip, tmp_path):
    out = tmp_path / "out.webm"
    r = stylize(runner, clip, "-o", out, "--style", tiny_bundle, "--backend", "onnxruntime", "--json")
    assert r.exit_code == 0, r.stderr
    info = streams(out)
    assert info["video"] == "vp9" and info["frames"] == N_FRAMES
    assert info["audio"] == [{"codec": "opus", "rate": 48000}]
    assert "re-encoded to opus" in r.stderr
    (row,) = json.loads(r.stdout)
    assert row["ok"] and row["extra"]["encoder"]["codec"] == "libvpx-vp9"
    assert any("re-encoded to opus" in note for note in row["extra"]["encoder"]["audio"])


def test_gif_decodes_back_and_says_the_audio_was_dropped(runner, tiny_bundle, clip, tmp_path):
    out = tmp_path / "out.gif"
    r = stylize(runner, clip, "-o", out, "--style", tiny_bundle, "--backend", "onnxruntime", "--json")
    assert r.exit_code == 0, r.stderr
    info = streams(out)
    assert info["video"] == "gif" and info["frames"] == N_FRAMES and info["audio"] == []
    assert "dropped (gif holds no audio)" in r.stderr
    (row,) = json.loads(r.stdout)
    enc = row["extra"]["encoder"]
    assert enc["codec"] == "gif" and enc["pix_fmt"] == writer_mod.pick_pix_fmt("gif")
    assert any("dropped" in note for note in enc["audio"])


def test_gif_pixel_format_is_one_the_encoder_takes_and_keeps_colour(tmp_path):
    """Palette frames (own 256 colours each) rather than FFmpeg's fixed rgb8 palette: a smooth gradient
    survives at > 25 dB (rgb8 gives ~21 dB)."""
    import av

    fmt = writer_mod.pick_pix_fmt("gif")
    assert fmt in [f.name for f in av.codec.Codec("gif", "w").video_formats]
    yy, xx = np.mgrid[0:64, 0:96]
    frames = [np.stack([(xx * 2 + i * 9) % 256, (yy * 4) % 256, ((xx + yy) * 2) % 256], -1).astype(np.uint8)
              for i in range(4)]
    path = tmp_path / "grad.gif"
    w = VideoWriter(str(path), 96, 64, WriterConfig(codec="auto", time_base=Fraction(1, 100), rate=Fraction(10)))
    for i, f in enumerate(frames):
        w.write(f, i * 10, Fraction(1, 100))
    w.close()
    back = read_video(path)["frames"]
    assert len(back) == len(frames)
    for a, b in zip(back, frames):
        mse = np.mean((a.astype(np.float64) - b) ** 2)
        assert 10 * np.log10(255 ** 2 / mse) > 25


def test_mkv_and_mov_keep_the_aac_audio(runner, tiny_bundle, clip, tmp_path):
    for suffix in (".mkv", ".mov"):
        out = tmp_path / f"out{suffix}"
        r = stylize(runner, clip, "-o", out, "--style", tiny_bundle, "--backend", "onnxruntime")
        assert r.exit_code == 0, r.stderr
        info = streams(out)
        assert info["video"] == "h264" and info["frames"] == N_FRAMES
        assert info["audio"] == [{"codec": "aac", "rate": 44100}]


# ------------------------------------------------------------------------------------ write failures
def _one_error(r) -> str:
    assert r.exit_code == 2 and "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_video_output_into_a_missing_folder_is_created(runner, tiny_bundle, clip, tmp_path):
    out = tmp_path / "new" / "deeper" / "out.mp4"
    r = stylize(runner, clip, "-o", out, "--style", tiny_bundle, "--backend", "onnxruntime")
    assert r.exit_code == 0, r.stderr
    assert streams(out)["frames"] == N_FRAMES


def test_video_output_whose_parent_is_a_file_is_one_line(runner, tiny_bundle, clip, tmp_path):
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("x")
    r = stylize(runner, clip, "-o", blocker / "out.mp4", "--style", tiny_bundle, "--backend", "onnxruntime")
    assert "is a file" in _one_error(r)
    assert blocker.read_text() == "x"


def test_video_with_unknown_extension_is_one_line(runner, tiny_bundle, clip, tmp_path):
    r = stylize(runner, clip, "-o", tmp_path / "out.gifv", "--style", tiny_bundle, "--backend", "onnxruntime")
    line = _one_error(r)
    assert "out.gifv" in line and ".tmp" not in line and "/." not in line  # the real name, not the temp file's
    assert not list(tmp_path.glob("*.gifv")) and not list(tmp_path.glob(".*"))


def test_unwritable_stats_path_is_refused_before_the_video_is_written(runner, tiny_bundle, clip, tmp_path):
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("x")
    out = tmp_path / "out.mp4"
    r = stylize(runner, clip, "-o", out, "--style", tiny_bundle, "--backend", "onnxruntime",
                "--stats", blocker / "stats.json")
    assert "--stats" in _one_error(r)
    assert not out.exists()


def test_stats_to_stdout_is_one_document_for_several_videos(runner, tiny_bundle, clip, tmp_path):
    import shutil

    folder = tmp_path / "clips"
    folder.mkdir()
    shutil.copy(clip, folder / "a.mp4")
    shutil.copy(clip, folder / "b.mp4")
    r = stylize(runner, folder, "-o", tmp_path / "out", "--style", tiny_bundle, "--backend", "onnxruntime",
                "--stats", "-")
    assert r.exit_code == 0, r.stderr
    docs = json.loads(r.stdout)
    assert [Path(d["output"]).name for d in docs] == ["a.mp4", "b.mp4"] and all(d["frames"] == N_FRAMES for d in docs)
    # one video: the document is that video's stats object (as before)
    r = stylize(runner, clip, "-o", tmp_path / "one.mp4", "--style", tiny_bundle, "--backend", "onnxruntime",
                "--stats", "-")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["frames"] == N_FRAMES
