"""The README gallery: every built-in style on three photos and a frame of video, at full size, side by side with
its painting, plus a small overview grid and the numbers that go with the pictures.

    .venv/bin/python benchmarks/gallery.py [--styles all | name,name | bundle-folder,...] [--out DIR]

Per style, `gallery_<name>.jpg`: one row [painting | photo 1 | photo 2 | photo 3 | video frame], every stylized
image at its own full size (the painting scaled to the row height). `gallery_grid.jpg`: photo + every style on
the first photo, small. `gallery.json`: per style and image the texture peakiness over the photo's, the grid
error (how much the output changes beyond moving along when the photo moves 1-3 px), the style distance to the
painting, the content distance to the photo, and the border band (the outer 6 px's fine detail over the
interior's, output and photo) (core/spectrum.py, engine/quality.py). Inputs are fixed files in benchmarks/gallery_inputs/ (Kodak
photos, public domain usage; a Big Buck Bunny frame, CC BY 3.0), so reruns are comparable. Runs through the
public Stylizer with ONNX Runtime FP32: the models' own output. `--compare-with DIR` also writes
`compare_<name>.jpg`: DIR's gallery row for that style above the new one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from styleengine.core.bundle import load_bundle
from styleengine.core.fsutil import atomic_path
from styleengine.engine.builtin_styles import list_builtins, style_image_path
from styleengine.engine.stylizer import Stylizer

HERE = Path(__file__).resolve().parent
INPUTS = HERE / "gallery_inputs"
OUT = HERE / "results" / "images"
IMAGES = ("kodim23.jpg", "kodim14.jpg", "chelsea.jpg", "bunny_frame.jpg")


def save(img: np.ndarray, path: Path, quality: int = 85) -> Path:
    with atomic_path(path, suffix=".jpg") as tmp:
        Image.fromarray(img).save(tmp, quality=quality, optimize=True)
    return path


def row(tiles: list[np.ndarray], height: int) -> np.ndarray:
    """Tiles side by side at one height (each keeps its aspect), 8-px white gaps."""
    fitted = [np.asarray(Image.fromarray(t).resize((round(t.shape[1] * height / t.shape[0]), height), Image.LANCZOS))
              if t.shape[0] != height else t for t in tiles]
    gap = np.full((height, 8, 3), 255, np.uint8)
    return np.concatenate(sum([[t, gap] for t in fitted], [])[:-1], 1)


def mean_metrics(per_image: dict[str, dict], keys) -> dict[str, float]:
    """Each key's mean over the images, rounded to 4 places; keys that are None for any image are left out."""
    return {k: round(float(np.mean([m[k] for m in per_image.values()])), 4) for k in keys
            if all(m[k] is not None for m in per_image.values())}


def styles_to_render(spec: str) -> list[tuple[str, str, Path | None]]:
    """(name, STYLE for the Stylizer, painting image) per requested style."""
    if spec == "all":
        return [(s.name, s.name, style_image_path(s.painting)) for s in list_builtins()]
    out = []
    for item in spec.split(","):
        path = Path(item)
        painting = None
        if path.is_dir():
            stem = Path(str((load_bundle(path).manifest.get("style") or {}).get("image") or "")).stem
            painting = style_image_path(stem)
        else:
            b = next((s for s in list_builtins() if s.name == item), None)
            painting = style_image_path(b.painting) if b else None
        out.append((path.stem if path.is_dir() else item, item, painting))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", default="all")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--inputs", type=Path, default=INPUTS)
    ap.add_argument("--no-metrics", action="store_true", help="skip the numbers (they need torch)")
    ap.add_argument("--compare-with", type=Path, default=None,
                    help="a folder with an earlier run's gallery_<name>.jpg: also write compare_<name>.jpg, the "
                         "earlier row above the new one")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    inputs = {n: np.asarray(Image.open(args.inputs / n).convert("RGB")) for n in IMAGES}
    metrics = {}
    if not args.no_metrics:
        from styleengine.core.spectrum import peakiness_ratio
        from styleengine.engine.quality import ContentDistance, StyleDistance, border_band, grid_error

        content = ContentDistance()
    small = []
    for name, style, painting in styles_to_render(args.styles):
        with Stylizer(style, "onnxruntime", precision="fp32") as st:
            outs = {n: st(img) for n, img in inputs.items()}
            grids = {n: grid_error(st, img) for n, img in inputs.items()} if not args.no_metrics else {}
        height = max(o.shape[0] for o in outs.values())
        tiles = ([np.asarray(Image.open(painting).convert("RGB"))] if painting else []) + list(outs.values())
        new_row = row(tiles, height)
        print(save(new_row, args.out / f"gallery_{name}.jpg"))
        earlier = args.compare_with / f"gallery_{name}.jpg" if args.compare_with else None
        if earlier is not None and earlier.is_file():
            old = np.asarray(Image.open(earlier).convert("RGB"))
            if old.shape[1] != new_row.shape[1]:
                old = np.asarray(Image.fromarray(old).resize((new_row.shape[1], round(old.shape[0] * new_row.shape[1]
                                                                                       / old.shape[1])), Image.LANCZOS))
            gap = np.full((8, new_row.shape[1], 3), 255, np.uint8)
            print(save(np.concatenate([old, gap, new_row], 0), args.out / f"compare_{name}.jpg"))
        small.append(np.asarray(Image.fromarray(outs[IMAGES[0]]).resize((256, 171), Image.LANCZOS)))
        if not args.no_metrics:
            sd = StyleDistance(painting) if painting else None
            metrics[name] = {n: {"peakiness_x_photo": round(peakiness_ratio(o, inputs[n]), 3),
                                 "style_distance": round(sd.image(o), 4) if sd else None,
                                 "content_distance": round(content(inputs[n], o), 4),
                                 "grid_error": round(grids[n], 3),
                                 "border_band": round(border_band(o), 2),
                                 "border_band_photo": round(border_band(inputs[n]), 2)} for n, o in outs.items()}
    first = np.asarray(Image.fromarray(inputs[IMAGES[0]]).resize((256, 171), Image.LANCZOS))
    tiles = [first] + small
    cols = 4
    blank = np.full_like(first, 255)
    rows = [row(tiles[i:i + cols] + [blank] * (cols - len(tiles[i:i + cols])), 171) for i in range(0, len(tiles), cols)]
    gap = np.full((8, rows[0].shape[1], 3), 255, np.uint8)
    print(save(np.concatenate(sum([[r, gap] for r in rows], [])[:-1], 0), args.out / "gallery_grid.jpg"))
    if metrics:
        means = {name: mean_metrics(per, ("peakiness_x_photo", "grid_error", "style_distance", "content_distance",
                                          "border_band"))
                 for name, per in metrics.items()}
        with atomic_path(args.out / "gallery.json", suffix=".json") as tmp:
            tmp.write_text(json.dumps({"inputs": list(IMAGES), "mean": means, "styles": metrics}, indent=1) + "\n")


if __name__ == "__main__":
    main()
