"""Image files in and out for stylization, handling what real photos throw at us.

Reading: EXIF orientation applied; RGBA/LA/transparent palettes keep their alpha (stylized RGB + original
alpha); grayscale, palette, CMYK (through its ICC profile when present), YCbCr/LAB and 16-bit or float images are
converted to 8-bit RGB; Pillow's decompression-bomb guard and truncated files become one-line errors.
Writing: the format comes from the output's extension; the ICC profile (an RGB one) and EXIF (orientation reset)
are kept where the format can store them; alpha is kept where the format has it.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from styleengine.core.errors import StyleEngineError

# Formats that store an ICC profile / EXIF / alpha, by Pillow format name.
ICC_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF", "JPEG2000", "AVIF", "HEIF"}
EXIF_FORMATS = {"JPEG", "PNG", "WEBP", "TIFF", "AVIF", "HEIF"}
ALPHA_FORMATS = {"PNG", "WEBP", "TIFF", "GIF", "AVIF", "HEIF", "JPEG2000", "TGA", "ICO"}
SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": 95, "subsampling": 0},
    "WEBP": {"quality": 95, "method": 4},
    "PNG": {"compress_level": 6},
    "TIFF": {"compression": "tiff_deflate"},
    "AVIF": {"quality": 90},
}


@dataclass
class LoadedImage:
    rgb: np.ndarray  # (H, W, 3) uint8
    alpha: np.ndarray | None = None  # (H, W) uint8, when the source had transparency
    icc_profile: bytes | None = None  # an RGB profile describing `rgb`
    exif: bytes | None = None  # with orientation reset to 1
    format: str | None = None  # source format (PNG, JPEG, ...)
    source_mode: str = "RGB"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


def _pil():
    from PIL import Image, ImageFile

    return Image, ImageFile


def _open_error(name: str, exc: BaseException) -> StyleEngineError:
    Image, _ = _pil()
    if isinstance(exc, Image.DecompressionBombError):
        return StyleEngineError(f"{name}: refused: image is larger than Pillow's decompression-bomb limit "
                                f"({Image.MAX_IMAGE_PIXELS * 2} pixels)")
    if isinstance(exc, FileNotFoundError):
        return StyleEngineError(f"{name}: no such file")
    if isinstance(exc, IsADirectoryError):
        return StyleEngineError(f"{name}: is a folder, not an image")
    if isinstance(exc, PermissionError):
        return StyleEngineError(f"{name}: permission denied")
    if type(exc).__name__ == "UnidentifiedImageError":
        return StyleEngineError(f"{name}: not an image (or a format Pillow cannot read)")
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "truncated" in msg.lower() or isinstance(exc, (EOFError, SyntaxError)) or "broken" in msg.lower():
        return StyleEngineError(f"{name}: truncated or corrupt image ({msg})")
    return StyleEngineError(f"{name}: unreadable image ({msg})")


def _to_uint8_rgb_high_depth(img) -> np.ndarray:
    """16-bit / 32-bit int / float single-channel modes -> 8-bit gray replicated to RGB (Pillow clips instead)."""
    a = np.asarray(img)
    if img.mode == "F":
        a = a.astype(np.float64)
        finite = a[np.isfinite(a)]
        hi = float(finite.max()) if finite.size else 1.0
        a = np.nan_to_num(a) * (255.0 if hi <= 1.0 else 1.0)  # float images are 0-1 or 0-255 by convention
    elif img.mode.startswith("I;16") or (img.mode == "I" and a.max(initial=0) > 255):
        a = a.astype(np.float64) / 257.0  # 0..65535 -> 0..255
    a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return np.repeat(a[..., None], 3, axis=2)


def _cmyk_to_rgb(img, icc: bytes | None):
    """CMYK through its embedded profile to sRGB when LittleCMS can; Pillow's naive formula otherwise."""
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(img, src, dst, outputMode="RGB"), True
        except Exception:  # broken or unsupported profile: fall back to the plain conversion
            pass
    return img.convert("RGB"), False


