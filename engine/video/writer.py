"""Encode + mux in one writer: video frames with their source timestamps, audio packets copied from the input.

Choices (documented for users):
- Encoder: `auto` picks by container: VP9 for .webm, GIF for .gif, Theora for .ogv, else H.264 (h264_nvenc when a
  one-frame probe encode succeeds; data-centre GPUs such as the H100 have no NVENC; else libx264). `--crf` /
  `--x264-preset` map to libx264's crf/preset and to NVENC's cq/preset. An extension no FFmpeg muxer knows is a
  one-line error before any work.
- Pixel format: the first of the encoder's own formats (PyAV `codec.video_formats`) we can produce, preferring
  4:2:0 YUV. GIF takes 8-bit palette frames: each frame gets its own 256-colour palette (PIL fast octree with
  Floyd-Steinberg dithering) where the encoder takes pal8, else FFmpeg's fixed rgb8 palette.
- Colour: RGB -> YUV with the input's matrix when tagged, else BT.709 for HD (>= 720 lines or >= 1280 wide) and
  BT.601 (SMPTE 170M) for SD; limited range; the stream is tagged (matrix, primaries, transfer, range).
- Odd sizes: 4:2:0 needs even width and height, so odd frames are padded by one pixel (the edge row/column is
  repeated). Nothing is cropped or rescaled; the output is at most 1 px wider/taller.
- Rotation: the input's display matrix is written to the output stream (frames stay unrotated, like the input).
- Audio: every audio stream is copied packet for packet when the output container accepts its codec; otherwise it
  is re-encoded to AAC (or the container's default audio codec, e.g. Opus for WebM) at a sample rate that encoder
  accepts (PyAV `codec.audio_rates`: 44.1 kHz becomes 48 kHz for Opus), and the result says so. A container
  without audio (GIF) drops it with a note. Subtitle streams are
  copied when the container accepts them (MKV takes SRT/ASS; MP4 does not) and otherwise dropped with a note.
- All muxing happens on the writer thread; audio is released only up to 0.5 s ahead of the video written so
  far, so the file is well interleaved and memory stays bounded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from styleengine.core.errors import StyleEngineError

from .probe import is_hd
from .reader import COLORSPACE_BT601, COLORSPACE_BT709

AUDIO_LEAD_S = 0.5
DEFAULT_CRF = 18
DEFAULT_PRESET = "veryfast"
NVENC_PRESETS = {  # x264 preset names -> NVENC p1 (fastest) .. p7 (best)
    "ultrafast": "p1", "superfast": "p1", "veryfast": "p2", "faster": "p3", "fast": "p4", "medium": "p4",
    "slow": "p5", "slower": "p6", "veryslow": "p7", "placebo": "p7",
}
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")


@functools.lru_cache(maxsize=None)
def encoder_works(name: str) -> tuple[bool, str]:
    """Encode one small frame with `name`: the only reliable test for NVENC (the wheel has it, the GPU may not)."""
    import av

    try:
        codec = av.codec.Codec(name, "w")
    except Exception:
        return False, f"{name} is not in this FFmpeg build"
    try:
        ctx = av.CodecContext.create(codec)
        ctx.width, ctx.height = 256, 144
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, 25)
        ctx.framerate = Fraction(25, 1)
        ctx.open()
        frame = av.VideoFrame.from_ndarray(np.zeros((144, 256, 3), np.uint8), format="rgb24").reformat(
            format="yuv420p")
        frame.pts = 0
        packets = list(ctx.encode(frame)) + list(ctx.encode(None))
        if not packets:
            return False, f"{name} produced no output"
        return True, ""
    except Exception as exc:  # any FFmpeg failure means "not usable here"
        return False, f"{name} probe failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


# --codec auto per output container: H.264 where the container holds it, VP9 for WebM, GIF for .gif.
CONTAINER_CODECS = {".webm": ("libvpx-vp9",), ".gif": ("gif",), ".ogv": ("libtheora",)}
# Sample rates an audio encoder accepts where it is picky and PyAV does not say (Opus: 48 kHz and its divisors).
AUDIO_RATES = {"libopus": (48000, 24000, 16000, 12000, 8000), "opus": (48000, 24000, 16000, 12000, 8000)}
# Pixel formats in order of preference when the encoder takes several (4:2:0 first: what players expect).
PREFERRED_PIX_FMTS = ("yuv420p", "pal8")


@functools.lru_cache(maxsize=None)
def muxer_extensions() -> frozenset[str]:
    """File extensions (".mp4") some FFmpeg muxer of this build claims: what `av.open(path, "w")` can guess."""
    import av

    exts: set[str] = set()
    for name in av.formats_available:
        try:
            fmt = av.ContainerFormat(name, "w")
        except Exception:  # demuxer-only names
            continue
        exts.update("." + e.strip().lower() for e in (fmt.extensions or ()) if e.strip())
    return frozenset(exts)


def check_container(output: str | Path) -> None:
    """One line, before any work, for an output extension no muxer knows (FFmpeg would only fail at open)."""
    suffix = Path(output).suffix.lower()
    known = muxer_extensions()
    if known and suffix not in known:
        raise StyleEngineError(f"cannot write {output}: no video container for the extension {suffix or '(none)'}; "
                               f"use .mp4, .mkv, .mov, .webm or .gif")


def audio_rate(codec: str, rate: int) -> int:
    """`rate`, or the nearest sample rate encoder `codec` accepts (PyAV's audio_rates, else AUDIO_RATES)."""
    allowed: tuple[int, ...] | None = None
    try:
        import av

        allowed = tuple(av.codec.Codec(codec, "w").audio_rates or ()) or None
    except Exception:
        allowed = None
    allowed = allowed or AUDIO_RATES.get(codec)
    if not allowed or rate in allowed:
        return rate
    return min(allowed, key=lambda r: (abs(r - rate), -r))  # e.g. 44.1 kHz -> 48 kHz for Opus


@functools.lru_cache(maxsize=None)
def _can_produce(pix_fmt: str) -> bool:
    """Can we turn rgb24 frames into `pix_fmt` (our own pal8 quantizer, or FFmpeg's swscale)?"""
    if pix_fmt == "pal8":
        return True
    import av

    try:
        av.VideoFrame.from_ndarray(np.zeros((2, 2, 3), np.uint8), format="rgb24").reformat(format=pix_fmt)
        return True
    except Exception:
        return False


def pick_pix_fmt(codec: str) -> str:
    """The pixel format to encode `codec` with, from the formats PyAV says the encoder takes."""
    import av

    formats = [f.name for f in (av.codec.Codec(codec, "w").video_formats or [])]
    if not formats:
        return "yuv420p"
    for name in PREFERRED_PIX_FMTS:
        if name in formats and _can_produce(name):
            return name
    for name in formats:
        if _can_produce(name):
            return name
    raise StyleEngineError(f"encoder {codec} takes no pixel format we can produce ({', '.join(formats)}); "
                           f"pick another --codec")


def palette_frame(rgb: np.ndarray):
    """rgb24 array -> pal8 VideoFrame with its own 256-colour palette (fast octree, Floyd-Steinberg dither)."""
    import av
    from PIL import Image

    img = Image.fromarray(rgb, "RGB").quantize(256, method=Image.Quantize.FASTOCTREE,
                                               dither=Image.Dither.FLOYDSTEINBERG)
    index = np.asarray(img, dtype=np.uint8)
    rgb_pal = np.asarray(img.getpalette() or [], np.uint8)[: 256 * 3].reshape(-1, 3)
    argb = np.zeros((256, 4), np.uint8)
    argb[:, 0] = 255  # opaque
    argb[: len(rgb_pal), 1:] = rgb_pal
    return av.VideoFrame.from_ndarray((np.ascontiguousarray(index), argb), format="pal8")


def choose_codec(codec: str | None, output: str | Path | None = None, *, container: str | None = None) -> str:
    """'auto' -> an encoder the output container can hold (H.264: h264_nvenc if it really encodes here, else
    libx264; .webm: VP9; .gif: GIF); an explicit name must be a video encoder. `container`: an explicit FFmpeg
    format name (then the extension need not be one FFmpeg knows)."""
    import av

    if output is not None and container is None:
        check_container(output)
    if not codec or codec == "auto":
        suffix = Path(output).suffix.lower() if output is not None else ""
        if suffix in CONTAINER_CODECS:
            for name in CONTAINER_CODECS[suffix]:
                try:
                    av.codec.Codec(name, "w")
                    return name
                except Exception:
                    continue
            raise StyleEngineError(f"this FFmpeg build has no encoder for {suffix} output; use .mp4 or .mkv")
        ok, _ = encoder_works("h264_nvenc")
        return "h264_nvenc" if ok else "libx264"
    try:
        c = av.codec.Codec(codec, "w")
    except Exception:
        raise StyleEngineError(f"unsupported codec {codec!r}: not a video encoder in this FFmpeg build "
                               "(try libx264, libx265, libvpx-vp9, h264_nvenc, hevc_nvenc, mpeg4)") from None
    if c.type != "video":
        raise StyleEngineError(f"unsupported codec {codec!r}: it is a {c.type} encoder, not video")
    if "nvenc" in codec:
        ok, why = encoder_works(codec)
        if not ok:
            raise StyleEngineError(f"codec {codec} is not usable here: {why}")
    return codec


def encoder_options(codec: str, crf: int | None, preset: str | None) -> dict[str, str]:
    """FFmpeg options for --crf/--x264-preset: libx264/libx265 crf+preset, NVENC constant-quality VBR (cq) + p1..p7."""
    crf = DEFAULT_CRF if crf is None else int(crf)
    preset = preset or DEFAULT_PRESET
    if codec in ("libx264", "libx264rgb", "libx265"):
        if preset not in X264_PRESETS:
            raise StyleEngineError(f"unknown --x264-preset {preset!r}; choose one of: {', '.join(X264_PRESETS)}")
        if not 0 <= crf <= 51:
            raise StyleEngineError(f"--crf must be 0..51, got {crf}")
        return {"crf": str(crf), "preset": preset}
    if "nvenc" in codec:
        if not 0 <= crf <= 51:
            raise StyleEngineError(f"--crf must be 0..51, got {crf}")
        return {"preset": NVENC_PRESETS.get(preset, preset), "rc": "vbr", "cq": str(crf), "b": "0"}
    return {}  # other encoders: FFmpeg defaults


def check_encoder_options(codec: str, crf: int | None, preset: str | None) -> None:
    encoder_options(codec, crf, preset)


def output_colour(in_colorspace: int | None, in_primaries: int | None, in_trc: int | None,
                  width: int, height: int) -> dict[str, int]:
    """Matrix/primaries/transfer/range for the output, as FFmpeg enum ints (1 = BT.709, 6 = SMPTE 170M)."""
    if in_colorspace in (5, 6):
        cs = in_colorspace
    elif in_colorspace == 1:
        cs = COLORSPACE_BT709
    else:
        cs = COLORSPACE_BT709 if is_hd(width, height) else COLORSPACE_BT601
    default = 1 if cs == COLORSPACE_BT709 else 6
    primaries = in_primaries if in_primaries in (1, 5, 6) else default
    trc = in_trc if in_trc in (1, 6) else default
    return {"colorspace": cs, "color_primaries": primaries, "color_trc": trc, "color_range": 1}  # 1 = MPEG


def even_pad(rgb: np.ndarray, even_w: bool, even_h: bool) -> np.ndarray:
    h, w = rgb.shape[:2]
    ph = h % 2 if even_h else 0
    pw = w % 2 if even_w else 0
    if not ph and not pw:
        return rgb
    return np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="edge")


