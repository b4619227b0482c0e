"""The Python API, and the one path from frames to a backend for images, video and live sources.

    from styleengine import Stylizer
    with Stylizer("starry_night") as st:              # built-in name, bundle folder, .pt checkpoint or a blend
        out = st(Image.open("photo.jpg"))             # PIL in -> PIL out (alpha and ICC profile kept)
        arr = st(np.asarray(...))                     # (H, W, 3) uint8 in -> (H, W, 3) uint8 out
        frames = st.stylize_batch(list_of_frames)     # (N, H, W, 3) or a list of same-size frames
        img = st("photo.jpg")                         # a path in -> PIL image out

Everything between a frame and the backend lives here once: the --max-size policy (target_size), padding of
sizes below the backend's minimum and refusal above its maximum (naming --max-size), memory checks on the CPU,
batching within the backend's maximum batch, --strength and --preserve-color, and per-call timings. The video
pipeline and live mode call stylize_batch() like any other caller.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from styleengine.core.errors import StyleEngineError
from styleengine.core.shapes import check_max_size, fit_size

from . import postprocess
from .backend import Backend
from .blend import blend_outputs, parse_style_spec
from .images import decode, load_image, to_pil
from .select import open_backend
from .styles import resolve_style

DEFAULT_MAX_BATCH = 8
GPU_STREAM_BATCH = 4  # frames per call when streaming on a GPU (fewer launches); CPUs gain nothing from batches
# Peak CPU memory of one forward pass, in full-resolution first-layer activations (FP32): padded input, conv
# output and normalized copy alive together, plus allocator slack. Used to refuse images that would swap.
ACTIVATION_COPIES = 4


def available_memory() -> int | None:
    """MemAvailable in bytes (Linux), else None (no check)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class Stylizer:
    def __init__(self, style: Any, backend: str = "auto", *, device: str | None = None, precision: str | None = None,
                 max_size: int | None = None, strength: float = 1.0, preserve_color: bool = False,
                 max_batch: int = DEFAULT_MAX_BATCH, backend_options: dict[str, Any] | None = None):
        postprocess.check_strength(strength)  # cheap checks before any model loads
        check_max_size(max_size)
        bundle = resolve_style(style)
        self._configure(open_backend(bundle, backend, device=device, precision=precision, options=backend_options),
                        bundle, max_size, strength, preserve_color, max_batch)

    @classmethod
    def for_backend(cls, backend: Backend, bundle: Any = None, *, max_size: int | None = None,
                    strength: float = 1.0, preserve_color: bool = False,
                    max_batch: int = DEFAULT_MAX_BATCH) -> "Stylizer":
        """A Stylizer around a Backend the caller already holds (no style resolution, no backend selection);
        `bundle` defaults to backend.bundle. Closing the Stylizer closes the backend."""
        self = cls.__new__(cls)
        self._configure(backend, bundle if bundle is not None else backend.bundle, max_size, strength,
                        preserve_color, max_batch)
        return self

    def _configure(self, backend: Backend, bundle: Any, max_size: int | None, strength: float,
                   preserve_color: bool, max_batch: int) -> None:
        self.strength = postprocess.check_strength(strength)
        self.max_size = check_max_size(max_size)
        self.preserve_color = bool(preserve_color)
        self.max_batch = max(1, int(max_batch))
        self.bundle = bundle
        self.backend: Backend | None = backend
        self.last_timings: dict[str, float] | None = None

    # ------------------------------------------------------------------ info
    @property
    def backend_name(self) -> str:
        """The backend in use ("auto -> openvino" once auto has chosen)."""
        return str(self._be().describe().get("backend") or self._be().name)

    def describe(self) -> dict[str, Any]:
        d = self._be().describe()
        d["style"] = self.bundle.style_name
        d["bundle"] = str(self.bundle.path)
        return d

    def _be(self) -> Backend:
        if self.backend is None:
            raise StyleEngineError("Stylizer is closed")
        return self.backend

    @property
    def on_cpu(self) -> bool:
        return str(self._be().device or "cpu") == "cpu"

    def target_size(self, width: int, height: int) -> tuple[int, int]:
        """(W, H) a frame of this size is stylized at (--max-size); decoders scale to it before stylize_batch."""
        return fit_size(width, height, self.max_size)

    @property
    def batch_size(self) -> int:
        """Frames per call for streaming: 1 on a CPU, a few on a GPU, never above what the backend takes."""
        want = 1 if self.on_cpu else min(GPU_STREAM_BATCH, self.max_batch)
        limit = self._be().max_batch_size()
        return max(1, min(want, limit) if limit else want)

    def prepare(self, width: int, height: int, batch: int | None = None, sample: np.ndarray | None = None) -> None:
        """Warm the backend up for frames of this size (CUDA graphs, TensorRT contexts) before timed work; with a
        `sample` frame ((H, W, 3) uint8, e.g. the first frame of a video) also run it once, so first-use work
        (the auto backend's measured choice, lazy kernel set-up) happens here rather than in the timed loop."""
        w, h = self.target_size(width, height)
        lim = self._be().shape_limits()
        h, w = max(h, lim.min_height), max(w, lim.min_width)
        n = min(batch or self.batch_size, self.max_batch, self._be().max_batch_size() or self.max_batch)
        self._be().prepare([(k, h, w, 3) for k in sorted({1, n})])
        if sample is not None:
            self.stylize_batch(check_frame(sample)[None])

    # ------------------------------------------------------------------ the one path to the backend
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> stylized, padding small frames and refusing oversize ones clearly."""
        be = self._be()
        n, h, w = batch.shape[:3]
        if h == 0 or w == 0:
            raise StyleEngineError(f"image has zero size ({w}x{h})")
        lim = be.shape_limits()
        too_large = lim.too_large(h, w)
        if too_large:
            raise StyleEngineError(f"image {w}x{h} is larger than the {be.name} backend handles ({too_large}); "
                                   f"use --max-size to downscale it")
        step = min(self.max_batch, be.max_batch_size() or self.max_batch)
        if self.on_cpu:
            widths = (self.bundle.manifest.get("arch") or {}).get("widths") or [32]
            need = min(n, step) * h * w * int(widths[0]) * 4 * ACTIVATION_COPIES
            avail = available_memory()
            if avail and need > avail:
                raise StyleEngineError(f"image {w}x{h} needs about {need / 2**30:.1f} GiB of memory for the network, "
                                       f"{avail / 2**30:.1f} GiB are available; use --max-size to downscale it")
        ph, pw = max(0, lim.min_height - h), max(0, lim.min_width - w)
        if ph or pw:
            # Edge-pad tiny images up to the minimum the network's reflection pads allow, crop back after.
            batch = np.pad(batch, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
        t0 = time.perf_counter()
        try:
            outs = [be.infer(np.ascontiguousarray(batch[i:i + step])) for i in range(0, n, step)]
        except MemoryError:
            raise StyleEngineError(f"out of memory stylizing {w}x{h}; use --max-size to downscale") from None
        except Exception as exc:  # CUDA OOM from torch/ORT/TensorRT arrives as their own RuntimeError types
            if "out of memory" not in str(exc).lower() and "OutOfMemory" not in type(exc).__name__:
                raise
            raise StyleEngineError(f"GPU out of memory stylizing {w}x{h}; use --max-size to downscale") from None
        self.last_timings = {"wall_ms": (time.perf_counter() - t0) * 1e3, "frames": n,
                             **(be.last_timings() or {})}
        out = outs[0] if len(outs) == 1 else np.concatenate(outs)
        return out[:, :h, :w] if (ph or pw) else out

    def _finish(self, original: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        return postprocess.finish(original, stylized, strength=self.strength, preserve_colors=self.preserve_color)

    def stylize_batch(self, frames: "np.ndarray | Iterable[np.ndarray]") -> np.ndarray:
        """(N, H, W, 3) uint8 (or a list of same-size frames) -> (N, h, w, 3) uint8 at target_size(W, H)."""
        if not isinstance(frames, np.ndarray):
            frames = [check_frame(f) for f in frames]
            if not frames:
                return np.zeros((0, 0, 0, 3), np.uint8)
            if len({f.shape for f in frames}) != 1:
                raise StyleEngineError("stylize_batch needs frames of one size; call it per size")
            frames = np.stack(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise StyleEngineError(f"expected (N, H, W, 3) uint8 frames, got {frames.dtype} {frames.shape}")
        size = self.target_size(frames.shape[2], frames.shape[1])
        if size != (frames.shape[2], frames.shape[1]):
            frames = np.stack([postprocess.resize(f, size)[0] for f in frames])
        frames = np.ascontiguousarray(frames)
        return self._finish(frames, self._run(frames))

    def stylize_array(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (h, w, 3) uint8 RGB (after --max-size, so maybe smaller)."""
        return self.stylize_batch(check_frame(rgb)[None])[0]

    def stylize_loaded(self, img):
        """A LoadedImage (engine.images) -> a LoadedImage with stylized pixels, alpha/ICC/EXIF carried over."""
        rgb, alpha = postprocess.resize(img.rgb, self.target_size(img.rgb.shape[1], img.rgb.shape[0]), img.alpha)
        return replace(img, rgb=self.stylize_array(rgb), alpha=alpha)

    def __call__(self, image: Any):
        """PIL image -> PIL image; (H, W, 3) uint8 array -> array; (N, H, W, 3) -> array; path -> PIL image."""
        if isinstance(image, np.ndarray):
            return self.stylize_batch(image) if image.ndim == 4 else self.stylize_array(image)
        if isinstance(image, (str, os.PathLike)):
            out = self.stylize_loaded(load_image(Path(image)))
            return _with_info(to_pil(out.rgb, out.alpha), out)
        if _is_pil(image):
            out = self.stylize_loaded(decode(image, "image"))
            return _with_info(to_pil(out.rgb, out.alpha), out)
        raise StyleEngineError(f"Stylizer accepts a PIL image, an (H, W, 3) uint8 array or a path; got {type(image).__name__}")

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None

    def __enter__(self) -> "Stylizer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # best effort; explicit close() / with is the documented way
        try:
            self.close()
        except Exception:
            pass


