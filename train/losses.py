"""Perceptual losses (Johnson et al. 2016): feature reconstruction (content), Gram style loss, total variation,
the optional temporal-stability regularizer (compound regularization, Wang et al. 2020), and the optional
spectral-peak loss against periodic texture."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from styleengine.core.loss_networks import gram
from styleengine.core.spectrum import PEAK_BAND  # where spectral_peakiness looks; the loss looks there too


def content_loss(y_feat: torch.Tensor, x_feat: torch.Tensor, *, relative: bool = False) -> torch.Tensor:
    """MSE between feature maps; `relative` divides each image's error by its target's mean square
    (scale-free across nets; per image, so a batch split across processes gives the same loss)."""
    y_feat, x_feat = y_feat.float(), x_feat.float()
    if not relative:
        return F.mse_loss(y_feat, x_feat)
    err = (y_feat - x_feat).pow(2).flatten(1).mean(1)
    return (err / x_feat.pow(2).flatten(1).mean(1).clamp_min(1e-8)).mean()


def style_norms(style_grams: dict[str, torch.Tensor], mode: str) -> dict[str, float]:
    """Per-layer divisors: 1 for the paper's Gram MSE, or the style Gram's mean square for "relative"."""
    if mode == "gram-mse":
        return {k: 1.0 for k in style_grams}
    if mode == "relative":
        return {k: float(g.pow(2).mean().clamp_min(1e-12)) for k, g in style_grams.items()}
    raise ValueError(f"unknown style normalization {mode!r}")


def style_loss(y_feats: dict[str, torch.Tensor], style_grams: dict[str, torch.Tensor],
               norms: dict[str, float], layer_weights: dict[str, float] | None = None) -> torch.Tensor:
    """Sum over layers of MSE(Gram(y), Gram(style)) / norm. style_grams are (1, C, C), broadcast over the batch."""
    total = torch.zeros((), device=next(iter(style_grams.values())).device)
    for name, target in style_grams.items():
        g = gram(y_feats[name])
        w = 1.0 if layer_weights is None else layer_weights.get(name, 1.0)
        total = total + w * F.mse_loss(g, target.expand_as(g)) / norms[name]
    return total


def tv_loss(y: torch.Tensor) -> torch.Tensor:
    """Total variation of a 0-255 image, as the mean squared neighbour difference on the 0-1 scale."""
    y = y.float() / 255.0
    dx = y[..., :, 1:] - y[..., :, :-1]
    dy = y[..., 1:, :] - y[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()


PEAK_RING = 0.02  # ring width (cycles/px): about 5 bins of a 128-px crop's (mirrored to 256) spectrum
PEAK_TOP = 0.002  # share of the band's bins whose mean is the peak height


def _without_borders(y: torch.Tensor) -> torch.Tensor:
    """(N, 2H, 2W): the image mirrored into a seamless 2x2 tile (as a DCT extends it), rolled by half a side, so
    its borders lie where a Hann window still weighs them 0.5 and the window's zeros fall inside the picture.
    With the window on the image itself, a texture confined to the outer rows costs nothing, and training
    learns to put it there (a hatched fringe along the edges)."""
    h, w = y.shape[-2:]
    tile = torch.cat([y, y.flip(-1)], -1)
    tile = torch.cat([tile, tile.flip(-2)], -2)
    return tile.roll((h // 2, w // 2), dims=(-2, -1))


def relative_spectrum(img: torch.Tensor) -> torch.Tensor:
    """(N, B): the luminance FFT magnitude of each 0-255 image (N, 3, H, W), mirrored and rolled so that its
    borders count (_without_borders; Hann window), over the mid-band bins, each relative to the median of its
    ring (frequencies of about the same radius; the median is held fixed for the gradient). A periodic texture
    stands out as a few bins far above 1; a photo's spectrum stays near it."""
    rgb = img.float()
    y = rgb[:, 0] * 0.299 + rgb[:, 1] * 0.587 + rgb[:, 2] * 0.114
    y = _without_borders(y - y.mean(dim=(-2, -1), keepdim=True))
    h, w = y.shape[-2:]
    win = torch.outer(torch.hann_window(h, periodic=False, device=y.device),
                      torch.hann_window(w, periodic=False, device=y.device))
    mag = torch.fft.rfft2(y * win).abs()
    fy = torch.fft.fftfreq(h, device=y.device)[:, None]
    fx = torch.fft.rfftfreq(w, device=y.device)[None, :]
    r = torch.sqrt(fy ** 2 + fx ** 2)
    keep = (r >= PEAK_BAND[0]) & (r <= PEAK_BAND[1])
    mag, rings = mag[:, keep], (r[keep] / PEAK_RING).long()
    out = torch.empty_like(mag)
    for ring in rings.unique():
        sel = rings == ring
        out[:, sel] = mag[:, sel] / mag[:, sel].detach().median(dim=1, keepdim=True).values.clamp_min(1e-6)
    return out


