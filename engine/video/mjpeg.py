"""Local preview: the newest stylized frame as MJPEG over HTTP (multipart/x-mixed-replace), stdlib server only.

    /              a page with <img src="/stream.mjpg"> (any browser shows it, no JavaScript needed)
    /stream.mjpg   multipart stream, one JPEG per part, boundary "frame"
    /frame.jpg     the newest frame as one JPEG
    /stats.json    live counters (frames, drops, latency)

Latest-frame semantics all the way: publish() only swaps a reference (inference never waits), one encoder thread
turns the newest frame into JPEG only while someone watches, throttled to `max_fps` and `max_side`, and each
client is sent the newest JPEG when it is ready for one (a slow client skips frames instead of lagging).
Binds 127.0.0.1 by default; another host (e.g. 0.0.0.0) exposes the preview to the network.
"""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import numpy as np

from styleengine.core.errors import StyleEngineError

BOUNDARY = "frame"
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>styleengine live</title>
<style>body{{margin:0;background:#111;color:#ccc;font:14px sans-serif;text-align:center}}
img{{max-width:100vw;max-height:92vh}}</style></head>
<body><img src="/stream.mjpg" alt="live preview"><div>{title}</div></body></html>
"""


class MJPEGServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 8765, *, quality: int = 80, max_fps: float = 15.0,
                 max_side: int = 960, title: str = "styleengine live",
                 stats: Callable[[], dict[str, Any]] | None = None):
        self.host, self.port = host, port
        self.quality, self.max_fps, self.max_side = quality, max_fps, max_side
        self.title = title
        self.stats_fn = stats
        self._cond = threading.Condition()
        self._raw: np.ndarray | None = None
        self._raw_seq = 0
        self._jpeg: bytes | None = None
        self._jpeg_seq = 0
        self._clients = 0
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self.frames_sent = 0

    # ------------------------------------------------------------ lifecycle
    def start(self) -> str:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep stderr for our progress
                pass

            def do_GET(self) -> None:  # noqa: N802 (stdlib naming)
                path = self.path.split("?", 1)[0]
                if path == "/":
                    body = PAGE.format(title=server.title).encode()
                    self._send(200, "text/html; charset=utf-8", body)
                elif path == "/stream.mjpg":
                    server._stream(self)
                elif path == "/frame.jpg":
                    jpeg = server.fresh_jpeg(timeout=5.0)
                    if jpeg is None:
                        self._send(503, "text/plain", b"no frame yet\n")
                    else:
                        self._send(200, "image/jpeg", jpeg[1])
                elif path == "/stats.json":
                    data = server.stats_fn() if server.stats_fn else {}
                    self._send(200, "application/json", json.dumps(data, default=str).encode())
                else:
                    self._send(404, "text/plain", b"not found\n")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

        try:
            self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as exc:
            raise StyleEngineError(f"cannot serve the preview on {self.host}:{self.port}: "
                                   f"{exc.strerror or exc} (pick another --port)") from None
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                         name="styleengine-mjpeg-http", daemon=True).start()
        threading.Thread(target=self._encoder, name="styleengine-mjpeg-encode", daemon=True).start()
        return self.url

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> "MJPEGServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ frames
    @property
    def clients(self) -> int:
        return self._clients

    def publish(self, rgb: np.ndarray) -> None:
        """Offer the newest frame (H, W, 3) uint8 RGB; never blocks on viewers."""
        with self._cond:
            self._raw = rgb
            self._raw_seq += 1
            self._cond.notify_all()

    def _encoder(self) -> None:
        from PIL import Image

        last_seq, last_t = 0, 0.0
        while not self._stop.is_set():
            with self._cond:
                while not self._stop.is_set() and (self._raw_seq == last_seq or self._clients == 0
                                                   and self._jpeg is not None):
                    self._cond.wait(0.2)
                if self._stop.is_set():
                    return
                raw, seq = self._raw, self._raw_seq
            wait = 1.0 / self.max_fps - (time.monotonic() - last_t) if self.max_fps > 0 else 0
            if wait > 0:
                time.sleep(wait)
                with self._cond:  # take the newest after throttling
                    raw, seq = self._raw, self._raw_seq
            if raw is None:
                continue
            img = Image.fromarray(raw)
            if max(img.size) > self.max_side:
                img.thumbnail((self.max_side, self.max_side))
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=self.quality)
            last_seq, last_t = seq, time.monotonic()
            with self._cond:
                self._jpeg = buf.getvalue()
                self._jpeg_seq += 1
                self._cond.notify_all()

    def wait_jpeg(self, after_seq: int, timeout: float) -> tuple[int, bytes] | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._stop.is_set() and (self._jpeg is None or self._jpeg_seq <= after_seq):
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(min(left, 0.2))
            if self._jpeg is None or self._jpeg_seq <= after_seq:
                return None
            return self._jpeg_seq, self._jpeg

    def fresh_jpeg(self, timeout: float) -> tuple[int, bytes] | None:
        """A JPEG of a frame published after this call (wakes the encoder), else the newest one, else None."""
        with self._cond:
            self._clients += 1
            current = self._jpeg_seq
            self._cond.notify_all()
        try:
            return self.wait_jpeg(current, timeout) or (self.wait_jpeg(0, 0.01))
        finally:
            with self._cond:
                self._clients -= 1

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        handler.send_header("Cache-Control", "no-store")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        with self._cond:
            self._clients += 1
            self._cond.notify_all()
        seq = 0
        try:
            while not self._stop.is_set():
                got = self.wait_jpeg(seq, timeout=1.0)
                if got is None:
                    continue
                seq, jpeg = got
                part = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                        .encode() + jpeg + b"\r\n")
                handler.wfile.write(part)
                handler.wfile.flush()
                self.frames_sent += 1
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            pass
        finally:
            with self._cond:
                self._clients -= 1