class BlendedStylizer:
    """Output blending ('a:0.5,b:0.5' of any styles, e.g. different presets): one Stylizer per part, the
    outputs averaged with the weights. Same array API as Stylizer, at N times the inference cost."""

    def __init__(self, style: str, backend: str = "auto", *, strength: float = 1.0, **options: Any):
        self.parts = parse_style_spec(style)
        self.stylizers: list[Stylizer] = []
        try:
            for p in self.parts:
                # --strength is linear, so applying it per part equals applying it to the blend.
                self.stylizers.append(Stylizer(p.style, backend, strength=strength, **options))
        except BaseException:
            self.close()
            raise

    def stylize_batch(self, frames: np.ndarray) -> np.ndarray:
        return blend_outputs([s.stylize_batch(frames) for s in self.stylizers], [p.weight for p in self.parts])

    def stylize_array(self, rgb: np.ndarray) -> np.ndarray:
        return self.stylize_batch(rgb[None])[0]

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.stylize_batch(image) if image.ndim == 4 else self.stylize_array(image)

    def close(self) -> None:
        for s in self.stylizers:
            s.close()
        self.stylizers = []

    def __enter__(self) -> "BlendedStylizer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_frame(rgb: Any) -> np.ndarray:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise StyleEngineError(f"expected an (H, W, 3) uint8 RGB array, got {getattr(rgb, 'dtype', type(rgb).__name__)} "
                               f"{getattr(rgb, 'shape', '')}")
    return np.ascontiguousarray(rgb)


def _is_pil(obj: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:
        return False
    return isinstance(obj, Image.Image)


def _with_info(pil, loaded):
    if loaded.icc_profile:
        pil.info["icc_profile"] = loaded.icc_profile
    if loaded.exif:
        pil.info["exif"] = loaded.exif
    return pil
