"""File -> file streaming: frame count, timestamps (VFR), duration, audio packets, colour tags, odd sizes,
rotation, batching/order, the filter hook, bad input, partial output on truncated input."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from styleengine.core.errors import StyleEngineError
from styleengine.engine.video.filters import FrameFilter, FrameMeta
from styleengine.engine.video.pipeline import stylize_video
from styleengine.engine.video.probe import probe

from .helpers import IdentityBackend, InvertBackend, TinyTorchBackend, frame_image, make_video, read_video, stylizer

pytest.importorskip("av")


def leftovers(folder, name):
    return [p.name for p in folder.iterdir() if p.name.startswith(f".{name}")]


def red_index(img: np.ndarray) -> int:
    """Inverse of helpers.frame_image's red level (through InvertBackend): which source frame this is."""
    red = 255 - float(np.median(img[..., 0]))
    return int(round((red - 20) / 12))


def test_mp4_with_audio_keeps_frames_times_duration_audio_and_tags(tmp_path):
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    times = make_video(src, n=14, audio="aac")
    before = src.read_bytes()
    be = InvertBackend()
    res = stylize_video(src, dst, stylizer(be), stats=tmp_path / "stats.json")
    a, b = read_video(src), read_video(dst)
    assert res.frames == 14 and len(b["times"]) == 14
    assert b["times"] == pytest.approx(times, abs=1e-3)
    assert b["times"] == pytest.approx(a["times"], abs=1e-3)
    # audio copied packet for packet: same bytes at the same times
    assert b["audio_codecs"] == ["aac"] and len(a["audio_packets"]) > 10
    assert b["audio_packets"] == a["audio_packets"]
    assert probe(dst).duration == pytest.approx(probe(src).duration, abs=0.05)
    # SD, untagged input -> BT.601 (SMPTE 170M) limited range, tagged
    assert (b["colorspace"], b["color_primaries"], b["color_trc"], b["color_range"]) == (6, 6, 6, 1)
    # it really went through the backend: inverted (lossy coding: compare medians)
    for i, f in enumerate(b["frames"]):
        assert red_index(f) == i
    assert src.read_bytes() == before
    assert leftovers(tmp_path, "out.mp4") == []
    assert stat.S_IMODE(os.stat(dst).st_mode) & 0o044, "output must be readable like any file the user writes"
    st = json.loads((tmp_path / "stats.json").read_text())
    assert st["frames"] == 14 and st["stats"]["frames_out"] == 14
    assert {"decode", "infer", "encode"} <= set(st["stats"]["stages"])
    assert st["stats"]["latency_ms"]["p50"] is not None and "decode->infer" in st["stats"]["queues"]


def test_vfr_mkv_without_frame_count_odd_size_and_audio_fallback(tmp_path):
    src, dst = tmp_path / "vfr.mkv", tmp_path / "out.mp4"
    times = make_video(src, n=13, w=47, h=35, durations_ms=(20, 40, 80), audio="pcm_u8")
    assert probe(src).frames is None  # MKV: no frame count in the header
    res = stylize_video(src, dst, stylizer(InvertBackend()))
    b = read_video(dst)
    assert len(b["times"]) == 13
    assert b["times"] == pytest.approx(times, abs=1e-3)  # VFR kept: never fps x index
    assert (b["width"], b["height"]) == (48, 36)  # padded to even (documented), content not scaled
    assert res.encoder["padded_to_even"] is True
    # MP4 does not take pcm_u8: re-encoded (stated), duration still matches
    assert b["audio_codecs"] == ["aac"]
    assert any("re-encoded to aac" in n for n in res.encoder["audio"])
    assert probe(dst).duration == pytest.approx(probe(src).duration, abs=0.1)


def test_mkv_output_copies_audio_it_accepts(tmp_path):
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mkv"
    make_video(src, n=10, durations_ms=(33, 34), audio="pcm_u8")
    stylize_video(src, dst, stylizer(InvertBackend()))
    a, b = read_video(src), read_video(dst)
    assert b["audio_codecs"] == ["pcm_u8"] and b["audio_packets"] == a["audio_packets"]
    assert b["times"] == pytest.approx(a["times"], abs=1e-3)


def test_bt709_tags_kept_and_rotation_kept(tmp_path):
    src, dst = tmp_path / "rot.mp4", tmp_path / "out.mp4"
    make_video(src, n=6, colorspace="bt709", rotation=90, audio=None)
    stylize_video(src, dst, stylizer(IdentityBackend()))
    a, b = read_video(src), read_video(dst)
    assert (b["colorspace"], b["color_primaries"], b["color_trc"], b["color_range"]) == (1, 1, 1, 1)
    assert b["rotation"] == 90
    # identity style: colours survive the decode -> RGB -> encode round trip (same matrix both ways)
    for fa, fb in zip(a["frames"], b["frames"]):
        assert np.abs(fa.astype(int) - fb.astype(int)).mean() < 3.0


