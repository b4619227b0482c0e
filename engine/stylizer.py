"""The Python API: `Stylizer(style, backend="auto")(image)`.

    from styleengine import Stylizer
    with Stylizer("starry_night") as st:              # built-in name, bundle folder or .pt checkpoint
        out = st(Image.open("photo.jpg"))             # PIL in -> PIL out (alpha and ICC profile kept)
        arr = st(np.asarray(...))                     # (H, W, 3) uint8 in -> (H, W, 3) uint8 out
        frames = st.stylize_batch(list_of_frames)     # (N, H, W, 3) or a list of same-size frames
        img = st("photo.jpg")                         # a path in -> PIL image out

Sizes below the network's (or plan's) minimum are edge-padded and cropped back; sizes above the backend's
maximum get a one-line error naming --max-size (or use `max_size=` to downscale first).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from styleengine.errors import StyleEngineError

from . import postprocess
from .backend import Backend

MIN_SIDE = 8  # = styleengine.train.network.MIN_SIDE (not imported: that module needs torch)
# GPU backends without a profile limit (ORT CUDA, torch CUDA) refuse above ~8K UHD (33 Mpx) up front; CPU
# backends check the estimated memory instead (ACTIVATION_COPIES), so a big photo fails clearly, not by swapping.
DEFAULT_MAX_PIXELS = 7680 * 4320
DEFAULT_MAX_BATCH = 8
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
                 max_batch: int = DEFAULT_MAX_BATCH, verbose: bool = True, **options: Any):
        from .select import open_backend
        from .styles import resolve_style

        self.strength = postprocess.check_strength(strength)
        if max_size is not None and int(max_size) < MIN_SIDE:
            raise StyleEngineError(f"--max-size must be at least {MIN_SIDE} pixels, got {max_size}")
        self.max_size = int(max_size) if max_size else None
        self.preserve_color = bool(preserve_color)
        self.max_batch = max(1, int(max_batch))
        self.bundle = resolve_style(style, verbose=verbose)
        log = None if verbose else (lambda msg: None)
        self.backend: Backend | None = open_backend(self.bundle, backend, device=device, precision=precision,
                                                    log=log, **options)

    # ------------------------------------------------------------------ info
    @property
    def backend_name(self) -> str:
        return self._be().name

    def describe(self) -> dict[str, Any]:
        d = self._be().describe()
        d["style"] = self.bundle.style_name
        d["bundle"] = str(self.bundle.path)
        return d

    def _be(self) -> Backend:
        if self.backend is None:
            raise StyleEngineError("Stylizer is closed")
        return self.backend

    def _limits(self) -> tuple[int, int, int | None, int | None]:
        """(min_h, min_w, max_h, max_w) the backend accepts."""
        fn = getattr(self._be(), "shape_limits", None)
        lim = fn() if callable(fn) else None
        if lim:
            return max(MIN_SIDE, lim[0]), max(MIN_SIDE, lim[1]), lim[2], lim[3]
        return MIN_SIDE, MIN_SIDE, None, None

    # ------------------------------------------------------------------ core
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 -> stylized, padding small frames and refusing oversize ones clearly."""
        n, h, w = batch.shape[:3]
        if h == 0 or w == 0:
            raise StyleEngineError(f"image has zero size ({w}x{h})")
        min_h, min_w, max_h, max_w = self._limits()
        on_cpu = str(self._be().device or "cpu") == "cpu"
        if (max_h and h > max_h) or (max_w and w > max_w) or (not max_h and not on_cpu and h * w > DEFAULT_MAX_PIXELS):
            limit = f"{max_w}x{max_h}" if max_h else f"{DEFAULT_MAX_PIXELS // 1_000_000} megapixels"
            raise StyleEngineError(f"image {w}x{h} is larger than the {self._be().name} backend handles ({limit}); "
                                   f"use --max-size to downscale it")
        if not max_h and on_cpu:
            widths = (self.bundle.manifest.get("arch") or {}).get("widths") or [32]
            need = n * h * w * int(widths[0]) * 4 * ACTIVATION_COPIES
            avail = available_memory()
            if avail and need > avail:
                raise StyleEngineError(f"image {w}x{h} needs about {need / 2**30:.1f} GiB of memory for the network, "
                                       f"{avail / 2**30:.1f} GiB are available; use --max-size to downscale it")
        ph, pw = max(0, min_h - h), max(0, min_w - w)
        if ph or pw:
            # Edge-pad tiny images up to the minimum the network's reflection pads allow, crop back after.
            batch = np.pad(batch, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
        fn = getattr(self._be(), "max_batch_size", None)
        step = min(self.max_batch, (fn() if callable(fn) else None) or self.max_batch)
        try:
            outs = [self._be().infer(np.ascontiguousarray(batch[i:i + step])) for i in range(0, n, step)]
        except MemoryError:
            raise StyleEngineError(f"out of memory stylizing {w}x{h}; use --max-size to downscale") from None
        except Exception as exc:  # CUDA OOM from torch/ORT/TensorRT arrives as their own RuntimeError types
            if "out of memory" not in str(exc).lower() and "OutOfMemory" not in type(exc).__name__:
                raise
            raise StyleEngineError(f"GPU out of memory stylizing {w}x{h}; use --max-size to downscale") from None
        out = outs[0] if len(outs) == 1 else np.concatenate(outs)
        return out[:, :h, :w] if (ph or pw) else out

    def _finish(self, original: np.ndarray, stylized: np.ndarray) -> np.ndarray:
        return postprocess.finish(original, stylized, strength=self.strength, preserve_colors=self.preserve_color)

    def stylize_array(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W, 3) uint8 RGB (after --max-size, so maybe smaller)."""
        rgb = _check_frame(rgb)
        size = postprocess.fit_size(rgb.shape[1], rgb.shape[0], self.max_size)
        rgb, _ = postprocess.resize(rgb, size)
        return self._finish(rgb, self._run(rgb[None])[0])

    def stylize_batch(self, frames: "np.ndarray | Iterable[np.ndarray]") -> np.ndarray:
        """(N, H, W, 3) uint8 (or a list of same-size frames) -> (N, H, W, 3) uint8, in chunks of max_batch."""
        if not isinstance(frames, np.ndarray):
            frames = [_check_frame(f) for f in frames]
            if not frames:
                return np.zeros((0, 0, 0, 3), np.uint8)
            if len({f.shape for f in frames}) != 1:
                raise StyleEngineError("stylize_batch needs frames of one size; call it per size")
            frames = np.stack(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise StyleEngineError(f"expected (N, H, W, 3) uint8 frames, got {frames.dtype} {frames.shape}")
        if self.max_size:
            size = postprocess.fit_size(frames.shape[2], frames.shape[1], self.max_size)
            if size != (frames.shape[2], frames.shape[1]):
                frames = np.stack([postprocess.resize(f, size)[0] for f in frames])
        return self._finish(frames, self._run(np.ascontiguousarray(frames)))

    def stylize_loaded(self, img):
        """A LoadedImage (engine.images) -> a LoadedImage with stylized pixels, alpha/ICC/EXIF carried over."""
        from dataclasses import replace

        size = postprocess.fit_size(img.rgb.shape[1], img.rgb.shape[0], self.max_size)
        rgb, alpha = postprocess.resize(img.rgb, size, img.alpha)
        out = self._finish(rgb, self._run(rgb[None])[0])
        return replace(img, rgb=out, alpha=alpha)

    def __call__(self, image: Any):
        """PIL image -> PIL image; (H, W, 3) uint8 array -> array; (N, H, W, 3) -> array; path -> PIL image."""
        if isinstance(image, np.ndarray):
            return self.stylize_batch(image) if image.ndim == 4 else self.stylize_array(image)
        if isinstance(image, (str, os.PathLike)):
            from .images import load_image, to_pil

            out = self.stylize_loaded(load_image(Path(image)))
            return _with_info(to_pil(out.rgb, out.alpha), out)
        if _is_pil(image):
            from .images import decode, to_pil

            out = self.stylize_loaded(decode(image, "image"))
            return _with_info(to_pil(out.rgb, out.alpha), out)
        raise StyleEngineError(f"Stylizer accepts a PIL image, an (H, W, 3) uint8 array or a path; got {type(image).__name__}")

    def timed(self, image: Any) -> tuple[Any, float]:
        t = time.perf_counter()
        out = self(image)
        return out, time.perf_counter() - t

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


def _check_frame(rgb: Any) -> np.ndarray:
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
