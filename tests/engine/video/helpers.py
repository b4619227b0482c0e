"""Small synthetic videos made with PyAV, Backend-contract test doubles (no torch needed) and a Stylizer
around them."""

from __future__ import annotations

import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from styleengine.core.bundle import Bundle
from styleengine.engine.backend import Backend, ShapeLimits
from styleengine.engine.loaders import Loader
from styleengine.engine.stylizer import Stylizer


def frame_image(i: int, w: int, h: int) -> np.ndarray:
    """A frame whose mean red level encodes its index (survives lossy coding), plus a moving bar."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (i * 12) % 216 + 20
    img[..., 2] = 90
    img[:, : max(1, (i * 3) % w), 1] = 200
    return img


def make_video(path: Path, *, n: int = 12, w: int = 48, h: int = 36, durations_ms=(40,), audio: str | None = "aac",
               rotation: int = 0, colorspace: str | None = None, fmt: str | None = None,
               start_ms: int = 0, audio_rate: int | None = None, audio_layout: str = "mono") -> list[float]:
    """Write an H.264 video (+ optional audio track covering it); returns the frame times in seconds.

    durations_ms cycles over the frames: (40,) is 25 fps CFR, (20, 40, 80) is VFR. audio_rate defaults to
    8 kHz for PCM and 48 kHz otherwise.
    """
    import av

    tb = Fraction(1, 1000)
    out = av.open(str(path), "w", format=fmt)
    v = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "crf": "20"})
    v.width, v.height, v.pix_fmt = w + (w % 2), h + (h % 2), "yuv420p"
    if (w % 2) or (h % 2):
        v.width, v.height, v.pix_fmt = w, h, "yuv444p"  # odd sizes need a non-subsampled format
    v.time_base = tb
    v.codec_context.time_base = tb
    if colorspace:
        cs = {"bt709": 1, "smpte170m": 6}[colorspace]
        cc = v.codec_context
        cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = cs, cs, cs, 1
    if rotation:
        v.set_display_rotation(rotation)
    a = None
    if audio:
        a = out.add_stream(audio, rate=audio_rate or (8000 if audio.startswith("pcm_") else 48000))
        a.layout = audio_layout
    times = []
    pts = start_ms
    for i in range(n):
        img = frame_image(i, v.width, v.height)
        frame = av.VideoFrame.from_ndarray(img, format="rgb24")
        if colorspace or v.pix_fmt == "yuv420p":
            # untagged: encode the way players will read it (BT.709 for HD, BT.601 for SD)
            hd = v.height >= 720 or v.width >= 1280
            cs = {"bt709": 1, "smpte170m": 6}.get(colorspace or "", 1 if hd else 6)
            frame = frame.reformat(format=v.pix_fmt, dst_colorspace=cs, dst_color_range=1)
        else:
            frame = frame.reformat(format=v.pix_fmt)
        frame.pts, frame.time_base = pts, tb
        times.append(pts / 1000)
        for p in v.encode(frame):
            out.mux(p)
        pts += durations_ms[i % len(durations_ms)]
    for p in v.encode(None):
        out.mux(p)
    if a is not None:
        cc = a.codec_context
        rate = cc.sample_rate
        total = int(pts / 1000 * rate)
        step = cc.frame_size or 1024
        fmt_name = cc.format.name
        t = 0
        while t < total:
            m = min(step, total - t)
            x = 0.3 * np.sin(np.arange(t, t + m) * 2 * np.pi * 440 / rate)
            if fmt_name in ("s16", "s16p"):
                x = (x * 32767).astype(np.int16)
            elif fmt_name in ("u8", "u8p"):
                x = (x * 127 + 128).astype(np.uint8)
            else:
                x = x.astype(np.float32)
            channels = a.codec_context.layout.nb_channels
            # the same tone in every channel: one row per channel when planar, interleaved when packed
            arr = np.repeat(x[None], channels, 0) if fmt_name.endswith("p") else np.repeat(x, channels)[None]
            af = av.AudioFrame.from_ndarray(arr, format=fmt_name, layout=audio_layout)
            af.sample_rate, af.pts = rate, t
            for p in a.encode(af):
                out.mux(p)
            t += m
        for p in a.encode(None):
            out.mux(p)
    out.close()
    return times


def read_video(path: Path) -> dict:
    """Decoded frame times/arrays, stream facts, and the audio packets (time, bytes) of a file."""
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        cc = v.codec_context
        info = {"width": cc.width, "height": cc.height, "colorspace": int(cc.colorspace),
                "color_primaries": int(cc.color_primaries), "color_trc": int(cc.color_trc),
                "color_range": int(cc.color_range), "codec": cc.name, "nb_frames": v.frames,
                "audio_codecs": [a.codec_context.name for a in c.streams.audio]}
        frames, times, rotation = [], [], None
        for f in c.decode(v):
            if rotation is None:
                rotation = f.rotation
            times.append(float(f.pts * f.time_base))
            frames.append(f.to_ndarray(format="rgb24"))
        info.update(times=times, frames=frames, rotation=rotation)
    with av.open(str(path)) as c:
        packets = []
        for p in c.demux(audio=0) if c.streams.audio else []:
            if p.size:
                packets.append((round(float(p.pts * p.time_base), 6), bytes(p)))
        info["audio_packets"] = packets
    return info


class _NoModel(Loader):
    """The test doubles compute their output themselves: no model file to find."""

    description = "test double"

    def __call__(self) -> Path:
        return Path(".")


def fake_bundle(name: str = "fake") -> Bundle:
    return Bundle(Path(name), {"style": {"name": name}})


class InvertBackend(Backend):
    """255 - x: a cheap, exactly checkable 'style', behind the real Backend contract (the base class's guards
    run). Records the batch sizes and (N, H, W) shapes it saw. `max_batch` and `limits` declare the
    max_batch_size() and shape_limits() capabilities; `device` may be GPU-like ("cuda:0": nothing runs on it)."""

    name = "invert"
    devices = ("cpu", "cuda")
    precisions = {"cpu": ("fp32",), "cuda": ("fp32",)}

    def __init__(self, bundle: Bundle | None = None, *, delay: float = 0.0, fail_at: int | None = None,
                 device: str | None = None, max_batch: int | None = None, limits: ShapeLimits | None = None):
        super().__init__(bundle if bundle is not None else fake_bundle(self.name), device=device, model=_NoModel())
        self.delay, self.fail_at = delay, fail_at
        self.max_batch, self.limits = max_batch, limits
        self.batches: list[int] = []
        self.shapes: list[tuple[int, int, int]] = []
        self.seen = 0

    @classmethod
    def available(cls):
        return True, ""

    def max_batch_size(self) -> int | None:
        return self.max_batch

    def shape_limits(self) -> ShapeLimits:
        return self.limits if self.limits is not None else super().shape_limits()

    def _load(self) -> None:
        pass

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        if self.fail_at is not None and self.seen + len(batch) > self.fail_at:
            raise RuntimeError("simulated backend failure")
        self.seen += len(batch)
        self.batches.append(len(batch))
        self.shapes.append(tuple(batch.shape[:3]))
        if self.delay:
            time.sleep(self.delay * len(batch))
        return 255 - batch


class IdentityBackend(InvertBackend):
    name = "identity"

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return 255 - super()._infer(batch)


class TinyTorchBackend(Backend):
    """The real tiny network from tests/conftest.py, run with torch: proves the pipeline with a true model."""

    name = "tiny-torch"

    def __init__(self, bundle: Bundle | None = None, **kw):
        super().__init__(bundle if bundle is not None else fake_bundle(self.name), model=_NoModel(), **kw)
        self.net = None

    @classmethod
    def available(cls):
        return True, ""

    def _load(self) -> None:
        from tests.conftest import make_tiny_model

        self.net = make_tiny_model()

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            x = torch.from_numpy(batch).permute(0, 3, 1, 2).float()
            y = self.net(x).clamp(0, 255).round().to(torch.uint8)
        return y.permute(0, 2, 3, 1).contiguous().numpy()


def stylizer(backend: Backend, **options) -> Stylizer:
    """The real Stylizer (max size, batching, padding, strength) around a test backend."""
    return Stylizer.for_backend(backend, **options)
