"""Image I/O: real-world modes, metadata and damaged files (test images are made here, programmatically)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from styleengine.core.errors import StyleEngineError
from styleengine.engine.images import format_for, load_image, save_image


def _gradient(w=24, h=16) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 77)]).astype(np.uint8)


def test_exif_orientation_is_applied_and_reset(tmp_path):
    rgb = _gradient(24, 16)
    img = Image.fromarray(rgb)
    exif = img.getexif()
    exif[0x0112] = 6  # stored landscape, displayed rotated 90 degrees clockwise
    exif[0x010F] = "TestCam"  # camera make: kept in the output
    p = tmp_path / "rot.jpg"
    img.save(p, exif=exif.tobytes(), quality=98)
    loaded = load_image(p)
    assert loaded.rgb.shape == (24, 16, 3)  # portrait after applying the tag
    # the top-left of the displayed image is the stored bottom-left
    stored = np.asarray(Image.open(p).convert("RGB")).astype(int)
    assert np.abs(loaded.rgb[0, 0].astype(int) - stored[-1, 0]).max() <= 6
    assert loaded.exif is not None
    out = Image.Exif()
    out.load(loaded.exif)
    assert out.get(0x010F) == "TestCam"
    assert out.get(0x0112) in (None, 1)  # the output must not be rotated a second time by viewers


def test_rgba_keeps_alpha_and_png_writes_it(tmp_path):
    rgba = np.dstack([_gradient(), np.linspace(0, 255, 24 * 16).reshape(16, 24).astype(np.uint8)])
    p = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(p)
    loaded = load_image(p)
    assert loaded.rgb.shape == (16, 24, 3) and loaded.alpha is not None
    assert np.array_equal(loaded.alpha, rgba[..., 3])
    out = tmp_path / "o.png"
    save_image(out, loaded.rgb, alpha=loaded.alpha)
    back = Image.open(out)
    assert back.mode == "RGBA" and np.array_equal(np.asarray(back)[..., 3], rgba[..., 3])
    # JPEG cannot hold alpha: written as RGB
    save_image(tmp_path / "o.jpg", loaded.rgb, alpha=loaded.alpha)
    assert Image.open(tmp_path / "o.jpg").mode == "RGB"


def test_palette_with_transparency_and_grayscale(tmp_path):
    pal = Image.fromarray(_gradient()).quantize(16)
    pal.info["transparency"] = 0
    p = tmp_path / "p.png"
    pal.save(p, transparency=0)
    loaded = load_image(p)
    assert loaded.alpha is not None and loaded.alpha.min() == 0 and loaded.alpha.max() == 255
    g = tmp_path / "g.png"
    Image.fromarray(_gradient()[..., 0], "L").save(g)
    lg = load_image(g)
    assert lg.rgb.shape == (16, 24, 3) and lg.alpha is None
    assert np.array_equal(lg.rgb[..., 0], lg.rgb[..., 2])


def test_16bit_grayscale_is_scaled_not_clipped(tmp_path):
    a16 = (np.linspace(0, 65535, 24 * 16).reshape(16, 24)).astype(np.uint16)
    p = tmp_path / "g16.png"
    Image.fromarray(a16).save(p)
    assert Image.open(p).mode.startswith("I")
    rgb = load_image(p).rgb
    assert rgb.dtype == np.uint8 and rgb.shape == (16, 24, 3)
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255
    assert abs(int(rgb[8, 12, 0]) - round(a16[8, 12] / 257)) <= 1  # Pillow's own convert clips at 255


def test_cmyk_converts_to_rgb_and_drops_the_cmyk_profile(tmp_path):
    rgb = _gradient()
    cmyk = Image.fromarray(rgb).convert("CMYK")
    p = tmp_path / "c.jpg"
    cmyk.save(p, quality=98)
    loaded = load_image(p)
    assert loaded.rgb.shape == (16, 24, 3) and loaded.source_mode == "CMYK"
    assert np.abs(loaded.rgb.astype(int) - rgb).mean() < 12
    assert loaded.icc_profile is None or loaded.icc_profile[16:20] == b"RGB "


def test_icc_profile_kept_where_the_format_allows(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    p = tmp_path / "i.png"
    Image.fromarray(_gradient()).save(p, icc_profile=icc)
    loaded = load_image(p)
    assert loaded.icc_profile == icc
    for ext in (".jpg", ".png", ".webp", ".tif"):
        out = tmp_path / f"o{ext}"
        save_image(out, loaded.rgb, icc_profile=loaded.icc_profile)
        assert Image.open(out).info.get("icc_profile") == icc, ext
    save_image(tmp_path / "o.bmp", loaded.rgb, icc_profile=loaded.icc_profile)  # BMP: silently without


def test_format_from_extension_and_unknown_extensions():
    assert format_for("a.JPG") == "JPEG" and format_for("x/b.webp") == "WEBP" and format_for("c.tiff") == "TIFF"
    with pytest.raises(StyleEngineError, match="cannot write .xyz"):
        format_for("a.xyz")
    with pytest.raises(StyleEngineError, match="extension"):
        format_for("noext")


def test_bad_inputs_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(StyleEngineError, match="no such file"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "t.png").write_text("hello")
    with pytest.raises(StyleEngineError, match="not an image"):
        load_image(tmp_path / "t.png")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    (tmp_path / "trunc.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(StyleEngineError, match="truncated|corrupt"):
        load_image(tmp_path / "trunc.png")
    with pytest.raises(StyleEngineError, match="folder"):
        load_image(tmp_path)
    # Pillow's decompression-bomb guard (errors above 2x MAX_IMAGE_PIXELS)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    Image.fromarray(_gradient(24, 16)).save(tmp_path / "bomb.png")
    with pytest.raises(StyleEngineError, match="decompression-bomb"):
        load_image(tmp_path / "bomb.png")
    for err in (pytest.raises(StyleEngineError),):
        with err as info:
            load_image(tmp_path / "trunc.png")
        assert "\n" not in str(info.value)


def test_stdin_bytes_and_16bit_rgb_png(tmp_path):
    rgb16 = (_gradient().astype(np.uint16) * 257)
    import zlib  # a 16-bit RGB PNG written by hand (Pillow cannot write one)

    h, w = rgb16.shape[:2]
    raw = b"".join(b"\x00" + rgb16[r].astype(">u2").tobytes() for r in range(h))

    def chunk(t, d):
        return len(d).to_bytes(4, "big") + t + d + zlib.crc32(t + d).to_bytes(4, "big")

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([16, 2, 0, 0, 0]))
           + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    loaded = load_image(png)
    assert loaded.rgb.shape == (16, 24, 3)
    assert np.abs(loaded.rgb.astype(int) - _gradient()).max() <= 1


def test_zero_size_image_is_refused(tmp_path):
    import zlib

    def chunk(t, d):
        return len(d).to_bytes(4, "big") + t + d + zlib.crc32(t + d).to_bytes(4, "big")

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", (0).to_bytes(4, "big") + (5).to_bytes(4, "big") + bytes([8, 2, 0, 0, 0]))
           + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    (tmp_path / "zero.png").write_bytes(png)
    with pytest.raises(StyleEngineError) as info:
        load_image(tmp_path / "zero.png")
    assert str(info.value).startswith(f"{tmp_path / 'zero.png'}: ") and "\n" not in str(info.value)
