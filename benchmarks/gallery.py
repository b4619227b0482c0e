"""The README gallery: real outputs of the shipped built-in styles on the bundled sample photo.

    .venv/bin/python benchmarks/gallery.py [--blend starry_night:0.5,great_wave:0.5]

Writes benchmarks/results/images/gallery_<style>.jpg (one per built-in, through the public Stylizer API with
ONNX Runtime FP32: the same path as `styleengine stylize --style <name> --precision fp32`), gallery_blend.jpg (a weight
blend, engine/blend.py) and gallery_grid.jpg (photo + every style, small). Total kept well under 1 MB.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from styleengine.core.fsutil import atomic_path
from styleengine.engine.blend import resolve_blend
from styleengine.engine.builtin_styles import STYLES_DIR, list_builtins
from styleengine.engine.stylizer import Stylizer

OUT = Path(__file__).parent / "results" / "images"
SAMPLE = STYLES_DIR.parent / "samples" / "chelsea.jpg"


def save(img: np.ndarray, name: str, quality: int = 82) -> Path:
    path = OUT / name
    with atomic_path(path, suffix=".jpg") as tmp:
        Image.fromarray(img).save(tmp, quality=quality, optimize=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blend", default="starry_night:0.5,great_wave:0.5")
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--precision", default="fp32", help="the models' own output (the CPU default is INT8)")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    photo = np.asarray(Image.open(SAMPLE).convert("RGB"))
    tiles = [("photo", photo)]
    for s in list_builtins():
        with Stylizer(s.name, args.backend, precision=args.precision) as st:
            out = st(photo)
        print(save(out, f"gallery_{s.name}.jpg"))
        tiles.append((s.name, out))
    if args.blend:
        with Stylizer(resolve_blend(args.blend), args.backend, precision=args.precision) as st:
            out = st(photo)
        print(save(out, "gallery_blend.jpg"))
        tiles.append(("blend", out))
    # One strip for the README: every tile at 1/2 size.
    h, w = photo.shape[0] // 2, photo.shape[1] // 2
    small = [np.asarray(Image.fromarray(t).resize((w, h), Image.LANCZOS)) for _, t in tiles]
    cols = 3
    rows = [small[i:i + cols] + [np.full_like(small[0], 255)] * (cols - len(small[i:i + cols]))
            for i in range(0, len(small), cols)]
    grid = np.concatenate([np.concatenate(r, 1) for r in rows], 0)
    print(save(grid, "gallery_grid.jpg"))
    total = sum(p.stat().st_size for p in OUT.glob("gallery_*.jpg"))
    print(f"gallery total {total / 1e3:.0f} kB; tiles: {', '.join(n for n, _ in tiles)}")


if __name__ == "__main__":
    main()
