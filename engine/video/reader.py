"""Threaded decode: demux + decode the first video stream into RGB frames that keep their source timestamps.

FFmpeg decodes with its own frame threads (thread_type AUTO) and releases the GIL, so this overlaps inference.
Colour: YUV -> RGB uses the frame's own matrix tags; untagged HD is read as BT.709 (what players assume), untagged
SD as BT.601. The writer uses the same choice, so a round trip keeps the colours.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

import numpy as np

from styleengine.core.errors import StyleEngineError

from .probe import MediaInfo, describe, is_hd, open_input, video_stream

COLORSPACE_BT709 = 1
COLORSPACE_BT601 = 6  # SMPTE 170M, the same matrix as BT.470BG (5)


@dataclass
class SourceFrame:
    index: int
    pts: int                  # in time_base units, straight from the decoder (never fps x index)
    time_base: Fraction
    rgb: np.ndarray           # (H, W, 3) uint8; released (None) once converted for the encoder
    t_capture: float          # perf_counter when decoded/captured: latency starts here
    duration: int | None = None

    @property
    def seconds(self) -> float:
        return float(self.pts * self.time_base)

    @property
    def nbytes(self) -> int:
        return self.rgb.nbytes


class CorruptInput(StyleEngineError):
    """Decoding stopped early (decode error or truncated file); the frames before it were processed."""

    def __init__(self, message: str, frames_ok: int):
        super().__init__(message)
        self.frames_ok = frames_ok


def input_matrix(colorspace: int | None, width: int, height: int) -> int:
    """The YUV matrix to read with: the tag when it is one we know, else BT.709 for HD and BT.601 for SD."""
    if colorspace in (1, 5, 6):
        return colorspace
    return COLORSPACE_BT709 if is_hd(width, height) else COLORSPACE_BT601


class VideoReader:
    """Opens the input and yields SourceFrames; `info` is ready after construction, `rotation` after 1st frame."""

    def __init__(self, path: str, *, threads: int = 0, container=None, info: MediaInfo | None = None):
        self.path = str(path)
        self.container = container if container is not None else open_input(self.path)
        try:
            self.stream = video_stream(self.container, self.path)
            self.info = info or describe(self.container, self.stream, self.path)
        except BaseException:
            self.container.close()
            raise
        self.stream.thread_type = "AUTO"
        self.stream.codec_context.thread_count = threads
        self.matrix = input_matrix(self.info.colorspace, self.info.width, self.info.height)
        self.width, self.height = self.info.width, self.info.height
        self.scaled = False  # set_size() called: every frame is resized to (width, height)
        self.rotation = 0
        self.frames_read = 0
        self.timestamp_fixes = 0
        self.error: CorruptInput | None = None

    def set_size(self, width: int, height: int) -> None:
        if (width, height) != (self.width, self.height):
            self.width, self.height, self.scaled = width, height, True

    def _to_rgb(self, frame) -> np.ndarray:
        tagged = int(frame.colorspace) in (1, 5, 6, 9)  # 9 = BT.2020 NCL (swscale knows it; no gamut mapping)
        kwargs = {} if tagged else {"src_colorspace": self.matrix}
        if frame.width != self.width or frame.height != self.height:
            # Mid-stream resolution change: keep one output size (the first frame's) rather than fail.
            kwargs.update(width=self.width, height=self.height)
        return frame.to_ndarray(format="rgb24", **kwargs)

    def frames(self) -> Iterator[SourceFrame]:
        import av

        tb = self.info.time_base
        step = _nominal_step(self.info)
        last_pts: int | None = None
        try:
            for packet in self.container.demux(self.stream):
                for frame in packet.decode():
                    if self.frames_read == 0:
                        self.rotation = int(frame.rotation or 0)
                        if not self.scaled:  # the header may lie about the size: trust the first frame
                            self.width, self.height = frame.width, frame.height
                    pts = frame.pts
                    if pts is None or (last_pts is not None and pts <= last_pts):
                        # Missing or non-increasing pts (broken muxers): the encoder needs strictly increasing
                        # ones; nudge minimally and count it in the stats.
                        pts = (last_pts + step) if last_pts is not None else 0
                        self.timestamp_fixes += 1
                    last_pts = pts
                    rgb = self._to_rgb(frame)
                    yield SourceFrame(self.frames_read, pts, tb, rgb, time.perf_counter(), frame.duration or None)
                    self.frames_read += 1
        except av.FFmpegError as exc:  # demux/decode failure mid-way: stop, report, keep what was done
            msg = getattr(exc, "strerror", None) or str(exc)
            self.error = CorruptInput(f"decode error after {self.frames_read} frames ({msg})", self.frames_read)
            return
        self._check_complete(last_pts)

    def _check_complete(self, last_pts: int | None) -> None:
        """Truncated files often decode 'fine' and just end early: compare with what the header promised."""
        info = self.info
        n = self.frames_read
        if n == 0:
            self.error = CorruptInput(f"no video frame could be decoded from {self.path}", 0)
            return
        if info.frames and n < info.frames and n < info.frames * 0.98 - 1:
            self.error = CorruptInput(f"input ended after {n} of {info.frames} frames (truncated file?)", n)
            return
        if info.video_duration and last_pts is not None:
            end = float(last_pts * info.time_base) - (info.start or 0.0)
            frame_s = float(1 / info.rate) if info.rate else 0.04
            if end + 4 * frame_s + 0.25 < info.video_duration:
                self.error = CorruptInput(
                    f"input ended at {end:.2f}s of {info.video_duration:.2f}s after {n} frames (truncated file?)", n)

    def close(self) -> None:
        self.container.close()


def _nominal_step(info: MediaInfo) -> int:
    if info.rate:
        step = int(round(1 / (info.rate * info.time_base)))
        return max(1, step)
    return 1