def test_hd_untagged_uses_bt709(tmp_path):
    src, dst = tmp_path / "hd.mp4", tmp_path / "out.mp4"
    make_video(src, n=2, w=1280, h=720, audio=None)  # no colour tags in the stream
    assert probe(src).colorspace is None
    stylize_video(src, dst, stylizer(IdentityBackend()), x264_preset="ultrafast")
    b = read_video(dst)
    assert b["colorspace"] == 1 and b["color_range"] == 1
    # a flat region keeps its colour (reading untagged HD as BT.601 would shift blue by ~8 levels here)
    flat = b["frames"][0][100:600, 200:1200].reshape(-1, 3).mean(0)
    assert np.abs(flat - frame_image(0, 1280, 720)[300, 600]).max() <= 4


def test_batches_keep_order_and_real_tiny_network(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, n=11, audio=None)
    be = InvertBackend()
    stylize_video(src, tmp_path / "inv.mp4", stylizer(be), batch_size=4)
    # every frame once, plus the first frame once more as prepare()'s warm-up (before the clock)
    assert sum(be.batches) == 11 + 1 and be.batches[0] == 1 and max(be.batches) <= 4
    frames = read_video(tmp_path / "inv.mp4")["frames"]
    assert [red_index(f) for f in frames] == list(range(11))
    # and with a real (tiny) network behind the Backend contract
    tiny = TinyTorchBackend(None).load()
    res = stylize_video(src, tmp_path / "tiny.mp4", stylizer(tiny), batch_size=3)
    assert res.frames == 11 and len(read_video(tmp_path / "tiny.mp4")["times"]) == 11


class Recorder(FrameFilter):
    def __init__(self):
        self.analyzed, self.applied, self.started, self.closed = [], [], None, False

    def start(self, info):
        self.started = info

    def analyze(self, source, meta: FrameMeta):
        self.analyzed.append(meta.index)
        return ("ctx", meta.index, int(source[..., 0].mean()))

    def apply(self, source, stylized, meta: FrameMeta):
        assert meta.context[:2] == ("ctx", meta.index)
        assert meta.context[2] == int(source[..., 0].mean())
        self.applied.append(meta.index)
        out = stylized.copy()
        out[:4, :4] = 0  # visible mark
        return out

    def close(self):
        self.closed = True


def test_filter_hook_sees_every_frame_in_order_with_its_context(tmp_path):
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_video(src, n=9, audio=None)
    rec = Recorder()
    stylize_video(src, dst, stylizer(InvertBackend()), filters=[rec], batch_size=2)
    assert rec.analyzed == list(range(9)) and rec.applied == list(range(9))
    assert rec.started.width == 48 and rec.closed
    assert read_video(dst)["frames"][0][:3, :3].mean() < 20


def test_temporal_true_uses_the_stabilizer_and_keeps_timing(tmp_path):
    pytest.importorskip("cv2")
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mp4"
    times = make_video(src, n=8, durations_ms=(30, 50), audio=None)
    res = stylize_video(src, dst, stylizer(InvertBackend()), temporal=True)
    assert res.frames == 8 and read_video(dst)["times"] == pytest.approx(times, abs=1e-3)


@pytest.mark.parametrize("case", ["missing", "not_video", "no_video_stream", "folder_missing", "same_as_input",
                                  "codec", "exists", "crf"])
def test_bad_input_is_one_line_error(tmp_path, case):
    src = tmp_path / "in.mp4"
    make_video(src, n=3, audio=None)
    dst = tmp_path / "out.mp4"
    kwargs = {}
    if case == "missing":
        src = tmp_path / "nope.mp4"
    elif case == "not_video":
        src = tmp_path / "text.mp4"
        src.write_text("hello, not a video\n" * 10)
    elif case == "no_video_stream":
        import av

        src = tmp_path / "audio.m4a"
        with av.open(str(src), "w") as out:
            a = out.add_stream("aac", rate=48000)
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 48000, 0
            for p in list(a.encode(fr)) + list(a.encode(None)):
                out.mux(p)
    elif case == "folder_missing":
        dst = tmp_path / "missing" / "out.mp4"
    elif case == "same_as_input":
        dst = src
    elif case == "codec":
        kwargs["codec"] = "no_such_codec"
    elif case == "exists":
        dst.write_bytes(b"keep me")
    elif case == "crf":
        kwargs["crf"] = 99
    before = src.read_bytes() if src.exists() else None
    with pytest.raises(StyleEngineError) as ei:
        stylize_video(src, dst, stylizer(InvertBackend()), **kwargs)
    msg = str(ei.value)
    assert "\n" not in msg and msg
    expected = {"missing": "not found", "not_video": "not a video", "no_video_stream": "no video stream",
                "folder_missing": "folder does not exist", "same_as_input": "is the input",
                "codec": "unsupported codec", "exists": "output exists", "crf": "--crf"}[case]
    assert expected in msg
    if before is not None:
        assert src.read_bytes() == before
    if case == "exists":
        assert dst.read_bytes() == b"keep me"
    assert leftovers(tmp_path, "out.mp4") == []