@dataclass
class WriterConfig:
    codec: str = "auto"
    crf: int | None = None
    preset: str | None = None
    time_base: Fraction = Fraction(1, 90000)
    rate: Fraction | None = None
    rotation: int = 0
    colorspace: int | None = None
    color_primaries: int | None = None
    color_trc: int | None = None
    audio_source: str | None = None          # path to copy audio/subtitle streams from (None: video only)
    format: str | None = None                # container format; None = from the output file's extension
    options: dict[str, str] = field(default_factory=dict)  # extra encoder options


class VideoWriter:
    """Owns the output container. Not thread-safe: one thread calls write()/close()."""

    def __init__(self, path: str, width: int, height: int, config: WriterConfig, stats=None):
        import av

        self.path = str(path)
        self.cfg = config
        self.stats = stats
        self.codec = choose_codec(config.codec, self.path, container=config.format)  # "auto": by the container
        try:
            self.out = av.open(self.path, "w", format=config.format)
        except (av.FFmpegError, ValueError) as exc:
            raise StyleEngineError(f"cannot write {self.path}: {str(exc).splitlines()[0]} "
                                   "(unknown extension? use .mp4, .mkv or .mov)") from None
        try:
            self._setup_video(width, height)
            self.audio_notes: list[str] = []
            self._audio_in = None
            self._audio_map: dict[int, Any] = {}
            self._audio_transcoders: dict[int, "_AudioTranscoder"] = {}
            self._pending = None
            self._audio_iter = None
            if config.audio_source:
                self._setup_audio(config.audio_source)
        except BaseException:
            self._abandon()
            raise
        self.frames = 0
        self.last_time = None       # seconds of the last frame sent to the encoder
        self.last_end = None        # ... plus its duration: where the video ends
        self.audio_packets = 0

    # ---------------------------------------------------------------- video
    def _setup_video(self, width: int, height: int) -> None:
        cfg = self.cfg
        self.pix_fmt = pick_pix_fmt(self.codec)
        subsampled = self.pix_fmt.startswith(("yuv420", "yuvj420", "nv12", "p010"))
        self.even_w = subsampled or self.pix_fmt.startswith(("yuv422", "yuvj422"))
        self.even_h = subsampled
        self.width = width + (width % 2 if self.even_w else 0)
        self.height = height + (height % 2 if self.even_h else 0)
        self.padded = (self.width, self.height) != (width, height)
        rate = cfg.rate if cfg.rate and cfg.rate > 0 else Fraction(25)
        options = self._encoder_options()
        try:
            stream = self.out.add_stream(self.codec, rate=rate, options=options)
        except ValueError as exc:
            raise StyleEngineError(f"the {self.out.format.name} container cannot hold {self.codec} video "
                                   f"({exc}); pick another --codec or extension") from None
        stream.width, stream.height = self.width, self.height
        stream.pix_fmt = self.pix_fmt
        stream.time_base = cfg.time_base
        cc = stream.codec_context
        cc.time_base = cfg.time_base
        cc.framerate = rate
        self.colour = output_colour(cfg.colorspace, cfg.color_primaries, cfg.color_trc, width, height)
        if self.pix_fmt.startswith(("yuv", "nv12", "p010")):
            for key, value in self.colour.items():
                setattr(cc, key, value)
        if cfg.rotation:
            stream.set_display_rotation(cfg.rotation)
        self.video = stream
        self._yuv = self.pix_fmt.startswith(("yuv", "nv12", "p010"))
        self._palette = self.pix_fmt == "pal8"

    def _encoder_options(self) -> dict[str, str]:
        opts = encoder_options(self.codec, self.cfg.crf, self.cfg.preset)
        opts.update(self.cfg.options)
        return opts

    def prepare(self, rgb: np.ndarray):
        """RGB array -> the encoder's VideoFrame (even padding, BT.709/601 YUV with tags).

        Touches no writer state, so it may run on another thread than write_frame() (the pipeline's convert
        stage overlaps it with encoding).
        """
        import av

        rgb = even_pad(rgb, self.even_w, self.even_h)
        if self._palette:
            return palette_frame(np.ascontiguousarray(rgb))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        if self._yuv:
            frame = frame.reformat(format=self.pix_fmt, dst_colorspace=self.colour["colorspace"],
                                   dst_color_range=self.colour["color_range"],
                                   dst_color_primaries=self.colour["color_primaries"],
                                   dst_color_trc=self.colour["color_trc"])
        return frame

    def write(self, rgb: np.ndarray, pts: int, time_base: Fraction, duration: int | None = None) -> None:
        self.write_frame(self.prepare(rgb), pts, time_base, duration)

    def write_frame(self, frame, pts: int, time_base: Fraction, duration: int | None = None) -> None:
        """Encode a prepare()d frame at the source timestamp, mux its packets, then the audio due by now."""
        import av

        frame.pts = pts
        frame.time_base = time_base
        try:
            packets = self.video.encode(frame)
        except av.FFmpegError as exc:
            raise StyleEngineError(f"encoder {self.codec} failed at frame {self.frames}: {exc}") from None
        for p in packets:
            self.out.mux(p)
        self.frames += 1
        t = float(pts * time_base)
        self.last_time = t
        self.last_end = t + (float(duration * time_base) if duration else 0.0)
        self._pump_audio(t + AUDIO_LEAD_S)

    # ---------------------------------------------------------------- audio
    def _setup_audio(self, source: str) -> None:
        import av

        try:
            self._audio_in = av.open(source, "r")
        except av.FFmpegError:
            return
        streams = list(self._audio_in.streams.audio) + list(self._audio_in.streams.subtitles)
        if not streams:
            self._audio_in.close()
            self._audio_in = None
            return
        supported = self.out.supported_codecs
        for s in streams:
            name = s.codec_context.name if s.codec_context is not None else None
            out_s = None
            if name and name in supported:
                try:
                    out_s = self.out.add_stream_from_template(s)
                    self.audio_notes.append(f"{s.type} #{s.index} {name}: copied")
                except (ValueError, av.FFmpegError):
                    out_s = None
            if out_s is None and s.type == "subtitle":
                self.audio_notes.append(f"subtitle #{s.index} {name}: dropped ({self.out.format.name} cannot hold "
                                        f"{name}; write .mkv to keep it)")
                continue
            if out_s is None:
                target = "aac" if "aac" in supported else self.out.default_audio_codec
                if not target or target == "none" or s.codec_context is None:
                    why = (f"{self.out.format.name} holds no audio" if not target or target == "none"
                           else f"{name} cannot be decoded")
                    self.audio_notes.append(f"audio #{s.index} {name}: dropped ({why})")
                    continue
                tc = _AudioTranscoder(self.out, s, target)
                self._audio_transcoders[s.index] = tc
                out_s = tc.out_stream
                self.audio_notes.append(f"audio #{s.index} {name}: re-encoded to {target} "
                                        f"({self.out.format.name} cannot hold {name})")
            self._audio_map[s.index] = out_s
        if not self._audio_map:
            self._audio_in.close()
            self._audio_in = None
            return
        self._audio_iter = self._audio_in.demux([s for s in streams if s.index in self._audio_map])

    def _next_audio(self):
        import av

        if self._pending is not None:
            return self._pending
        while self._audio_iter is not None:
            try:
                pkt = next(self._audio_iter)
            except StopIteration:
                self._audio_iter = None
                return None
            except av.FFmpegError:  # a damaged audio tail: keep what was copied
                self._audio_iter = None
                return None
            if pkt.size == 0:  # demux flush packet; real keyframes may lack a DTS, so test size
                continue
            self._pending = pkt
            return pkt
        return None

    def _pump_audio(self, until: float | None) -> None:
        """Mux input audio packets whose time is <= `until` seconds (None: all remaining)."""
        while True:
            pkt = self._next_audio()
            if pkt is None:
                return
            ts = pkt.pts if pkt.pts is not None else pkt.dts
            t = float(ts * pkt.time_base) if ts is not None else None
            if until is not None and t is not None and t > until:
                return
            self._pending = None
            idx = pkt.stream.index
            if idx in self._audio_transcoders:
                self._audio_transcoders[idx].feed(pkt)
            else:
                pkt.stream = self._audio_map[idx]
                self.out.mux(pkt)
            self.audio_packets += 1

    # ---------------------------------------------------------------- finish
    def close(self, *, complete: bool = True) -> None:
        """Flush the encoder, mux the remaining audio (all of it, or up to the video's end when partial), close."""
        try:
            for p in self.video.encode(None):
                self.out.mux(p)
            if self._audio_map:
                if complete:
                    self._pump_audio(None)
                elif self.last_end is not None:
                    self._pump_audio(self.last_end)
                for tc in self._audio_transcoders.values():
                    tc.flush()
        finally:
            self._close_containers()

    def _abandon(self) -> None:
        try:
            self._close_containers()
        except Exception:
            pass

    def _close_containers(self) -> None:
        try:
            self.out.close()
        finally:
            if getattr(self, "_audio_in", None) is not None:
                self._audio_in.close()
                self._audio_in = None

    def describe(self) -> dict[str, Any]:
        names = {1: "bt709", 5: "bt470bg", 6: "smpte170m"}
        return {"codec": self.codec, "pix_fmt": self.pix_fmt, "width": self.width, "height": self.height,
                "padded_to_even": self.padded, "colorspace": names.get(self.colour["colorspace"]),
                "color_range": "tv", "rotation": self.cfg.rotation, "audio": self.audio_notes,
                "options": self._encoder_options()}