def decode(img, name: str) -> LoadedImage:
    """A freshly opened PIL image -> LoadedImage (loads the pixels; raises one-line errors)."""
    Image, _ = _pil()
    from PIL import ImageOps

    fmt = img.format
    try:
        img.load()
        img = ImageOps.exif_transpose(img) or img
    except Exception as exc:  # Pillow raises OSError/SyntaxError/ValueError/... for damaged data
        raise _open_error(name, exc) from None
    w, h = img.size
    if w == 0 or h == 0:
        raise StyleEngineError(f"{name}: image has zero size ({w}x{h})")
    mode = img.mode
    icc = img.info.get("icc_profile") or None
    exif = _exif_without_orientation(img)
    alpha = None
    if mode == "CMYK":
        img, converted = _cmyk_to_rgb(img, icc)
        icc = _srgb_profile() if converted else None  # the CMYK profile does not describe RGB pixels
        rgb = np.asarray(img, dtype=np.uint8)
    elif mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        rgb = _to_uint8_rgb_high_depth(img)
        icc = None if icc and not _icc_is_rgb(icc) else icc
    else:
        has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("P", "L", "RGB") and "transparency" in img.info)
        if has_alpha:
            rgba = img.convert("RGBA")
            a = np.asarray(rgba, dtype=np.uint8)
            rgb, alpha = np.ascontiguousarray(a[..., :3]), np.ascontiguousarray(a[..., 3])
        else:
            rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        if icc and not _icc_is_rgb(icc):
            icc = None  # a grayscale profile cannot describe the RGB output
    return LoadedImage(np.ascontiguousarray(rgb), alpha, icc, exif, fmt, mode)


def _icc_is_rgb(icc: bytes) -> bool:
    # ICC header: bytes 16-19 are the data colour space signature.
    return len(icc) >= 20 and icc[16:20] == b"RGB "


def _srgb_profile() -> bytes | None:
    try:
        from PIL import ImageCms

        return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    except Exception:
        return None


def _exif_without_orientation(img) -> bytes | None:
    try:
        exif = img.getexif()
        if not exif:
            return None
        if 0x0112 in exif:
            exif[0x0112] = 1
        return exif.tobytes()
    except Exception:  # malformed EXIF is dropped, never fatal
        return None


def load_image(source: "str | os.PathLike | BinaryIO | bytes", name: str | None = None) -> LoadedImage:
    """Read an image file (path, bytes or binary stream) with all the conversions above."""
    Image, _ = _pil()
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    if name is None:
        name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "<stdin>"
    if isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
        raise StyleEngineError(f"{name}: is a folder, not an image")
    try:
        with warnings.catch_warnings():
            # Pillow warns between 1x and 2x MAX_IMAGE_PIXELS and raises above; we keep its thresholds.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                return decode(img, name)
    except StyleEngineError:
        raise
    except Exception as exc:
        raise _open_error(name, exc) from None


def format_for(path: "str | os.PathLike") -> str:
    """Pillow format name from an output file's extension; one-line error for unknown ones."""
    Image, _ = _pil()
    ext = Path(path).suffix.lower()
    if not ext:
        raise StyleEngineError(f"{path}: output needs a file extension (.png, .jpg, .webp, ...) to pick the format")
    Image.init()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        raise StyleEngineError(f"{path}: cannot write {ext} images (try .png, .jpg, .webp or .tif)")
    return fmt


def to_pil(rgb: np.ndarray, alpha: np.ndarray | None = None):
    Image, _ = _pil()
    if alpha is not None:
        return Image.fromarray(np.dstack([rgb, alpha]).astype(np.uint8), "RGBA")
    return Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")


def save_image(target: "str | os.PathLike | BinaryIO", rgb: np.ndarray, *, alpha: np.ndarray | None = None,
               icc_profile: bytes | None = None, exif: bytes | None = None, format: str | None = None) -> str:
    """Write an RGB(+alpha) image; format from `format` or the target's extension. Returns the format used."""
    fmt = format or format_for(target)  # type: ignore[arg-type]
    img = to_pil(rgb, alpha if fmt in ALPHA_FORMATS else None)
    if fmt == "GIF":
        img = img.convert("RGBA").quantize(256) if alpha is not None else img.quantize(256)
    kwargs: dict[str, Any] = dict(SAVE_OPTIONS.get(fmt, {}))
    if icc_profile and fmt in ICC_FORMATS:
        kwargs["icc_profile"] = icc_profile
    if exif and fmt in EXIF_FORMATS:
        kwargs["exif"] = exif
    try:
        img.save(target, format=fmt, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        name = os.fspath(target) if isinstance(target, (str, os.PathLike)) else "<stdout>"
        raise StyleEngineError(f"{name}: could not write {fmt} ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    return fmt