def test_truncated_input_reports_frames_and_leaves_playable_partial(tmp_path):
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mp4"
    make_video(src, n=40, w=64, h=48, audio="aac")
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 55 // 100])
    with pytest.raises(StyleEngineError) as ei:
        stylize_video(cut, dst, stylizer(InvertBackend()))
    msg = str(ei.value)
    assert "truncated" in msg and "partial" in msg and "\n" not in msg
    b = read_video(dst)
    n = len(b["times"])
    assert 0 < n < 40 and f"wrote {n} frames" in msg
    # the audio of the partial output does not run past its video
    assert max(t for t, _ in b["audio_packets"]) <= b["times"][-1] + 0.6
    assert leftovers(tmp_path, "out.mp4") == []


def test_backend_failure_is_an_error_and_leaves_no_output(tmp_path):
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_video(src, n=10, audio=None)
    with pytest.raises(StyleEngineError) as ei:
        stylize_video(src, dst, stylizer(InvertBackend(fail_at=5)))
    assert "simulated backend failure" in str(ei.value) and "infer" in str(ei.value)
    assert not dst.exists() and leftovers(tmp_path, "out.mp4") == []


def test_wrong_backend_output_shape_is_an_error(tmp_path):
    class Bad(InvertBackend):
        def _infer(self, batch):
            return batch[:, :-1]

    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_video(src, n=3, audio=None)
    with pytest.raises(StyleEngineError, match="backend returned"):
        stylize_video(src, dst, stylizer(Bad()))
    assert not dst.exists()


def test_max_size_downscales(tmp_path):
    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    times = make_video(src, n=4, w=96, h=72, audio=None)
    be = InvertBackend()
    stylize_video(src, dst, stylizer(be, max_size=48))
    b = read_video(dst)
    assert (b["width"], b["height"]) == (48, 36) and b["times"] == pytest.approx(times, abs=1e-3)
    assert set(be.shapes) == {(1, 36, 48)}  # the decoder scaled the frames: the backend saw the small size


def add_subtitles(src, dst, cues):
    """Remux `src` into MKV `dst` adding an SRT subtitle stream with (start_ms, duration_ms, text) cues."""
    from fractions import Fraction

    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        smap = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        sub = out.add_mux_stream("subrip")
        sub.time_base = Fraction(1, 1000)
        for pkt in inp.demux():
            if pkt.size:
                pkt.stream = smap[pkt.stream.index]
                out.mux(pkt)
        for start, dur, text in cues:
            p = av.Packet(text.encode())
            p.stream, p.time_base = sub, Fraction(1, 1000)
            p.pts = p.dts = start
            p.duration = dur
            out.mux(p)


def test_subtitles_copied_into_mkv_and_dropped_with_a_note_for_mp4(tmp_path):
    import av

    plain, src = tmp_path / "plain.mkv", tmp_path / "subs.mkv"
    make_video(plain, n=10, audio="aac")
    cues = [(40, 120, "first"), (200, 160, "second")]
    add_subtitles(plain, src, cues)
    res = stylize_video(src, tmp_path / "out.mkv", stylizer(InvertBackend()))
    assert any(n.startswith("subtitle #2") and n.endswith("copied") for n in res.encoder["audio"])
    with av.open(str(tmp_path / "out.mkv")) as c:
        got = [(int(float(p.pts * p.time_base) * 1000 + 0.5), bytes(p).decode())
               for p in c.demux(c.streams.subtitles[0]) if p.size]
    assert got == [(s, t) for s, _, t in cues]
    assert read_video(tmp_path / "out.mkv")["audio_packets"] == read_video(src)["audio_packets"]
    res = stylize_video(src, tmp_path / "out.mp4", stylizer(InvertBackend()))
    assert any(n.startswith("subtitle") and "dropped" in n and ".mkv" in n for n in res.encoder["audio"])
    assert len(read_video(tmp_path / "out.mp4")["times"]) == 10


