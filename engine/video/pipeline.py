"""File -> file stylization with overlapping stages:

    decode thread --(ByteQueue)--> inference thread (batched, Stylizer.stylize_batch) --> [filter thread]
        --> convert thread (RGB->YUV) --> writer thread (encode + mux, audio interleaved)

The decoder scales frames to the Stylizer's target size (--max-size), and batches never exceed what its
backend takes; strength and colour preservation happen in the Stylizer like for photos.

The main thread only shows progress and handles Ctrl-C / SIGTERM. Queues are bounded in bytes. Frames are never
dropped or reordered (one worker per stage keeps the order); any stage failure stops the whole pipeline and is
reported as an error. Interrupts and truncated inputs finalize a playable partial file at the output path.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from styleengine.core.errors import Interrupted, StyleEngineError
from styleengine.core.fsutil import atomic_path
from styleengine.core.log import log, progress

from ..temporal import temporal_filter
from .filters import FrameFilter, FrameMeta, StreamInfo, resolve_filters
from .queues import EOF, Aborted, ByteQueue
from .reader import CorruptInput, SourceFrame, VideoReader
from .stats import Stats
from .writer import VideoWriter, WriterConfig, check_encoder_options, choose_codec

DEFAULT_QUEUE_MIB = 256


@dataclass
class VideoResult:
    input: str
    output: str
    frames: int
    input_frames: int | None
    media_seconds: float | None
    wall_seconds: float
    fps: float
    partial: bool
    encoder: dict[str, Any]
    backend: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Terminate(BaseException):
    """SIGTERM, turned into an exception on the main thread (handled like Ctrl-C)."""


@contextlib.contextmanager
def interrupt_signals():
    """SIGTERM behaves like Ctrl-C while the pipeline runs (only possible on the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum, frame):
        raise _Terminate()

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def check_paths(input: str | os.PathLike, output: str | os.PathLike) -> tuple[Path, Path]:
    src, dst = Path(input), Path(output)
    if "://" not in str(input):
        if not src.exists():
            raise StyleEngineError(f"input not found: {src}")
        try:
            same = dst.exists() and os.path.samefile(src, dst)
        except OSError:
            same = False
        if same or src.resolve() == dst.resolve():
            raise StyleEngineError(f"output is the input file: {dst} (choose another output name)")
    if not dst.parent.is_dir():
        raise StyleEngineError(f"output folder does not exist: {dst.parent}")
    if not dst.suffix:
        raise StyleEngineError(f"output needs a video extension (.mp4, .mkv, .mov): {dst}")
    return src, dst