def peak_loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """How much higher the output's spectral peaks stand than the photo's: the mean over images of
    relu(log(peak height of y) - log(peak height of x)), the peak height being the mean of the top PEAK_TOP of
    relative_spectrum. Zero where the output is no peakier than its photo, so brush strokes that follow the
    photo cost nothing; a texture repeated across the image does."""
    ry = relative_spectrum(y)
    with torch.no_grad():
        rx = relative_spectrum(x)
    k = max(1, int(PEAK_TOP * ry.shape[1]))
    py, px = ry.topk(k, dim=1).values.mean(1), rx.topk(k, dim=1).values.mean(1)
    return F.relu(torch.log(py) - torch.log(px)).mean()


# ------------------------------------------------------------------------ temporal stability

def random_smooth_warp(n: int, h: int, w: int, *, generator: torch.Generator, device: torch.device | str,
                       max_shift: float = 0.02, max_angle_deg: float = 1.0, max_zoom: float = 0.02,
                       flow_px: float = 1.5, grid: int = 4) -> torch.Tensor:
    """Sampling grids (N, H, W, 2) for F.grid_sample: a small random similarity transform plus a smooth
    random flow (a coarse grid of offsets, bicubically upsampled), imitating camera and object motion."""
    g = generator
    ang = (torch.rand(n, generator=g) * 2 - 1) * math.radians(max_angle_deg)
    zoom = 1 + (torch.rand(n, generator=g) * 2 - 1) * max_zoom
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * max_shift * 2  # normalized coords span 2
    cos, sin = torch.cos(ang) / zoom, torch.sin(ang) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    base = F.affine_grid(theta, [n, 3, h, w], align_corners=False)
    coarse = (torch.rand(n, 2, grid, grid, generator=g) * 2 - 1)
    flow = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)
    flow = flow * torch.tensor([2 * flow_px / w, 2 * flow_px / h])  # pixels -> normalized coords
    return (base + flow).to(device)


def warp(x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def stability_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, generator: torch.Generator,
                   noise_std: float = 2.0) -> torch.Tensor:
    """Compound regularization: L1 between warp(f(x)) and f(warp(x) + noise), on the 0-1 scale.

    `y` is f(x) from the main step (reused, so only one extra forward pass). Borders, where the warp samples
    outside the frame, are cropped so padding never counts as instability.
    """
    n, _, h, w = x.shape
    grid = random_smooth_warp(n, h, w, generator=generator, device=x.device)
    noise = torch.randn(x.shape, generator=generator).to(x.device, x.dtype) * noise_std
    y_warped_input = model(warp(x, grid) + noise)
    target = warp(y, grid)
    m = max(2, int(0.04 * min(h, w)))
    return (y_warped_input.float() - target.float())[..., m:h - m, m:w - m].abs().mean() / 255.0


def shift_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, dy: int, dx: int,
               margin: int = 8) -> torch.Tensor:
    """Shift equivariance: L1 between f(x without its first dy rows and dx columns) and f(x) cropped alike, on
    the 0-1 scale. Two stride-2 stages make the network's output depend on position mod 4, which draws a fixed
    4-px grid over every image; the loss network, also strided, hardly sees it. `y` is f(x) from the main step.
    Borders, where the two inputs' padding differs, are left out."""
    shifted = model(x[..., dy:, dx:])
    h, w = shifted.shape[-2:]
    diff = shifted.float() - y[..., dy:, dx:].float()
    return diff[..., margin:h - margin, margin:w - margin].abs().mean() / 255.0