def test_backend_with_max_batch_1_and_narrow_shape_limits(tmp_path):
    """A backend taking one frame at a time within min 64x64 .. max 128x128: never a batch > 1, frames sized
    by --max-size fit, smaller frames are padded up and cropped back, larger ones are a one-line error."""
    from styleengine.engine.backend import ShapeLimits

    limits = ShapeLimits(min_height=64, min_width=64, max_height=128, max_width=128)
    # On a GPU a Stylizer streams several frames per call, unless the backend takes fewer.
    assert stylizer(InvertBackend(device="cuda:0")).batch_size > 1
    be = InvertBackend(device="cuda:0", max_batch=1, limits=limits)
    st = stylizer(be, max_size=128)
    assert st.batch_size == 1

    # full size 256x192 is above the maximum; --max-size 128 makes it 128x96, which fits
    big = tmp_path / "big.mp4"
    times = make_video(big, n=7, w=256, h=192, audio=None)
    res = stylize_video(big, tmp_path / "out.mp4", st)
    b = read_video(tmp_path / "out.mp4")
    assert res.frames == 7 and (b["width"], b["height"]) == (128, 96)
    assert b["times"] == pytest.approx(times, abs=1e-3)
    assert [red_index(f) for f in b["frames"]] == list(range(7))
    assert be.batches == [1] * (7 + 1) and set(be.shapes) == {(1, 96, 128)}  # + the warm-up frame
    # a caller asking for bigger pipeline batches still never gets more than one frame into the backend
    be.batches.clear()
    stylize_video(big, tmp_path / "out4.mp4", st, batch_size=4)
    assert be.batches == [1] * (7 + 1) and len(read_video(tmp_path / "out4.mp4")["times"]) == 7

    # 48x36 is below the minimum: padded to 64x64 for the backend, cropped back to 48x36 in the output
    small = tmp_path / "small.mp4"
    make_video(small, n=5, audio=None)
    be_small = InvertBackend(device="cuda:0", max_batch=1, limits=limits)
    res = stylize_video(small, tmp_path / "small_out.mp4", stylizer(be_small))
    b = read_video(tmp_path / "small_out.mp4")
    assert res.frames == 5 and len(b["frames"]) == 5 and (b["width"], b["height"]) == (48, 36)
    assert [red_index(f) for f in b["frames"]] == list(range(5))
    assert be_small.batches == [1] * (5 + 1) and set(be_small.shapes) == {(1, 64, 64)}  # + the warm-up frame

    # without --max-size the 256x192 frames exceed 128x128: one line naming --max-size, no output left
    with pytest.raises(StyleEngineError) as ei:
        stylize_video(big, tmp_path / "refused.mp4", stylizer(InvertBackend(device="cuda:0", max_batch=1,
                                                                            limits=limits)))
    msg = str(ei.value)
    assert "\n" not in msg and "--max-size" in msg and "256x192" in msg
    assert not (tmp_path / "refused.mp4").exists() and leftovers(tmp_path, "refused.mp4") == []


def test_strength_and_preserve_color_are_applied_by_the_stylizer(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, n=3, audio=None)
    stylize_video(src, tmp_path / "orig.mp4", stylizer(InvertBackend(), strength=0.0))
    a, b = read_video(src), read_video(tmp_path / "orig.mp4")
    # strength 0 = the original frames (through the codec), not the inverted ones
    for fa, fb in zip(a["frames"], b["frames"]):
        assert np.abs(fa.astype(int) - fb.astype(int)).mean() < 3.0
    assert len(b["frames"]) == 3


def test_auto_codec_follows_the_container(tmp_path):
    import av

    from styleengine.engine.video.writer import choose_codec

    assert choose_codec("auto", tmp_path / "x.mp4") in ("libx264", "h264_nvenc")
    assert choose_codec("auto", tmp_path / "x.mkv") in ("libx264", "h264_nvenc")
    for ext, name in ((".webm", "libvpx-vp9"), (".gif", "gif")):
        try:
            av.codec.Codec(name, "w")
        except Exception:
            with pytest.raises(StyleEngineError, match=ext):
                choose_codec("auto", tmp_path / f"x{ext}")
            continue
        assert choose_codec("auto", tmp_path / f"X{ext.upper()}") == name
    # end to end: a .webm output with the default codec is VP9 with every frame
    try:
        av.codec.Codec("libvpx-vp9", "w")
    except Exception:
        return
    src = tmp_path / "in.mp4"
    make_video(src, n=4, audio=None)
    res = stylize_video(src, tmp_path / "out.webm", stylizer(InvertBackend()))
    b = read_video(tmp_path / "out.webm")
    assert res.encoder["codec"] == "libvpx-vp9" and b["codec"] == "vp9" and len(b["times"]) == 4