class FilePipeline:
    """One run of decode -> infer -> filters -> encode for one file. Use via stylize_video()."""

    def __init__(self, reader: VideoReader, stylizer: Any, writer_factory, *, filters: Sequence[FrameFilter],
                 batch_size: int, queue_mib: int, stats: Stats):
        self.reader = reader
        self.stylizer = stylizer
        self.writer_factory = writer_factory
        self.writer: VideoWriter | None = None
        self.filters = list(filters)
        self.batch = max(1, int(batch_size))
        self.stats = stats
        frame_bytes = reader.width * reader.height * 3
        per_queue = max(1, queue_mib) * 2**20 // (4 if self.filters else 3)
        items = max(8, 4 * self.batch)
        self.q_in = ByteQueue("decode->infer", per_queue, items)
        self.q_out = ByteQueue("infer->" + ("filter" if self.filters else "convert"), per_queue, items)
        self.q_post = ByteQueue("filter->convert", per_queue, items) if self.filters else None
        # Converted (YUV) frames are half the RGB size; a short queue is enough to overlap convert and encode.
        self.q_enc = ByteQueue("convert->encode", per_queue // 2, items)
        self.queues = [q for q in (self.q_in, self.q_out, self.q_post, self.q_enc) if q is not None]
        self.frame_bytes = frame_bytes
        self.error: BaseException | None = None
        self.error_stage: str | None = None
        self.interrupted = False
        self.finalize_error: BaseException | None = None
        self._lock = threading.Lock()
        self.last_seconds: float | None = None

    # --------------------------------------------------------------- control
    def fail(self, stage: str, exc: BaseException) -> None:
        with self._lock:
            if self.error is None and not self.interrupted:
                self.error, self.error_stage = exc, stage
        for q in self.queues:
            q.abort()

    def interrupt(self) -> None:
        with self._lock:
            self.interrupted = True
        for q in self.queues:
            q.abort()

    def _run(self, stage: str, fn) -> "Worker":
        def target() -> None:
            try:
                fn()
            except Aborted:
                pass
            except BaseException as exc:  # any failure stops every stage; reported by the main thread
                self.fail(stage, exc)

        return Worker(f"styleengine-{stage}", target)

    # --------------------------------------------------------------- stages
    def _decode(self, first: SourceFrame, frames) -> None:
        meta_filters = [f for f in self.filters if type(f).analyze is not FrameFilter.analyze]
        item: SourceFrame | None = first
        while item is not None:
            contexts = [f.analyze(item.rgb, FrameMeta(item.index, item.seconds)) for f in meta_filters]
            self.q_in.put((item, contexts), item.nbytes)
            self.stats.frames_in += 1
            with self.stats.stage("decode"):
                item = next(frames, None)
        self.q_in.put(EOF)

    def _infer(self) -> None:
        dst = self.q_out
        while True:
            first = self.q_in.get()
            if first is EOF:
                dst.put(EOF)
                return
            batch = [first]
            eof = False
            while len(batch) < self.batch:
                nxt = self.q_in.get_nowait()
                if nxt is None:
                    break
                if nxt is EOF:
                    eof = True
                    break
                batch.append(nxt)
            arr = batch[0][0].rgb[None] if len(batch) == 1 else np.stack([b[0].rgb for b in batch])
            with self.stats.stage("infer", len(batch)):
                out = self.stylizer.stylize_batch(arr)
            if not isinstance(out, np.ndarray) or out.shape != arr.shape or out.dtype != np.uint8:
                raise StyleEngineError(f"stylizer returned {getattr(out, 'dtype', type(out))} "
                                       f"{getattr(out, 'shape', '')} for input {arr.shape} uint8 "
                                       f"at frame {batch[0][0].index}")
            for (sf, ctx), y in zip(batch, out):
                dst.put((sf, ctx, y), sf.nbytes * 2)
            if eof:
                dst.put(EOF)
                return

    def _filter(self) -> None:
        meta_filters = [f for f in self.filters if type(f).analyze is not FrameFilter.analyze]
        while True:
            item = self.q_out.get()
            if item is EOF:
                self.q_post.put(EOF)
                return
            sf, contexts, y = item
            ctx_of = dict(zip(map(id, meta_filters), contexts))
            with self.stats.stage("filter"):
                for f in self.filters:
                    y = f.apply(sf.rgb, y, FrameMeta(sf.index, sf.seconds, 0, ctx_of.get(id(f))))
                    if y.shape != sf.rgb.shape or y.dtype != np.uint8:
                        raise StyleEngineError(f"filter {type(f).__name__} returned {y.dtype} {y.shape} "
                                               f"for frame {sf.index} of shape {sf.rgb.shape}")
            self.q_post.put((sf, contexts, y), sf.nbytes * 2)

    def _convert(self) -> None:
        """RGB -> padded, tagged YUV VideoFrame (swscale, GIL released): overlaps the encoder's own work."""
        src = self.q_post if self.q_post is not None else self.q_out
        while True:
            item = src.get()
            if item is EOF:
                self.q_enc.put(EOF)
                return
            sf, _, y = item
            with self.stats.stage("convert"):
                frame = self.writer.prepare(y)
            sf.rgb = None  # the source pixels are no longer needed: free them before the encoder queue
            self.q_enc.put((sf, frame), y.nbytes // 2)

    def _encode(self) -> None:
        src = self.q_enc
        complete = False
        try:
            while True:
                item = src.get()
                if item is EOF:
                    complete = True
                    return
                sf, frame = item
                with self.stats.stage("encode"):
                    self.writer.write_frame(frame, sf.pts, sf.time_base, sf.duration)
                self.stats.frames_out += 1
                self.stats.latencies.append(time.perf_counter() - sf.t_capture)
                self.last_seconds = sf.seconds
        finally:
            # Always finalize: a playable file even when interrupted or when the input broke off.
            with self.stats.stage("finalize"):
                try:
                    self.writer.close(complete=complete and self.reader.error is None)
                except BaseException as exc:
                    self.finalize_error = exc  # the file is broken: reported even after an interrupt
                    self.fail("finalize", exc)

    # --------------------------------------------------------------- run
    def run(self) -> None:
        frames = self.reader.frames()
        with self.stats.stage("decode"):
            first = next(frames, None)
        if first is None:
            raise self.reader.error or StyleEngineError(f"no video frame in {self.reader.path}")
        # Set-up (CUDA graphs, the auto backend's measured choice on this real frame) before the clock starts.
        self.stylizer.prepare(first.rgb.shape[1], first.rgb.shape[0], self.batch, sample=first.rgb)
        self.stats.t_start = time.perf_counter()
        self.writer = self.writer_factory(first, self.reader)
        info = StreamInfo(first.rgb.shape[1], first.rgb.shape[0], first.time_base, self.reader.info.rate)
        for f in self.filters:
            f.start(info)
        threads = [self._run("decode", lambda: self._decode(first, frames)), self._run("infer", self._infer)]
        if self.filters:
            threads.append(self._run("filter", self._filter))
        threads.append(self._run("convert", self._convert))
        writer_thread = self._run("encode", self._encode)
        try:
            with interrupt_signals(), _progress(self.reader.info) as bar:
                while not writer_thread.wait(0.1):
                    bar(self.stats.frames_out, self.last_seconds)
                bar(self.stats.frames_out, self.last_seconds, final=True)
        except (KeyboardInterrupt, _Terminate):
            self.interrupt()
            # The writer finalizes the file; never rename it before that is done.
            if not writer_thread.wait_quietly(120.0) and self.finalize_error is None:
                self.finalize_error = StyleEngineError("the writer did not finish within 120 s after the interrupt")
        for t in threads:
            t.wait_quietly(5.0)
        self.stats.finish()
        for q in self.queues:
            self.stats.queues[q.name] = q.report()


class Worker:
    """A daemon thread with a completion Event.

    The main thread waits on the Event, never with Thread.join(): a Ctrl-C landing inside join() makes CPython
    (3.11, bpo-45274 handling) mark a still-running thread as stopped, and we would rename the output before the
    writer finalized it.
    """

    def __init__(self, name: str, fn) -> None:
        self.done = threading.Event()

        def target() -> None:
            try:
                fn()
            finally:
                self.done.set()

        self.thread = threading.Thread(target=target, name=name, daemon=True)
        self.thread.start()

    def wait(self, timeout: float) -> bool:
        return self.done.wait(timeout)

    def wait_quietly(self, timeout: float) -> bool:
        """Wait up to `timeout`, ignoring further Ctrl-C / SIGTERM so the stage can finish its file."""
        deadline = time.monotonic() + timeout
        while not self.done.is_set() and time.monotonic() < deadline:
            try:
                self.done.wait(0.1)
            except (KeyboardInterrupt, _Terminate):
                continue
        return self.done.is_set()


@contextlib.contextmanager
def _progress(info):
    """Frames written (of the total when known, else media seconds), through the progress hook."""
    total_frames = info.frames
    total_secs = info.duration if not total_frames else None
    start = info.start or 0.0
    t0 = time.perf_counter()
    with progress("stylize video", total_frames or total_secs, unit="frame" if total_frames else "s") as bar:

        def update(n: int, seconds: float | None, final: bool = False) -> None:
            el = time.perf_counter() - t0
            fps = f"{n / el:.1f} fps" if el > 0 and n else ""
            if total_frames or not total_secs:
                done = n
            else:
                done = max(0.0, seconds - start) if seconds is not None else None
            if final and total_secs and done is not None and done >= 0.98 * total_secs:
                done = total_secs
            bar.update(done, info=f"{n} frames {fps}".strip())

        yield update


def stylize_video(input: str | os.PathLike, output: str | os.PathLike, stylizer: Any, *,
                  crf: int | None = None, x264_preset: str | None = None, codec: str | None = "auto",
                  stats: str | os.PathLike | bool | None = None, temporal: Any = None,
                  filters: Sequence[Any] | None = None, batch_size: int | None = None, overwrite: bool = False,
                  audio: bool = True, queue_mib: int = DEFAULT_QUEUE_MIB, decode_threads: int = 0) -> VideoResult:
    """Stylize a video file with a Stylizer (anything with target_size/batch_size/prepare/stylize_batch); see
    the module doc for the guarantees.

    stats: a path to write the stats JSON to ("-" for stdout); True only fills result.stats.
    temporal: True for the built-in optical-flow stabilizer, or a FrameFilter / object with process(frame, stylized).
    Raises StyleEngineError (exit 2) for bad input, Interrupted (exit 130) after Ctrl-C/SIGTERM, both after
    finalizing a playable partial output when frames were written.
    """
    src, dst = check_paths(input, output)
    if not overwrite and dst.exists():
        raise StyleEngineError(f"output exists (use --overwrite): {dst}")
    chain = resolve_filters(temporal_filter(temporal), filters)
    # Validate the encoder choice before any work (bad --codec/--crf/--x264-preset are one-line errors).
    codec_name = choose_codec(codec or "auto", dst)
    check_encoder_options(codec_name, crf, x264_preset)
    reader = VideoReader(str(src), threads=decode_threads)
    reader.set_size(*stylizer.target_size(reader.width, reader.height))
    batch = max(1, int(batch_size or stylizer.batch_size))
    run_stats = Stats(mode="file")
    info = reader.info
    writer_cfg = WriterConfig(codec=codec_name, crf=crf, preset=x264_preset, time_base=info.time_base,
                              rate=info.rate, colorspace=info.colorspace, color_primaries=info.color_primaries,
                              color_trc=info.color_trc, audio_source=str(src) if audio else None)

    pipe: FilePipeline | None = None
    outcome: BaseException | None = None
    try:
        with atomic_path(dst, overwrite=overwrite, suffix=dst.suffix) as tmp:
            def make_writer(first: SourceFrame, rd: VideoReader) -> VideoWriter:
                writer_cfg.rotation = rd.rotation
                h, w = first.rgb.shape[:2]
                return VideoWriter(str(tmp), w, h, writer_cfg, run_stats)

            pipe = FilePipeline(reader, stylizer, make_writer, filters=chain, batch_size=batch,
                                queue_mib=queue_mib, stats=run_stats)
            pipe.run()
            written = pipe.writer.frames if pipe.writer else 0
            if pipe.finalize_error is not None:
                raise _wrap("finalize", pipe.finalize_error, written)
            if pipe.error is not None:
                raise _wrap(pipe.error_stage, pipe.error, written)
            if pipe.interrupted:
                outcome = Interrupted(f"interrupted: wrote {written} frames"
                                      + (f" ({pipe.last_seconds:.2f}s)" if pipe.last_seconds is not None else "")
                                      + f" to {dst} (partial, playable)")
                if written == 0:
                    raise Interrupted("interrupted before the first frame was written; no output kept")
            elif reader.error is not None:
                outcome = CorruptInput(f"{src}: {reader.error}; wrote {written} frames to {dst} "
                                       "(partial, playable)", written)
                if written == 0:
                    raise reader.error
    finally:
        reader.close()
        for f in chain:
            with contextlib.suppress(Exception):
                f.close()
    assert pipe is not None and pipe.writer is not None
    run_stats.timestamp_fixes = reader.timestamp_fixes
    filter_stats = {type(f).__name__: f.stats() for f in chain if callable(getattr(f, "stats", None))}
    if filter_stats:
        run_stats.extra["filters"] = filter_stats
    stats_dict = run_stats.to_dict()
    result = VideoResult(
        input=str(src), output=str(dst), frames=pipe.writer.frames, input_frames=info.frames,
        media_seconds=info.duration, wall_seconds=round(run_stats.wall, 3), fps=round(run_stats.fps(), 3),
        partial=outcome is not None, encoder=pipe.writer.describe(), backend=_describe(stylizer),
        stats=stats_dict)
    if stats not in (None, False, True):
        _write_stats(stats, result)
    notes = "; ".join(pipe.writer.audio_notes)
    log.info("wrote %s: %d frames, %.1f fps end to end%s%s", dst, result.frames, result.fps,
             f"; {notes}" if notes else "", " (padded to even size)" if pipe.writer.padded else "")
    if outcome is not None:
        outcome.result = result  # type: ignore[attr-defined]
        raise outcome
    return result


def _describe(stylizer: Any) -> dict[str, Any]:
    try:
        return dict(stylizer.describe())
    except Exception:
        return {"backend": type(stylizer).__name__}


def _write_stats(target: str | os.PathLike, result: VideoResult) -> None:
    text = json.dumps(result.to_dict(), indent=2, default=str) + "\n"
    if str(target) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_path(target) as tmp:
        Path(tmp).write_text(text)


def _wrap(stage: str | None, exc: BaseException, written: int) -> BaseException:
    if isinstance(exc, StyleEngineError):
        return exc
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    err = StyleEngineError(f"{stage or 'pipeline'} failed after {written} frames: {type(exc).__name__}: {msg}")
    err.__cause__ = exc
    return err
