"""Picture-quality measures, for the trainer's recipe study, the gallery and `eval flicker`:

- StyleDistance: how far images are from the painting's texture statistics (Gram distance in a loss network);
- ContentDistance: how much of the photo's structure survives (feature distance at a mid-level tap);
- grid_error: how much an output depends on where the photo sits on the pixel grid;
- border_band: how much busier an image's outermost rows and columns are than its interior.

Spectral peakiness (periodic texture) is in core.spectrum. The two distances need torch (EfficientNet-Lite0,
offline weights).
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from PIL import Image

from styleengine.core.errors import StyleEngineError
from styleengine.core.spectrum import luma

METRIC_NET = "efficientnet-lite0"
# Fixed for comparability: the taps the built-ins were first trained with.
METRIC_LAYERS = ("stem", "block1.expand", "block3.expand", "block5.expand", "block8.expand")
CONTENT_LAYER = "block4.expand"  # 1/8 scale: shapes and objects, not the fine texture a style replaces


def grid_error(stylize, photo: np.ndarray, *, size: int = 384, margin: int = 16) -> float:
    """How much a stylization depends on where the photo sits on a pixel grid: the mean |stylize(photo moved by d
    px) - stylize(photo) moved alike| over d = 1, 2, 3 px (rows and columns), 0-255, on a size x size crop,
    borders left out. A shift-equivariant network scores 0; two stride-2 stages let the output depend on
    position mod 4, which shows as a fixed 4-px grid. `stylize`: uint8 HxWx3 -> uint8 HxWx3."""
    crop = np.ascontiguousarray(photo[:size, :size])
    base = stylize(crop).astype(np.float64)
    errs = []
    for d in (1, 2, 3):
        moved = stylize(np.ascontiguousarray(crop[d:, d:])).astype(np.float64)
        diff = moved - base[d:, d:]
        errs.append(float(np.abs(diff[margin:-margin, margin:-margin]).mean()))
    return float(np.mean(errs))


def border_band(image: np.ndarray, *, width: int = 6, inset: int = 16) -> float:
    """Fine detail in the outermost `width` rows and columns over the interior's (more than `inset` px in): mean
    |Laplacian| of luma, the four edges together. Photos score about 0.3-1.5 (their edges are often out of focus);
    a network that paints a checkered band along the borders scores 2 or more."""
    y = luma(image)
    lap = np.abs(4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:])
    band = np.ones(lap.shape, bool)
    band[width:-width, width:-width] = False
    interior = lap[inset:-inset, inset:-inset].mean()
    return float(lap[band].mean() / max(interior, 1e-9))


class ContentDistance:
    """Relative feature error between a photo and its stylization at CONTENT_LAYER (lower = more kept)."""

    def __init__(self, *, max_side: int | None = 640, layer: str = CONTENT_LAYER):
        import torch

        from styleengine.core.loss_networks import build_loss_net

        self._torch, self.layer, self.max_side = torch, layer, max_side
        self.net, _ = build_loss_net(METRIC_NET)

    def __call__(self, photo: np.ndarray, output: np.ndarray) -> float:
        torch = self._torch
        a, b = _fit(photo, self.max_side), _fit(output, self.max_side)
        with torch.no_grad():
            fa = self.net(_tensor(torch, a), {self.layer})[self.layer]
            fb = self.net(_tensor(torch, b), {self.layer})[self.layer]
        return float(((fa - fb) ** 2).mean() / (fa ** 2).mean().clamp_min(1e-12))


def _tensor(torch, img: np.ndarray):
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1).unsqueeze(0).float()


class StyleDistance:
    """Gram distance of images to a style image in EfficientNet-Lite0 (offline ImageNet weights).

    distance = mean over images of sum over METRIC_LAYERS of MSE(Gram(image), Gram(style)) / mean(Gram(style)^2),
    plain Grams (no SWAG): 0 means the image has the painting's texture statistics, larger is less painting-like.
    The layers are fixed here, not the trainer's current defaults, so numbers stay comparable across recipes.
    Needs torch.
    """

    def __init__(self, style_image, *, style_size: int | None = 512, max_side: int | None = 640,
                 random_weights: bool = False, layers: tuple[str, ...] = METRIC_LAYERS):
        import torch

        from styleengine.core.loss_networks import build_loss_net, gram

        self._torch, self._gram = torch, gram
        self.layers = tuple(layers)
        self.net, self.loss_net = build_loss_net(METRIC_NET, random_weights=random_weights)
        self.max_side = max_side
        style = _as_rgb_array(style_image)
        style = _fit(style, style_size)
        with torch.no_grad():
            feats = self.net(_tensor(torch, style), set(self.layers))
            self.targets = {k: gram(feats[k]) for k in self.layers}
        self.norms = {k: float(g.pow(2).mean().clamp_min(1e-12)) for k, g in self.targets.items()}

    def image(self, img: np.ndarray) -> float:
        torch = self._torch
        img = _fit(img, self.max_side)
        with torch.no_grad():
            feats = self.net(_tensor(torch, img), set(self.layers))
            return float(sum(((self._gram(feats[k]) - self.targets[k]) ** 2).mean() / self.norms[k]
                             for k in self.layers))

    def __call__(self, images: Iterable[np.ndarray]) -> float:
        vals = [self.image(i) for i in images]
        if not vals:
            raise ValueError("no images to measure")
        return float(np.mean(vals))


def _as_rgb_array(image) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    try:
        with Image.open(image) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise StyleEngineError(f"cannot read style image {image}: {exc}") from None


def _fit(img: np.ndarray, max_side: int | None) -> np.ndarray:
    """Downscale (area filter) so the long side is at most max_side."""
    if not max_side or max(img.shape[:2]) <= max_side:
        return img
    h, w = img.shape[:2]
    s = max_side / max(h, w)
    return np.asarray(Image.fromarray(img).resize((max(1, round(w * s)), max(1, round(h * s))), Image.BOX))