class _AudioTranscoder:
    """Fallback when the container cannot hold the input audio codec: decode, resample, encode."""

    def __init__(self, out, in_stream, codec: str):
        import av

        self.out = out
        cc = in_stream.codec_context
        rate = audio_rate(codec, cc.sample_rate or 48000)
        self.out_stream = out.add_stream(codec, rate=rate)
        enc = self.out_stream.codec_context
        # Inputs may carry an unordered layout ("1 channels") that encoders refuse: use the standard one.
        n_ch = getattr(cc, "channels", 0) or 2
        try:
            enc.layout = av.AudioLayout(n_ch).name if n_ch <= 8 else "stereo"
        except Exception:
            enc.layout = "stereo"
        channels = max(1, getattr(enc, "channels", 0) or 2)
        # 192 kb/s for stereo 48 kHz; never above what AAC allows at low sample rates (6 bits/sample/channel).
        enc.bit_rate = int(min(192_000, 96_000 * channels, 6 * rate * channels))
        fmt = None
        if self.out_stream.codec_context.codec.audio_formats:
            fmt = self.out_stream.codec_context.codec.audio_formats[0].name
        self.fmt = fmt or "fltp"
        enc.format = self.fmt
        self.decoder = av.CodecContext.create(cc.name, "r")
        self.decoder.extradata = cc.extradata
        self.decoder.sample_rate = cc.sample_rate
        try:
            self.decoder.layout = cc.layout
        except Exception:
            pass
        self.decoder.format = cc.format
        self.resampler = None
        self.rate = rate

    def _encode(self, frames) -> None:
        import av

        if self.resampler is None:
            self.resampler = av.AudioResampler(format=self.fmt, layout=self.out_stream.codec_context.layout,
                                               rate=self.rate, frame_size=self.out_stream.codec_context.frame_size
                                               or None)
        for f in frames:
            for rf in self.resampler.resample(f):
                for p in self.out_stream.encode(rf):
                    self.out.mux(p)

    def feed(self, pkt) -> None:
        frames = []
        for f in self.decoder.decode(pkt):
            frames.append(f)
        self._encode(frames)

    def flush(self) -> None:
        frames = list(self.decoder.decode(None))
        self._encode(frames)
        if self.resampler is not None:
            for rf in self.resampler.resample(None):
                for p in self.out_stream.encode(rf):
                    self.out.mux(p)
        for p in self.out_stream.encode(None):
            self.out.mux(p)

