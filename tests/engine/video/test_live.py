"""Live path on a file source played at real pace, the MJPEG preview read by a real HTTP client, drops."""

from __future__ import annotations

import http.client
import io
import json
import threading

import numpy as np
import pytest
from PIL import Image

from styleengine.core.errors import StyleEngineError
from styleengine.engine.video.live import live
from styleengine.engine.video.queues import EOF, LatestSlot

from .helpers import InvertBackend, make_video, read_video, stylizer


def read_multipart_jpegs(host: str, port: int, count: int, timeout: float = 10.0) -> tuple[str, list[bytes]]:
    """A real HTTP client on /stream.mjpg: parse the multipart/x-mixed-replace stream part by part."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    conn.request("GET", "/stream.mjpg")
    resp = conn.getresponse()
    assert resp.status == 200
    ctype = resp.getheader("Content-Type")
    boundary = ctype.split("boundary=")[1].encode()
    parts = []
    while len(parts) < count:
        line = resp.fp.readline()
        if not line:
            break
        if line.strip() != b"--" + boundary:
            continue
        headers = {}
        while True:
            h = resp.fp.readline().strip()
            if not h:
                break
            k, v = h.decode().split(":", 1)
            headers[k.strip().lower()] = v.strip()
        assert headers["content-type"] == "image/jpeg"
        parts.append(resp.fp.read(int(headers["content-length"])))
    conn.close()
    return ctype, parts


def test_live_file_realtime_with_preview_and_recording(tmp_path):
    src, rec = tmp_path / "cam.mp4", tmp_path / "rec.mp4"
    times = make_video(src, n=40, w=64, h=48, audio=None)  # 1.6 s at 25 fps
    got: dict = {}

    def client(url: str | None) -> None:
        def run() -> None:
            try:
                host, port = url.split("//")[1].rstrip("/").split(":")
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
                conn.request("GET", "/")
                got["page"] = conn.getresponse().read().decode()
                conn.close()
                got["ctype"], got["parts"] = read_multipart_jpegs(host, int(port), 3)
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
                conn.request("GET", "/stats.json")
                got["stats"] = json.loads(conn.getresponse().read())
                conn.close()
            except Exception as exc:  # surfaced by the assertions below
                got["error"] = exc

        t = threading.Thread(target=run, daemon=True)
        t.start()
        got["thread"] = t

    res = live(str(src), stylizer(InvertBackend()), output=rec, preview=True, port=0, realtime=True, on_ready=client,
               stats=tmp_path / "live.json")
    got["thread"].join(10)
    assert "error" not in got, got.get("error")
    assert res.wall_seconds >= 1.4  # real pace: 40 frames at 25 fps take ~1.6 s
    assert res.frames_captured == 40 and res.frames_processed + res.dropped == 40
    assert res.latency_ms["p50"] is not None and res.stop_reason == "end of source"
    assert '<img src="/stream.mjpg"' in got["page"]
    assert got["ctype"].startswith("multipart/x-mixed-replace")
    assert len(got["parts"]) == 3
    for jpeg in got["parts"]:
        img = Image.open(io.BytesIO(jpeg))
        assert img.format == "JPEG" and img.size == (64, 48)
        # inverted: the source's blue 90 becomes ~165
        assert abs(np.asarray(img)[..., 2].mean() - 165) < 20
    assert got["stats"]["frames_out"] >= 1
    b = read_video(rec)
    assert len(b["times"]) == res.frames_processed
    # file source: the recording keeps the source timestamps of the frames it processed
    assert set(round(t, 3) for t in b["times"]) <= set(round(t, 3) for t in times)
    assert json.loads((tmp_path / "live.json").read_text())["frames_processed"] == res.frames_processed


def test_live_drops_when_inference_is_slow_and_keeps_latency_bounded(tmp_path):
    src = tmp_path / "cam.mkv"
    make_video(src, n=30, audio=None, durations_ms=(20,))  # 50 fps source, 0.6 s
    res = live(str(src), stylizer(InvertBackend(delay=0.06)), preview=False, realtime=True)
    assert res.frames_captured == 30
    assert res.dropped > 5 and res.frames_processed + res.dropped == 30
    # newest-frame policy: latency stays around one inference time, it does not grow with the backlog
    assert res.latency_ms["p95"] < 500


def test_live_file_without_realtime_is_lossless_and_honours_max_frames(tmp_path):
    src = tmp_path / "in.mp4"
    make_video(src, n=12, audio=None)
    res = live(str(src), stylizer(InvertBackend()), preview=False)
    assert res.frames_processed == 12 and res.dropped == 0
    res = live(str(src), stylizer(InvertBackend()), preview=False, max_frames=5)
    assert res.frames_processed == 5 and res.stop_reason == "frame limit reached"


def test_live_bad_sources(tmp_path):
    with pytest.raises(StyleEngineError, match="input not found"):
        live(str(tmp_path / "nope.mp4"), stylizer(InvertBackend()), preview=False)
    with pytest.raises(StyleEngineError, match="camera not found"):
        live("97", stylizer(InvertBackend()), preview=False)
    src = tmp_path / "in.mp4"
    make_video(src, n=3, audio=None)
    with pytest.raises(StyleEngineError, match="folder does not exist"):
        live(str(src), stylizer(InvertBackend()), output=tmp_path / "no" / "x.mp4", preview=False)


def test_latest_slot_counts_drops_and_never_returns_a_frame_twice():
    slot = LatestSlot()
    for i in range(5):
        slot.put(i)
    assert slot.get(timeout=0.1) == 4 and slot.dropped == 4
    assert slot.get(timeout=0.05) is None
    slot.put(5)
    slot.close()
    assert slot.get(timeout=0.1) == 5 and slot.get(timeout=0.1) is EOF


def test_live_url_source_over_http(tmp_path):
    """An HTTP URL source (FFmpeg's http protocol) through the live path, served by a local stdlib server."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    make_video(tmp_path / "stream.mkv", n=8, audio=None)  # Matroska streams without seeking
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/stream.mkv"
        res = live(url, stylizer(InvertBackend()), preview=False)
        assert res.kind == "url" and res.frames_captured == 8 and res.frames_processed >= 1
        with pytest.raises(StyleEngineError):
            live(url.replace("stream.mkv", "missing.mkv"), stylizer(InvertBackend()), preview=False)
    finally:
        httpd.shutdown()
        httpd.server_close()
