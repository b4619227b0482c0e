"""Live stylization: webcam / capture device, RTSP/HTTP/UDP URL, or a file played at its real pace.

Latency first:
- a capture thread decodes continuously into a one-slot holder (LatestSlot); inference always takes the newest
  frame, and every frame overwritten unseen is counted as dropped;
- batch size 1; the preview (MJPEG) and the optional recording get the stylized frame right away;
- latency = time from capture (frame decoded) to the stylized frame being published, reported as p50/p95.

The recording (`output`) is video only. Its timestamps are the capture clock for devices and URLs (so a recording
with drops keeps real time: VFR) and the source timestamps for files. Ctrl-C / SIGTERM is the normal way to stop a
live session: the recording is finalized and the result returned (exit code 0 from the CLI).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Sequence

from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_path
from styleengine.core.log import log, progress

from ..stylizer import Stylizer
from ..temporal import temporal_filter
from .filters import FrameMeta, StreamInfo, resolve_filters
from .mjpeg import MJPEGServer
from .pipeline import Worker, _Terminate, _write_stats, interrupt_signals
from .probe import describe, open_input, video_stream
from .queues import EOF, Aborted, ByteQueue, LatestSlot
from .reader import SourceFrame, VideoReader
from .stats import Stats
from .writer import VideoWriter, WriterConfig, check_encoder_options, choose_codec

LIVE_TIME_BASE = Fraction(1, 1000)
URL_OPTIONS = {"rtsp_transport": "tcp", "fflags": "nobuffer", "flags": "low_delay"}
URL_TIMEOUT = (10.0, 10.0)  # open, read (seconds)


@dataclass
class LiveResult:
    source: str
    kind: str
    output: str | None
    preview_url: str | None
    frames_captured: int
    frames_processed: int
    dropped: int
    fps: float
    latency_ms: dict[str, float | None]
    wall_seconds: float
    stop_reason: str
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def source_kind(source: str | int) -> str:
    s = str(source)
    if s.isdigit():
        return "camera"
    if s.startswith("/dev/"):
        return "device"
    if "://" in s:
        return "url"
    return "file"


def open_source(source: str | int, *, capture_size: str | None = None, capture_fps: float | None = None):
    """(container, kind) for a webcam index or device path, a URL, or a file."""
    kind = source_kind(source)
    s = str(source)
    if kind in ("camera", "device"):
        options: dict[str, str] = {}
        if capture_size:
            options["video_size"] = capture_size
        if capture_fps:
            options["framerate"] = str(capture_fps)
        if sys.platform == "darwin":
            fmt, target = "avfoundation", (s if kind == "camera" else s)
        elif sys.platform.startswith("win"):
            fmt, target = "dshow", (f"video={s}")
        else:
            fmt, target = "v4l2", (f"/dev/video{s}" if kind == "camera" else s)
            if not os.path.exists(target):
                raise StyleEngineError(f"camera not found: {target}")
        try:
            import av

            return av.open(target, "r", format=fmt, options=options), kind
        except Exception as exc:
            raise StyleEngineError(f"cannot open camera {target}: {str(exc).splitlines()[0]}") from None
    if kind == "url":
        # nobuffer/low_delay only for RTSP: on HTTP it makes FFmpeg drop the packets read while probing (a short
        # clip then yields no frame at all).
        return open_input(s, options=URL_OPTIONS if s.startswith("rtsp") else {},
                          timeout=URL_TIMEOUT), kind
    return open_input(s), kind


def check_live_args(source: str | int, output: str | os.PathLike | None, overwrite: bool = False) -> Path | None:
    """Cheap checks before any model is loaded: the file source exists, the recording path is usable."""
    kind = source_kind(source)
    out_path = Path(output) if output else None
    if kind == "file" and not Path(str(source)).exists():
        raise StyleEngineError(f"input not found: {source}")
    if out_path is not None:
        if not out_path.parent.is_dir():
            raise StyleEngineError(f"output folder does not exist: {out_path.parent}")
        if not overwrite and out_path.exists():
            raise StyleEngineError(f"output exists (use --overwrite): {out_path}")
        if kind == "file" and Path(str(source)).resolve() == out_path.resolve():
            raise StyleEngineError(f"output is the input file: {out_path}")
        if not out_path.suffix:
            raise StyleEngineError(f"output needs a video extension (.mp4, .mkv, .mov): {out_path}")
    return out_path


class _Capture:
    """Decodes the source into the LatestSlot; paces file sources to their timestamps when `realtime`."""

    def __init__(self, reader: VideoReader, kind: str, realtime: bool, slot: LatestSlot, stop: threading.Event,
                 stats: Stats):
        self.reader, self.kind, self.realtime = reader, kind, realtime
        self.slot, self.stop, self.stats = slot, stop, stats
        self.error: BaseException | None = None
        self.ended = False
        self.t0: float | None = None

    def run(self) -> None:
        paced = self.kind == "file" and self.realtime
        lossless = self.kind == "file" and not self.realtime
        first_pts_s = None
        try:
            frames = self.reader.frames()
            while not self.stop.is_set():
                with self.stats.stage("capture"):
                    sf = next(frames, None)
                if sf is None:
                    break
                if paced:
                    if first_pts_s is None:
                        first_pts_s, self.t0 = sf.seconds, time.perf_counter()
                    due = self.t0 + (sf.seconds - first_pts_s)
                    delay = due - time.perf_counter()
                    if delay > 0 and self.stop.wait(delay):
                        break
                    sf.t_capture = time.perf_counter()  # "captured" when it is due, like a camera
                self.stats.frames_in += 1
                self.slot.put(sf)
                if lossless:
                    self.slot.wait_taken(self.stop)
            if self.reader.error is not None and self.reader.frames_read == 0:
                self.error = self.reader.error
        except BaseException as exc:  # reported by live()
            self.error = exc
        finally:
            self.ended = True
            self.slot.close()


def live(source: str | int, stylizer: Any, *, output: str | os.PathLike | None = None, preview: bool = True,
         host: str = "127.0.0.1", port: int = 8765, realtime: bool = False, duration: float | None = None,
         max_frames: int | None = None, crf: int | None = None, x264_preset: str | None = None,
         codec: str | None = "auto", temporal: Any = None, filters: Sequence[Any] | None = None,
         stats: str | os.PathLike | bool | None = None, overwrite: bool = False,
         capture_size: str | None = None, capture_fps: float | None = None, preview_fps: float = 15.0,
         on_ready: Callable[[str | None], None] | None = None) -> LiveResult:
    """Stylize a live source with a Stylizer (its --max-size, strength and colour settings apply) until it
    ends, `duration`/`max_frames` is reached, or Ctrl-C."""
    kind = source_kind(source)
    out_path = check_live_args(source, output, overwrite)
    chain = resolve_filters(temporal_filter(temporal), filters)
    codec_name = choose_codec(codec, out_path) if out_path is not None else None
    if codec_name:
        check_encoder_options(codec_name, crf, x264_preset)

    container, kind = open_source(source, capture_size=capture_size, capture_fps=capture_fps)
    try:
        stream = video_stream(container, str(source))
        info = describe(container, stream, str(source))
    except BaseException:
        container.close()
        raise
    reader = VideoReader(str(source), container=container, info=info)
    reader.set_size(*stylizer.target_size(reader.width, reader.height))
    stylizer.prepare(reader.width, reader.height, 1)
    run_stats = Stats(mode="live")
    slot = LatestSlot()
    stop = threading.Event()
    cap = _Capture(reader, kind, realtime, slot, stop, run_stats)
    server = None
    stop_reason = "end of source"
    try:
        if preview:
            server = MJPEGServer(host, port, max_fps=preview_fps, title=f"styleengine live: {source}",
                                 stats=lambda: _snapshot(run_stats, slot))
            url = server.start()
            log.warning("preview: %s%s", url, "" if host in ("127.0.0.1", "localhost", "::1")
                        else "  (reachable from the network)")
        if on_ready is not None:
            on_ready(server.url if server else None)
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(atomic_path(out_path, overwrite=overwrite, suffix=out_path.suffix)) \
                if out_path is not None else None
            cap_thread = Worker("styleengine-capture", cap.run)
            rec = _Recorder(tmp, codec_name, crf, x264_preset, kind, info, reader, run_stats) if tmp else None
            stop_reason = _loop(stylizer, slot, cap, chain, server, rec, run_stats, duration, max_frames, stop, info)
            stop.set()
            cap_thread.wait_quietly(5.0)
            if rec is not None:
                rec.finish()
                if rec.error is not None:
                    raise _as_error(rec.error)
                if rec.writer is None:
                    raise StyleEngineError("no frame was stylized; no recording written")
            if cap.error is not None:
                raise _as_error(cap.error)
    finally:
        stop.set()
        if server is not None:
            server.stop()
        reader.close()
        for f in chain:
            with contextlib.suppress(Exception):
                f.close()
    run_stats.finish()
    run_stats.dropped = slot.dropped
    run_stats.extra["preview"] = {"url": server.url, "jpeg_parts_sent": server.frames_sent} if server else None
    d = run_stats.to_dict()
    result = LiveResult(source=str(source), kind=kind, output=str(out_path) if out_path else None,
                        preview_url=server.url if server else None, frames_captured=run_stats.frames_in,
                        frames_processed=run_stats.frames_out, dropped=slot.dropped, fps=d["fps"],
                        latency_ms=d["latency_ms"], wall_seconds=d["wall_seconds"], stop_reason=stop_reason, stats=d)
    if stats not in (None, False, True):
        _write_stats(stats, result)
    lat = result.latency_ms
    log.info("live: %d frames stylized of %d captured (%d dropped), %.1f fps, latency p50 %s ms p95 %s ms%s [%s]",
             result.frames_processed, result.frames_captured, result.dropped, result.fps, lat["p50"], lat["p95"],
             f"; recorded {out_path}" if out_path else "", stop_reason)
    return result


def stylize_live(source: str | int, style: Any, *, backend: str = "auto", device: str | None = None,
                 precision: str | None = None, max_size: int | None = None, strength: float = 1.0,
                 preserve_color: bool = False, output: str | os.PathLike | None = None,
                 overwrite: bool = False, **options: Any) -> LiveResult:
    """live() with a Stylizer made for `style` (checked arguments first, so a bad recording path fails before
    any model loads)."""
    check_live_args(source, output, overwrite)
    with Stylizer(style, backend, device=device, precision=precision, max_size=max_size, strength=strength,
                  preserve_color=preserve_color) as st:
        return live(source, st, output=output, overwrite=overwrite, **options)


class _Recorder:
    """The live recording: a writer thread fed through a small queue (encoding never stalls capture)."""

    def __init__(self, path, codec, crf, preset, kind, info, reader, stats: Stats):
        self.path, self.kind, self.info, self.reader, self.stats = path, kind, info, reader, stats
        self.cfg = WriterConfig(codec=codec, crf=crf, preset=preset,
                                time_base=info.time_base if kind == "file" else LIVE_TIME_BASE,
                                rate=info.rate, colorspace=info.colorspace, color_primaries=info.color_primaries,
                                color_trc=info.color_trc, audio_source=None)
        self.q = ByteQueue("live->record", 128 * 2**20, 32)
        self.writer: VideoWriter | None = None
        self.error: BaseException | None = None
        self.t_first: float | None = None
        self.last_pts = -1
        self.worker = Worker("styleengine-record", self._run)

    def put(self, sf: SourceFrame, rgb) -> None:
        if self.error is not None:
            raise _as_error(self.error)
        if self.kind == "file":
            pts, tb = sf.pts, sf.time_base
        else:
            if self.t_first is None:
                self.t_first = sf.t_capture
            pts, tb = int(round((sf.t_capture - self.t_first) * 1000)), LIVE_TIME_BASE
        pts = max(pts, self.last_pts + 1)  # strictly increasing for the encoder
        self.last_pts = pts
        self.q.put((pts, tb, rgb), rgb.nbytes)

    def _run(self) -> None:
        try:
            while True:
                item = self.q.get()
                if item is EOF:
                    break
                pts, tb, rgb = item
                if self.writer is None:
                    self.cfg.rotation = self.reader.rotation
                    self.writer = VideoWriter(str(self.path), rgb.shape[1], rgb.shape[0], self.cfg, self.stats)
                with self.stats.stage("encode"):
                    self.writer.write(rgb, pts, tb)
        except Aborted:
            pass
        except BaseException as exc:
            self.error = exc
            self.q.abort()
        finally:
            if self.writer is not None:
                try:
                    self.writer.close()
                except BaseException as exc:
                    self.error = self.error or exc

    def finish(self) -> None:
        with contextlib.suppress(Aborted):
            self.q.put(EOF)
        self.worker.wait_quietly(600.0)


def _loop(stylizer, slot: LatestSlot, cap: _Capture, chain, server, rec: _Recorder | None, stats: Stats,
          duration: float | None, max_frames: int | None, stop: threading.Event, info) -> str:
    """Inference on the main thread (batch 1): Ctrl-C lands here and simply ends the session."""
    started = False
    last_index = -1
    t_start = time.perf_counter()
    with interrupt_signals(), _status(stats, slot) as status:
        try:
            while True:
                if duration is not None and time.perf_counter() - t_start >= duration:
                    return "duration reached"
                if max_frames is not None and stats.frames_out >= max_frames:
                    return "frame limit reached"
                sf = slot.get(timeout=0.25)
                status()
                if sf is None:
                    continue
                if sf is EOF:
                    return "capture failed" if cap.error is not None else "end of source"
                if not started:
                    for f in chain:
                        f.start(StreamInfo(sf.rgb.shape[1], sf.rgb.shape[0], sf.time_base, info.rate, live=True))
                    started = True
                gap = sf.index - last_index - 1 if last_index >= 0 else 0
                last_index = sf.index
                with stats.stage("infer"):
                    y = stylizer.stylize_batch(sf.rgb[None])[0]
                if chain:
                    with stats.stage("filter"):
                        for f in chain:
                            meta = FrameMeta(sf.index, sf.seconds, gap, f.analyze(sf.rgb, FrameMeta(sf.index,
                                                                                                   sf.seconds, gap)))
                            y = f.apply(sf.rgb, y, meta)
                if server is not None:
                    server.publish(y)
                stats.latencies.append(time.perf_counter() - sf.t_capture)
                stats.frames_out += 1
                if rec is not None:
                    with stats.stage("record_queue"):
                        rec.put(sf, y)
        except (KeyboardInterrupt, _Terminate):
            return "interrupted"


def _snapshot(stats: Stats, slot: LatestSlot) -> dict[str, Any]:
    d = stats.to_dict()
    d["dropped"] = slot.dropped
    return {k: d[k] for k in ("frames_in", "frames_out", "dropped", "fps", "latency_ms", "wall_seconds")}


@contextlib.contextmanager
def _status(stats: Stats, slot: LatestSlot):
    """A live status line (frames, fps, drops, latency) through the progress hook, at most 4 times a second."""
    with progress("live", None, unit="frame") as bar:
        last = [0.0]

        def update() -> None:
            now = time.perf_counter()
            if now - last[0] < 0.25:
                return
            last[0] = now
            d = _snapshot(stats, slot)
            p50 = d["latency_ms"]["p50"]
            bar.update(d["frames_out"], info=f"{d['fps']:.1f} fps  {d['dropped']} dropped"
                                            + (f"  latency p50 {p50} ms" if p50 is not None else ""))

        yield update


def _as_error(exc: BaseException) -> BaseException:
    if isinstance(exc, StyleEngineError):
        return exc
    return StyleEngineError(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
