"""The transformation network (Johnson et al. 2016, pytorch/examples layout) and its presets.

Module names match pytorch/examples' TransformerNet (conv1.conv2d, in1, ..., res1..resN, deconv1..3) so
their state dicts load unchanged. The network works on float RGB NCHW in the 0-255 range, like theirs.
Any input size works: the input is reflection-padded to a multiple of 4 and the output cropped back.

Trained networks can paint the outermost 6-7 rows and columns as a checkered band (fine detail 1.3-2x the
interior's on four of the built-ins). With a `margin`, the input is reflection-padded by that many pixels on every side and the output
cropped back, so the band falls in the margin; a multiple of 4 keeps the 4-px phase below aligned.

The two stride-2 stages let a trained network add a small pattern locked to the pixel position mod 4
(core.phase_pattern). With `phase_bias`, the network carries a (3, 4, 4) output bias, tiled over the image, that
cancels it; core.phase_bias measures it on photos.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .phase_pattern import BIAS_SHAPE, PHASE

# The margin is added in reflections of this many pixels: each needs a side longer than it, which the padding to a
# multiple of 4 gives every input of MIN_SIDE or more, and a multiple of the 4-px phase keeps the phase bias aligned.
MARGIN_STEP = PHASE


@dataclass(frozen=True)
class ArchConfig:
    """Everything needed to rebuild the network; stored inside every checkpoint."""

    preset: str = "johnson"
    widths: tuple[int, int, int] = (32, 64, 128)
    blocks: int = 5
    phase_bias: bool = False  # a (3, 4, 4) output bias tiled over the image (module doc)
    margin: int = 0  # px of reflected input around the image, cropped from the output (module doc)

    def __post_init__(self) -> None:
        if isinstance(self.margin, bool) or not isinstance(self.margin, int) or self.margin < 0 \
                or self.margin % MARGIN_STEP:
            raise ValueError(f"margin must be a multiple of {MARGIN_STEP} pixels >= 0 (got {self.margin!r})")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        for key in ("phase_bias", "margin"):  # written only when set, so such files stay readable by older versions
            if not d[key]:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ArchConfig":
        unknown = set(d) - {"preset", "widths", "blocks", "phase_bias", "margin"}
        if unknown:
            raise ValueError(f"architecture config has fields this version does not know: {sorted(unknown)} "
                             "(written by a newer styleengine?)")
        try:
            widths = tuple(int(w) for w in d["widths"])
            blocks = int(d["blocks"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"invalid architecture config {d!r}") from exc
        phase_bias = d.get("phase_bias", False)
        if len(widths) != 3 or min(widths) < 1 or blocks < 0 or not isinstance(phase_bias, bool):
            raise ValueError(f"invalid architecture config {d!r}")
        try:
            return cls(preset=str(d.get("preset", "custom")), widths=widths, blocks=blocks, phase_bias=phase_bias,
                       margin=d.get("margin", 0))
        except ValueError as exc:
            raise ValueError(f"invalid architecture config {d!r}: {exc}") from None


PRESETS: dict[str, ArchConfig] = {
    # The paper / pytorch-examples network: 1,679,235 parameters.
    "johnson": ArchConfig("johnson", (32, 64, 128), 5),
    # Half width (Johnson's released instance-norm models): 424,899 parameters, ~3.6x fewer MACs.
    "fast": ArchConfig("fast", (16, 32, 64), 5),
}
DEFAULT_PRESET = "johnson"


def preset(name: str) -> ArchConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None


class ConvLayer(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel // 2)
        self.conv2d = nn.Conv2d(cin, cout, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2d(self.reflection_pad(x))


class UpsampleConvLayer(nn.Module):
    """Nearest x2 upsample then conv: avoids the checkerboard of transposed convs."""

    def __init__(self, cin: int, cout: int, kernel: int):
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel // 2)
        self.conv2d = nn.Conv2d(cin, cout, kernel, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = ConvLayer(ch, ch, 3, 1)
        self.in1 = nn.InstanceNorm2d(ch, affine=True)
        self.conv2 = ConvLayer(ch, ch, 3, 1)
        self.in2 = nn.InstanceNorm2d(ch, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.in1(self.conv1(x)))
        return x + self.in2(self.conv2(y))


class TransformerNet(nn.Module):
    def __init__(self, config: ArchConfig | None = None):
        super().__init__()
        self.config = config or PRESETS[DEFAULT_PRESET]
        w1, w2, w3 = self.config.widths
        self.conv1 = ConvLayer(3, w1, 9, 1)
        self.in1 = nn.InstanceNorm2d(w1, affine=True)
        self.conv2 = ConvLayer(w1, w2, 3, 2)
        self.in2 = nn.InstanceNorm2d(w2, affine=True)
        self.conv3 = ConvLayer(w2, w3, 3, 2)
        self.in3 = nn.InstanceNorm2d(w3, affine=True)
        for i in range(1, self.config.blocks + 1):
            self.add_module(f"res{i}", ResidualBlock(w3))
        self.deconv1 = UpsampleConvLayer(w3, w2, 3)
        self.in4 = nn.InstanceNorm2d(w2, affine=True)
        self.deconv2 = UpsampleConvLayer(w2, w1, 3)
        self.in5 = nn.InstanceNorm2d(w1, affine=True)
        self.deconv3 = ConvLayer(w1, 3, 9, 1)
        if self.config.phase_bias:
            # Stored in the shape it is added in, so exported graphs keep it as one named weight ("net.phase_bias").
            self.register_buffer("phase_bias", torch.zeros(BIAS_SHAPE))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: float (N, 3, H, W) in 0-255. Returns (N, 3, H, W), roughly 0-255, unclamped."""
        h, w = x.shape[-2], x.shape[-1]
        # Two stride-2 convs and two x2 upsamples only round-trip sizes divisible by 4. Padding and cropping
        # unconditionally (often by 0) keeps the exported graph free of shape-dependent branches.
        x = F.pad(x, (0, (4 - w % 4) % 4, 0, (4 - h % 4) % 4), mode="reflect")
        m = self.config.margin
        for _ in range(m // MARGIN_STEP):
            x = F.pad(x, (MARGIN_STEP,) * 4, mode="reflect")
        y = F.relu(self.in1(self.conv1(x)))
        y = F.relu(self.in2(self.conv2(y)))
        y = F.relu(self.in3(self.conv3(y)))
        for i in range(1, self.config.blocks + 1):
            y = getattr(self, f"res{i}")(y)
        y = F.relu(self.in4(self.deconv1(y)))
        y = F.relu(self.in5(self.deconv2(y)))
        y = self.deconv3(y)
        if self.config.phase_bias:
            # A broadcast over (rows/4, 4, cols/4, 4) views: no tiled copy of the bias is made.
            n, c, hp, wp = y.shape
            y = (y.reshape(n, c, hp // PHASE, PHASE, wp // PHASE, PHASE) + self.phase_bias).reshape(n, c, hp, wp)
        return y[..., m:m + h, m:m + w]


def with_margin(model: TransformerNet, margin: int) -> TransformerNet:
    """A copy of `model` (same weights, same mode) that adds `margin` px of reflected input (ArchConfig.margin)."""
    new = TransformerNet(replace(model.config, margin=margin)).to(next(model.parameters()).device)
    new.load_state_dict(model.state_dict())
    return new.train(model.training)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def macs_per_pixel(config: ArchConfig) -> float:
    """Multiply-accumulates per input pixel (convs only), for FLOP and roofline reporting."""
    w1, w2, w3 = config.widths
    full = 81 * 3 * w1 + 81 * w1 * 3  # conv1 and deconv3 at full resolution
    full += 9 * w2 * w1  # deconv2 conv at full resolution
    half = 9 * w1 * w2 + 9 * w3 * w2  # conv2 output and deconv1 conv at 1/2 resolution
    quarter = 9 * w2 * w3 + config.blocks * 2 * 9 * w3 * w3  # conv3 and residual blocks at 1/4
    return full + half / 4 + quarter / 16
