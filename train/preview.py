"""What training shows while it runs: a preview grid that grows a row per preview, and a loss-curve PNG.

    <output>.previews/grid.jpg     first row: the style image, then the fixed preview photos;
                                   one row per preview after it: a step label, then each photo stylized
    <output>.previews/step_N.jpg   that row alone (the grid is rebuilt from these, so a resumed run continues it)
    <output>.loss.png              the logged losses against the step (log scale), beside <output>.log.jsonl

Drawn with Pillow only. Rows beyond MAX_ROWS are thinned evenly (first and latest always kept).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from styleengine.core.fsutil import atomic_path

TILE = 192  # tile height in the grid (width follows each photo's aspect)
MAX_ROWS = 10
_ROW = re.compile(r"^step_(\d+)\.jpg$")
SERIES = (("loss", (20, 20, 20)), ("content", (31, 119, 180)), ("style", (214, 39, 40)), ("tv", (44, 160, 44)),
          ("stability", (148, 103, 189)), ("shift", (140, 86, 75)), ("peak", (227, 119, 194)),
          ("spike", (188, 189, 34)))


def _fit(img: np.ndarray, height: int = TILE) -> Image.Image:
    im = Image.fromarray(img)
    return im.resize((max(1, round(im.width * height / im.height)), height), Image.LANCZOS)


def _label(text: str, width: int, height: int = TILE) -> Image.Image:
    tile = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(tile)
    font = ImageFont.load_default()
    box = draw.textbbox((0, 0), text, font=font)
    draw.text(((width - (box[2] - box[0])) / 2, (height - (box[3] - box[1])) / 2), text, fill=(0, 0, 0), font=font)
    return tile


def _row(tiles: Sequence[Image.Image]) -> Image.Image:
    row = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), TILE), (255, 255, 255))
    x = 0
    for t in tiles:
        row.paste(t, (x, 0))
        x += t.width + 4
    return row


class PreviewGrid:
    """The growing grid for one run. `photos` are (H, W, 3) uint8 at the size the model stylizes them."""

    def __init__(self, folder: Path, style: np.ndarray, photos: Sequence[np.ndarray]):
        self.folder = folder
        self.style_tile = _fit(style)
        self.photo_tiles = [_fit(p) for p in photos]
        self.label_width = max(96, self.style_tile.width)
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, step: int, outputs: Sequence[np.ndarray]) -> Path:
        """Write this step's row, drop rows of later steps (left by a run this one resumes), rebuild the grid."""
        row = _row([_label(f"step {step}", self.label_width)] + [_fit(o) for o in outputs])
        with atomic_path(self.folder / f"step_{step:07d}.jpg", suffix=".jpg") as tmp:
            row.save(tmp, quality=88)
        for p in self.folder.glob("step_*.jpg"):
            m = _ROW.match(p.name)
            if m and int(m.group(1)) > step:
                p.unlink()
        return self.write()

    def rows(self) -> list[Path]:
        found = sorted((int(m.group(1)), p) for p in self.folder.iterdir() if (m := _ROW.match(p.name)))
        if len(found) > MAX_ROWS:
            keep = sorted({round(i * (len(found) - 1) / (MAX_ROWS - 1)) for i in range(MAX_ROWS)})
            found = [found[i] for i in keep]
        return [p for _, p in found]

    def write(self) -> Path:
        header_label = self.style_tile if self.style_tile.width >= self.label_width else \
            _row([self.style_tile, _label("style", self.label_width - self.style_tile.width - 4)])
        header = _row([header_label] + self.photo_tiles)
        rows = [header] + [Image.open(p).convert("RGB") for p in self.rows()]
        width = max(r.width for r in rows)
        grid = Image.new("RGB", (width, sum(r.height for r in rows) + 4 * (len(rows) - 1)), (255, 255, 255))
        y = 0
        for r in rows:
            grid.paste(r, (0, y))
            y += r.height + 4
        target = self.folder / "grid.jpg"
        with atomic_path(target, suffix=".jpg") as tmp:
            grid.save(tmp, quality=85)
        return target


def read_log(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill -9
    return out


def plot_losses(records: Sequence[dict], target: Path, size: tuple[int, int] = (720, 420)) -> Path | None:
    """Each logged loss against the step on a log10 axis (one colour per loss, legend at the top)."""
    steps = [r["step"] for r in records if "step" in r]
    if len(steps) < 2:
        return None
    w, h = size
    left, right, top, bottom = 60, 16, 40, 36
    series = [(name, colour, [(r["step"], r[name]) for r in records if r.get(name, 0) and r[name] > 0])
              for name, colour in SERIES]
    series = [s for s in series if len(s[2]) >= 2]
    if not series:
        return None
    values = [math.log10(v) for _, _, pts in series for _, v in pts]
    lo, hi = math.floor(min(values)), math.ceil(max(values))
    hi = hi if hi > lo else lo + 1
    s0, s1 = min(steps), max(steps)
    x = lambda s: left + (w - left - right) * (s - s0) / max(1, s1 - s0)  # noqa: E731
    y = lambda v: top + (h - top - bottom) * (hi - math.log10(v)) / (hi - lo)  # noqa: E731
    img = Image.new("RGB", size, (255, 255, 255))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    d.rectangle([left, top, w - right, h - bottom], outline=(120, 120, 120))
    for e in range(lo, hi + 1):
        yy = y(10.0 ** e)
        d.line([left, yy, w - right, yy], fill=(225, 225, 225))
        d.text((8, yy - 6), f"1e{e}", fill=(60, 60, 60), font=font)
    for s in (s0, (s0 + s1) // 2, s1):
        d.text((x(s) - 10, h - bottom + 6), str(s), fill=(60, 60, 60), font=font)
    d.text((w // 2 - 15, h - 16), "step", fill=(60, 60, 60), font=font)
    lx = left
    for name, colour, pts in series:
        d.line([(x(s), y(v)) for s, v in pts], fill=colour, width=2)
        d.line([lx, 18, lx + 18, 18], fill=colour, width=3)
        d.text((lx + 22, 12), name, fill=colour, font=font)
        lx += 30 + 8 * len(name)
    with atomic_path(target, suffix=".png") as tmp:
        img.save(tmp)
    return target
