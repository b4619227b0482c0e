"""Open a media input and describe its video stream: size, timing, colour, rotation, audio; clear errors.

Frame counts are often unknown (MKV, streams): `frames` is None then, and progress uses `duration` instead.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from styleengine.core.errors import StyleEngineError

# Heights from which video is "HD" and uses BT.709 when the input does not say otherwise (FFmpeg and players agree).
HD_MIN_HEIGHT = 720
HD_MIN_WIDTH = 1280


def is_hd(width: int, height: int) -> bool:
    return height >= HD_MIN_HEIGHT or width >= HD_MIN_WIDTH


@dataclass
class AudioInfo:
    index: int
    codec: str
    sample_rate: int | None
    channels: int | None


@dataclass
class MediaInfo:
    path: str
    container: str
    codec: str
    width: int
    height: int
    pix_fmt: str | None
    time_base: Fraction
    rate: Fraction | None          # nominal (average/guessed) frame rate; used for rate control and ETA only
    frames: int | None             # None when the container does not say
    start: float | None            # seconds
    duration: float | None         # seconds of the video stream (or the container): progress and ETA
    video_duration: float | None   # seconds the video stream itself declares; None if unknown
    rotation: int                  # degrees counter-clockwise (display matrix), filled from the first frame
    colorspace: int | None
    color_range: int | None
    color_primaries: int | None
    color_trc: int | None
    audio: list[AudioInfo] = field(default_factory=list)

    @property
    def hd(self) -> bool:
        return is_hd(self.width, self.height)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["time_base"] = str(self.time_base)
        d["rate"] = str(self.rate) if self.rate else None
        return d


def open_input(path: str | os.PathLike, *, format: str | None = None, options: dict | None = None,
               timeout: float | tuple[float, float] | None = None):
    """av.open for reading, with our one-line errors for the common failures."""
    import av

    spath = str(path)
    is_url = "://" in spath
    if not is_url and format is None:
        p = Path(spath)
        if not p.exists():
            raise StyleEngineError(f"input not found: {spath}")
        if p.is_dir():
            raise StyleEngineError(f"input is a folder, not a video: {spath}")
    try:
        return av.open(spath, "r", format=format, options=options or {}, timeout=timeout)
    except av.error.FileNotFoundError:
        raise StyleEngineError(f"input not found: {spath}") from None
    except (av.error.InvalidDataError, av.error.EOFError):
        raise StyleEngineError(f"not a video (FFmpeg cannot read it): {spath}") from None
    except av.FFmpegError as exc:
        raise StyleEngineError(f"cannot open {spath}: {_ffmsg(exc)}") from None
    except OSError as exc:
        raise StyleEngineError(f"cannot open {spath}: {exc.strerror or exc}") from None


def _ffmsg(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]


def video_stream(container, path: str):
    import av

    streams = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not streams:
        raise StyleEngineError(f"no video stream in {path}")
    stream = streams[0]
    cc = stream.codec_context
    if cc is None or not cc.codec:
        raise StyleEngineError(f"unsupported video codec in {path}")
    return stream


def describe(container, stream, path: str) -> MediaInfo:
    cc = stream.codec_context
    tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1000)
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    rate = Fraction(rate) if rate else None
    frames = int(stream.frames) if stream.frames and stream.frames > 0 else None
    start = float(stream.start_time * tb) if stream.start_time is not None else None
    # The video stream's own length (used to detect truncation); the container's only when nothing else plays.
    video_duration = float(stream.duration * tb) if stream.duration else _tag_duration(stream.metadata)
    container_duration = container.duration / 1_000_000 if container.duration else None  # AV_TIME_BASE units
    if video_duration is None and not container.streams.audio:
        video_duration = container_duration
    duration = video_duration or container_duration
    audio = []
    for a in container.streams.audio:
        ac = a.codec_context
        audio.append(AudioInfo(a.index, ac.name if ac is not None else "unknown", getattr(ac, "sample_rate", None),
                               getattr(ac, "channels", None)))
    return MediaInfo(
        path=path, container=container.format.name, codec=cc.name, width=cc.width, height=cc.height,
        pix_fmt=cc.pix_fmt, time_base=tb, rate=rate, frames=frames, start=start, duration=duration,
        video_duration=video_duration,
        rotation=0, colorspace=_enum_or_none(cc.colorspace), color_range=_enum_or_none(cc.color_range, 0),
        color_primaries=_enum_or_none(cc.color_primaries), color_trc=_enum_or_none(cc.color_trc), audio=audio,
    )


def _enum_or_none(v: Any, unspecified: int = 2) -> int | None:
    """FFmpeg colour enums as ints; None for UNSPECIFIED (2 for space/primaries/trc, 0 for range)."""
    try:
        v = int(v)
    except (TypeError, ValueError):
        return None
    return None if v == unspecified else v


def _tag_duration(metadata: dict) -> float | None:
    """Matroska writes a per-stream DURATION tag like '00:00:01.500000000'."""
    for key, value in (metadata or {}).items():
        if key.upper() == "DURATION":
            try:
                h, m, sec = str(value).split(":")
                return int(h) * 3600 + int(m) * 60 + float(sec)
            except ValueError:
                return None
    return None


def probe(path: str | os.PathLike) -> MediaInfo:
    """Describe `path`'s first video stream; StyleEngineError for missing files, non-videos, no video stream."""
    with open_input(path) as container:
        stream = video_stream(container, str(path))
        return describe(container, stream, str(path))
