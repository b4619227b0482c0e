"""Training photos: a recursive folder scan, random crops/flips, and a data order that is a pure function of
(seed, step) — so `--resume` and multi-process training see exactly the samples an uninterrupted run would."""

from __future__ import annotations

import os
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from styleengine.core.errors import StyleEngineError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".gif"}
# Decompression bombs and truncated files raise; both count as corrupt.
_OPEN_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


@dataclass
class ScanResult:
    files: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason)


def scan_images(data_dir: str | os.PathLike, *, min_side: int = 1) -> ScanResult:
    """Every readable image below `data_dir` (sorted, hidden entries ignored). Non-images and unreadable or
    too-small files are skipped and reported, never fatal; no usable image at all is a one-line error."""
    root = Path(data_dir)
    if not root.exists():
        raise StyleEngineError(f"data folder not found: {root}")
    if not root.is_dir():
        raise StyleEngineError(f"data folder is not a folder: {root}")
    result = ScanResult([])
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                result.skipped.append((path, "not an image file"))
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    with Image.open(path) as im:  # reads the header only
                        w, h = im.size
            except _OPEN_ERRORS as exc:
                result.skipped.append((path, f"unreadable ({type(exc).__name__})"))
                continue
            if min(w, h) < min_side:
                result.skipped.append((path, f"too small ({w}x{h})"))
                continue
            result.files.append(path)
    if not result.files:
        extra = f" ({len(result.skipped)} other files skipped)" if result.skipped else ""
        raise StyleEngineError(f"no usable images in data folder {root}{extra}")
    return result


def load_rgb(path: str | os.PathLike) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as im:
            return im.convert("RGB")


def to_tensor(im: Image.Image) -> torch.Tensor:
    """PIL RGB -> float (3, H, W) in 0-255."""
    return torch.from_numpy(np.array(im, dtype=np.uint8, copy=True)).permute(2, 0, 1).float()


def random_crop(im: Image.Image, size: int, rng: random.Random, *, max_zoom: float = 1.25,
                photo_size: int | None = None) -> Image.Image:
    """Resize so the short side is photo_size (default: size) * U(1, max_zoom), take a random size x size crop,
    flip half the time. photo_size > size crops parts of photos seen at that resolution, so shapes in training
    have the pixel size they will have when photos of that size are stylized."""
    w, h = im.size
    short = max(size, photo_size or size) * rng.uniform(1.0, max_zoom)
    scale = short / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    im = im.resize((nw, nh), Image.BICUBIC, reducing_gap=3.0)
    left, top = rng.randint(0, nw - size), rng.randint(0, nh - size)
    im = im.crop((left, top, left + size, top + size))
    if rng.random() < 0.5:
        im = im.transpose(Image.FLIP_LEFT_RIGHT)
    return im


class Schedule:
    """Global sample i (i = step * global_batch + rank * batch + j) -> (file index, per-sample seed).

    Each epoch is a fresh permutation seeded by (seed, epoch); crops/flips are seeded by (seed, i). No
    iterator state to save: resuming at step s simply restarts the schedule at s.
    """

    def __init__(self, n_files: int, seed: int):
        self.n, self.seed = n_files, seed
        self._perm_epoch, self._perm = -1, None

    def item(self, i: int) -> tuple[int, int]:
        epoch, pos = divmod(i, self.n)
        if epoch != self._perm_epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm, self._perm_epoch = torch.randperm(self.n, generator=g).tolist(), epoch
        return self._perm[pos], (self.seed * 2_654_435_761 + i) & 0x7FFFFFFF


class CropDataset(torch.utils.data.Dataset):
    """Indexed by (file index, sample seed). A file that fails to decode now (it passed the header scan) is
    replaced by the next file, deterministically, and counted."""

    def __init__(self, files: list[Path], image_size: int, photo_size: int | None = None):
        self.files, self.size, self.photo_size = files, image_size, photo_size
        self.decode_failures: set[int] = set()

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: tuple[int, int]) -> torch.Tensor:
        idx, sample_seed = key
        rng = random.Random(sample_seed)
        for k in range(len(self.files)):
            j = (idx + k) % len(self.files)
            try:
                return to_tensor(random_crop(load_rgb(self.files[j]), self.size, rng,
                                                 photo_size=self.photo_size))
            except _OPEN_ERRORS:
                self.decode_failures.add(j)
        raise StyleEngineError("no image in the data folder could be decoded")


class ScheduleSampler(torch.utils.data.Sampler):
    """Yields batches of (file index, seed) keys for steps start_step..total_steps-1 of one process."""

    def __init__(self, schedule: Schedule, batch_size: int, start_step: int, total_steps: int,
                 rank: int = 0, world_size: int = 1):
        self.s, self.b, self.start, self.total = schedule, batch_size, start_step, total_steps
        self.rank, self.world = rank, world_size

    def __len__(self) -> int:
        return max(0, self.total - self.start)

    def __iter__(self):
        gb = self.b * self.world
        for step in range(self.start, self.total):
            base = step * gb + self.rank * self.b
            yield [self.s.item(base + j) for j in range(self.b)]


def make_loader(files: list[Path], *, image_size: int, batch_size: int, seed: int, start_step: int,
                total_steps: int, rank: int = 0, world_size: int = 1, workers: int = 0,
                pin_memory: bool = False, photo_size: int | None = None,
                ) -> tuple[torch.utils.data.DataLoader, CropDataset]:
    dataset = CropDataset(files, image_size, photo_size)
    sampler = ScheduleSampler(Schedule(len(files), seed), batch_size, start_step, total_steps, rank, world_size)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, num_workers=workers,
                                         pin_memory=pin_memory, persistent_workers=False,
                                         prefetch_factor=4 if workers > 0 else None)
    return loader, dataset


def load_style_image(path: str | os.PathLike, style_size: int | None) -> torch.Tensor:
    """The style image as float (1, 3, H, W) 0-255, resized so its long side is `style_size` (None: as is)."""
    p = Path(path)
    if not p.is_file():
        raise StyleEngineError(f"style image not found: {p}")
    try:
        im = load_rgb(p)
    except _OPEN_ERRORS as exc:
        raise StyleEngineError(f"{p}: not a readable image ({type(exc).__name__})") from None
    if style_size:
        w, h = im.size
        s = style_size / max(w, h)
        im = im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC, reducing_gap=3.0)
    return to_tensor(im).unsqueeze(0)
