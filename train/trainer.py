"""The trainer: one style image + a folder of photos -> a self-describing transformation network file.

    from styleengine.train.trainer import TrainConfig, train
    result = train(TrainConfig("starry_night.jpg", "photos/", "starry.pt", preset="fast",
                               loss_net="efficientnet-lite0", steps=2000))

Paper defaults (Johnson et al. 2016): 256 px crops, batch 4, Adam lr 1e-3, 2 epochs (40k steps on COCO),
VGG16 relu2_2 content / relu1_2..relu4_3 style. Loss weights, taps and SWAG default per loss network
(core.loss_networks.LossNetDefaults); for efficientnet-lite0 they are the recipe benchmarks/recipe_study.py chose
(its results are under benchmarks/results/recipe/).

Speed paths: CUDA AMP (bf16 where supported, else fp16 with a GradScaler), channels_last, cudnn autotuning,
fused Adam, the style Grams computed once, worker processes for decoding. On the CPU: FP32, with the
3-channel output conv in channels_last (oneDNN's fast kernel for it).

Weight averaging (`average_from`): the saved model is the mean of the weights at every `average_every`-th step
from `average_from` on and at the last step (stochastic weight averaging, Izmailov et al. 2018, through
torch.optim.swa_utils): at a constant learning rate the weights wander around a minimum, and one snapshot's
look is partly that wander.

Resumable: a train state (model, optimizer, scaler, step, RNG states) is written atomically every
`checkpoint_every` steps and on Ctrl-C; the data order and every random draw are functions of (seed, step),
so `resume=True` after a kill -9 continues exactly, losing only the steps since the last checkpoint.
While it runs: progress through the core progress hook, a JSONL loss log, a growing preview grid and a
loss-curve PNG (train/preview.py).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel

from styleengine.core import phase_bias
from styleengine.core.checkpoint import TRAIN_STATE_FORMAT, load_checkpoint, save_model
from styleengine.core.errors import Interrupted, StyleEngineError
from styleengine.core.fsutil import atomic_path, sha256_file
from styleengine.core.log import log, progress
from styleengine.core.loss_networks import (
    DEFAULT_LOSS_NET,
    build_loss_net,
    gram,
    loss_net_defaults,
    swag,
)
from styleengine.core.network import ArchConfig, TransformerNet, with_margin
from styleengine.core.network import preset as preset_config
from styleengine.core.shapes import MIN_SIDE

from . import distributed as dist_util
from .data import load_rgb, load_style_image, make_loader, scan_images
from .losses import content_loss, peak_loss, shift_loss, stability_loss, style_loss, style_norms, tv_loss
from .norm_spikes import norm_inputs, norm_spike_loss
from .preview import SERIES, PreviewGrid, plot_losses, read_log

MIN_DEFAULT_STEPS = 2000
# 8 px: the band is 6-7 rows deep on the built-ins; costs 3.5% more pixels at 720p.
DEFAULT_MARGIN = 8
LOSS_PARTS = tuple(name for name, _colour in SERIES)  # the log's columns, as the loss plot draws them
PREVIEW_PHOTOS = 3
PHASE_PHOTOS = 24  # the phase bias is measured on 16 of them (the pattern barely varies) and checked on 8
# Settings that must match when resuming (anything else, e.g. the step count, may change).
_RESUME_KEYS = ("arch", "loss_net", "style_sha256", "style_size", "image_size", "photo_size", "global_batch",
                "seed", "lr", "content_weight", "style_weight", "tv_weight", "stability_weight", "shift_weight",
                "peak_weight", "spike_weight", "plain_steps", "plain_style_weight", "content_layers", "style_layers",
                "style_norm", "swag_temperature", "init_from", "loss_jitter", "average_from", "average_every")
# Values a key had before it was recorded, so train states from older versions still resume.
_RESUME_DEFAULTS = {"photo_size": None, "shift_weight": 0.0, "peak_weight": 0.0, "spike_weight": 0.0, "plain_steps": 0,
                    "plain_style_weight": None, "swag_temperature": 0.0, "init_from": None, "loss_jitter": 0,
                    "average_from": None, "average_every": None}


@dataclass
class TrainConfig:
    """One training run. The recipe part is stored, resolved, in the model file (`train_config`)."""

    style_image: Path
    data_dir: Path
    output: Path
    # network
    preset: str = "johnson"
    arch: ArchConfig | None = None
    # loss network and recipe (None: the loss network's defaults)
    loss_net: str = DEFAULT_LOSS_NET
    loss_weights: Path | None = None
    random_loss_net: bool = False
    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 4
    image_size: int = 256
    photo_size: int | None = None  # crops from photos resized to this short side (None: whole photos, image_size)
    style_size: int | None = 768
    lr: float = 1e-3
    content_weight: float | None = None
    style_weight: float | None = None
    tv_weight: float | None = None
    content_layers: tuple[str, ...] | None = None
    style_layers: tuple[str, ...] | None = None
    swag_temperature: float | None = None
    loss_jitter: int | None = None  # random 0..N-1 px shift of output and photo before the loss network
    stability_weight: float = 0.0
    shift_weight: float | None = None  # shift-equivariance loss (losses.shift_loss); None: the loss net's default
    peak_weight: float | None = None  # spectral-peak loss against periodic texture (losses.peak_loss)
    spike_weight: float = 0.0  # instance-norm spike loss against blob artefacts (norm_spikes.norm_spike_loss)
    # Steps before loss jitter, the shift loss and the peak loss switch on (None: the loss net's default). From
    # a random network those terms hold the output flat; a network that already paints keeps its strokes.
    plain_steps: int | None = None
    plain_style_weight: float | None = None  # style weight during the plain steps (None: the loss net's default)
    seed: int = 0
    init_from: Path | None = None  # start from this model's weights (fine-tuning; same architecture)
    # Save the mean of the weights at steps average_from, +average_every, ... and the last (None: the last only).
    average_from: int | None = None
    average_every: int = 100
    # Reflected input the saved model adds around every image and crops from its output (core.network's margin):
    # the border band trained networks paint falls outside the picture. A multiple of 4 (None: DEFAULT_MARGIN);
    # training runs without it (13% more pixels per 256-px crop for a band the losses see either way).
    margin: int | None = None
    # what the run writes beside the output
    checkpoint_every: int = 500
    preview_every: int | None = None  # default: checkpoint_every; 0 = off
    preview_images: tuple[Path, ...] = ()  # default: the first photos of the data folder
    log: Path | None = None  # default: <output stem>.log.jsonl
    log_every: int = 10
    state_path: Path | None = None  # default: <output stem>.train-state.pt
    # where it runs
    device: str = "auto"
    amp: str = "auto"
    channels_last: bool | None = None
    workers: int | None = None
    # what the model file says about itself
    style_name: str | None = None
    attribution: str | None = None
    half: bool = False

    def __post_init__(self) -> None:
        for name in ("style_image", "data_dir", "output", "loss_weights", "log", "state_path", "init_from"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                setattr(self, name, Path(value))
        self.preview_images = tuple(Path(p) for p in self.preview_images or ())
        for name in ("content_layers", "style_layers"):
            if getattr(self, name) is not None:
                setattr(self, name, tuple(getattr(self, name)))

    @classmethod
    def from_options(cls, **options: Any) -> "TrainConfig":
        """From keyword options named like the fields (the CLI's); unknown names are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise StyleEngineError(f"unknown training options: {', '.join(unknown)}")
        return cls(**options)

    @property
    def state_file(self) -> Path:
        return self.state_path or default_state_path(self.output)

    @property
    def log_file(self) -> Path:
        return self.log or self.output.with_name(self.output.stem + ".log.jsonl")

    @property
    def preview_dir(self) -> Path:
        return self.output.with_name(self.output.stem + ".previews")

    @property
    def loss_plot(self) -> Path:
        return self.output.with_name(self.output.stem + ".loss.png")

    def validate(self) -> None:
        if self.output.suffix.lower() not in (".pt", ".pth"):
            raise StyleEngineError(f"output must be a .pt or .pth file: {self.output}")
        if not self.output.parent.is_dir():
            raise StyleEngineError(f"output folder does not exist: {self.output.parent}")
        for name in ("batch_size", "image_size", "log_every"):
            if getattr(self, name) < 1:
                raise StyleEngineError(f"{name} must be >= 1 (got {getattr(self, name)})")
        if self.image_size < 32:
            raise StyleEngineError(f"image_size must be >= 32 (got {self.image_size})")
        if self.photo_size is not None and self.photo_size < self.image_size:
            raise StyleEngineError(f"photo_size must be >= image_size {self.image_size} (got {self.photo_size})")
        if self.style_size is not None and self.style_size < 16:
            raise StyleEngineError(f"style_size must be >= 16 (got {self.style_size})")
        if self.lr <= 0:
            raise StyleEngineError(f"lr must be > 0 (got {self.lr})")
        if self.stability_weight < 0:
            raise StyleEngineError(f"stability_weight must be >= 0 (got {self.stability_weight})")
        if self.shift_weight is not None and self.shift_weight < 0:
            raise StyleEngineError(f"shift_weight must be >= 0 (got {self.shift_weight})")
        if self.peak_weight is not None and self.peak_weight < 0:
            raise StyleEngineError(f"peak_weight must be >= 0 (got {self.peak_weight})")
        if self.spike_weight < 0:
            raise StyleEngineError(f"spike_weight must be >= 0 (got {self.spike_weight})")
        if self.plain_steps is not None and self.plain_steps < 0:
            raise StyleEngineError(f"plain_steps must be >= 0 (got {self.plain_steps})")
        if self.plain_style_weight is not None and self.plain_style_weight < 0:
            raise StyleEngineError(f"plain_style_weight must be >= 0 (got {self.plain_style_weight})")
        if self.average_from is not None and self.average_from < 1:
            raise StyleEngineError(f"average_from must be >= 1 (got {self.average_from})")
        if self.average_every < 1:
            raise StyleEngineError(f"average_every must be >= 1 (got {self.average_every})")
        if self.margin is not None:
            try:  # the network's own rule
                ArchConfig(margin=self.margin)
            except ValueError as exc:
                raise StyleEngineError(str(exc)) from None
        if self.steps is not None and self.steps < 1:
            raise StyleEngineError(f"steps must be >= 1 (got {self.steps})")
        if self.epochs is not None and self.epochs <= 0:
            raise StyleEngineError(f"epochs must be > 0 (got {self.epochs})")
        if self.steps is not None and self.epochs is not None:
            raise StyleEngineError("give steps or epochs, not both")
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise StyleEngineError(f"unknown amp mode {self.amp!r}; choose auto, bf16, fp16 or off")


@dataclass
class TrainResult:
    path: Path  # the model file, or the train state when the run stopped early (stop_after)
    steps: int
    state_path: Path
    log_path: Path | None
    final_losses: dict[str, float]
    skipped_files: int
    seconds: float
    finished: bool = True
    previews: Path | None = None
    loss_plot: Path | None = None
    notes: list[str] = field(default_factory=list)


def default_state_path(output: Path) -> Path:
    return output.with_name(output.stem + ".train-state.pt")


def _resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or amp == "off":
        if amp in ("bf16", "fp16") and device.type != "cuda":
            raise StyleEngineError(f"--amp {amp} needs a CUDA device (this run uses {device})")
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if amp == "bf16" else torch.float16


def _step_generator(seed: int, step: int, rank: int, stream: int = 0) -> torch.Generator:
    """Randomness for one step (stability warps/noise, shifts) derived from (seed, step, rank, stream): exactly
    resumable; each use has its own stream so switching one on does not change the others' draws."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 131 + rank + stream * 1_000_000_007)


class _Log:
    """JSONL loss log, rank 0 only. On resume, entries past the resumed step are dropped."""

    def __init__(self, path: Path | None, resume_step: int):
        self.path = path
        self.f = None
        if path is None:
            return
        if resume_step > 0 and path.exists():
            kept = [json.dumps(r) for r in read_log(path) if r.get("step", 0) <= resume_step]
            with atomic_path(path) as tmp:
                tmp.write_text("".join(k + "\n" for k in kept))
            self.f = open(path, "a")
        else:
            self.f = open(path, "w")

    def write(self, record: dict) -> None:
        if self.f:
            self.f.write(json.dumps(record) + "\n")
            self.f.flush()

    def close(self) -> None:
        if self.f:
            self.f.close()


def _preview_photo(path: Path, size: int) -> np.ndarray:
    """A preview photo scaled so its short side is the training crop size (the scale strokes are learned at)."""
    im = load_rgb(path)
    w, h = im.size
    s = size / min(w, h)
    return np.array(im.resize((max(MIN_SIDE, round(w * s)), max(MIN_SIDE, round(h * s)))))


def _init_output_layer(model: TransformerNet, style: torch.Tensor, image_size: int, target_std: float = 40.0) -> None:
    """Start from a visible image instead of black: the pytorch/examples network (no output tanh, unlike the
    Lua original's 150*tanh) begins with outputs near 0, and Adam needs thousands of steps at lr 1e-3 to grow
    the last layer to the 0-255 range. Setting the last bias to the style's mean colour and scaling its weights
    so the output spread is ~target_std makes short runs useful; long runs end in the same place."""
    conv = model.deconv3.conv2d
    with torch.no_grad():
        probe = F.interpolate(style, size=(min(64, image_size),) * 2, mode="bilinear", align_corners=False)
        conv.bias.zero_()
        spread = model(probe).std().clamp_min(1e-6)
        conv.weight.mul_(target_std / spread)
        conv.bias.copy_(style.mean(dim=(0, 2, 3)))


def jitter(y: torch.Tensor, x: torch.Tensor, pixels: int, generator: torch.Generator):
    """Both images cropped by the same random offset of 0..pixels-1 rows and columns before the loss network.

    The loss network's stride-2 convolutions see a pattern on a fixed pixel grid (the 4-px line grid of the
    generator's own stride-2 convolutions and x2 upsamplings) the same way every step, so such a pattern can lower
    the style loss; shifting the sampling phase every step takes that reward away. 0 = off."""
    if pixels <= 1:
        return y, x
    dy, dx = (int(v) for v in torch.randint(0, pixels, (2,), generator=generator))
    h, w = y.shape[-2] - pixels + 1, y.shape[-1] - pixels + 1
    return y[..., dy:dy + h, dx:dx + w], x[..., dy:dy + h, dx:dx + w]


def _output_conv_channels_last(model: TransformerNet) -> None:
    """oneDNN's NCHW backward for the 3-channel 9x9 output conv is ~4x slower than its channels_last one and
    takes ~40% of a CPU step; converting just that conv's input is 1.4-1.6x per step (other layers are
    faster in NCHW on CPU). The output goes back to NCHW so the loss network runs as before."""
    conv = model.deconv3.conv2d
    conv.register_forward_pre_hook(lambda _m, args: (args[0].contiguous(memory_format=torch.channels_last),))
    conv.register_forward_hook(lambda _m, _args, out: out.contiguous())


def _cpu_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's state on the CPU, detached from the training tensors (for a train state)."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def phase_photos(files: list[Path]) -> list[np.ndarray]:
    """The first PHASE_PHOTOS photos that decode: what the phase bias is measured and checked on."""
    photos = []
    for path in files:
        try:
            photos.append(np.array(load_rgb(path)))
        except (OSError, ValueError):  # decoded fine when scanned; a file changed since is skipped here too
            continue
        if len(photos) == PHASE_PHOTOS:
            break
    return photos


def _preset(name: str) -> ArchConfig:
    try:
        return preset_config(name)
    except ValueError as exc:
        raise StyleEngineError(str(exc)) from None


class Trainer:
    """One run: set up (loss network, style targets, model, optimizer, data), then step until done."""

    def __init__(self, cfg: TrainConfig, *, resume: bool, overwrite: bool, stop_after: int | None):
        cfg.validate()
        self.cfg, self.resume, self.stop_after = cfg, resume, stop_after
        self.t_start = time.time()
        # Trained without the phase bias; finish() measures it on the photos and adds it where it helps
        # (core.phase_bias).
        # Trained without the margin too (finish() adds it to the saved model).
        self.arch = replace(cfg.arch or _preset(cfg.preset), phase_bias=False, margin=0)
        self.margin = DEFAULT_MARGIN if cfg.margin is None else cfg.margin
        defaults = loss_net_defaults(cfg.loss_net)
        self.content_layers = tuple(cfg.content_layers or defaults.content_layers)
        self.style_layers = tuple(cfg.style_layers or defaults.style_layers)
        self.cw = defaults.content_weight if cfg.content_weight is None else float(cfg.content_weight)
        self.sw = defaults.style_weight if cfg.style_weight is None else float(cfg.style_weight)
        self.tw = defaults.tv_weight if cfg.tv_weight is None else float(cfg.tv_weight)
        self.swag_t = defaults.swag_temperature if cfg.swag_temperature is None else float(cfg.swag_temperature)
        self.jitter = defaults.loss_jitter if cfg.loss_jitter is None else int(cfg.loss_jitter)
        self.shift_w = defaults.shift_weight if cfg.shift_weight is None else float(cfg.shift_weight)
        self.peak_w = defaults.peak_weight if cfg.peak_weight is None else float(cfg.peak_weight)
        self.plain_steps = defaults.plain_steps if cfg.plain_steps is None else int(cfg.plain_steps)
        plain_sw = defaults.plain_style_weight if cfg.plain_style_weight is None else cfg.plain_style_weight
        # Recorded as None where it does not apply: no plain steps, or the style weight itself.
        self.plain_sw = (None if self.plain_steps == 0 or plain_sw is None or float(plain_sw) == self.sw
                         else float(plain_sw))
        self.style_norm = defaults.style_norm
        self.dev = dist_util.local_device(cfg.device)
        if self.dev.type == "cuda" and not torch.cuda.is_available():
            raise StyleEngineError("device cuda requested but no CUDA GPU is available")
        if not resume and cfg.output.exists() and not overwrite:
            raise StyleEngineError(f"output exists (use --overwrite): {cfg.output}")
        if not resume and cfg.state_file.exists() and not overwrite:
            raise StyleEngineError(f"a train state from an earlier run exists: {cfg.state_file}; pass --resume to "
                                   f"continue it or --overwrite to start over")

    # ------------------------------------------------------------------------------------------ set-up
    def setup(self) -> None:
        cfg, dev = self.cfg, self.dev
        self.info = dist_util.init(dev)
        if dev.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: autotuned conv algorithms pay off
        self.main = self.info.is_main
        self.amp_dtype = _resolve_amp(cfg.amp, dev)
        self.use_cl = (dev.type == "cuda") if cfg.channels_last is None else bool(cfg.channels_last)
        workers = cfg.workers
        if workers is None:
            workers = min(8, (os.cpu_count() or 2) // max(1, self.info.world_size)) if dev.type == "cuda" else 0
        self.style = load_style_image(cfg.style_image, cfg.style_size)
        self.scan = scan_images(cfg.data_dir, min_side=MIN_SIDE)
        self.global_batch = cfg.batch_size * self.info.world_size
        if cfg.steps is not None:
            self.total_steps = cfg.steps
        elif cfg.epochs is not None:
            self.total_steps = max(1, math.ceil(cfg.epochs * len(self.scan.files) / self.global_batch))
        else:  # the paper's 2 epochs (40k steps on COCO), but never a uselessly short run on a small folder
            self.total_steps = max(MIN_DEFAULT_STEPS, math.ceil(2 * len(self.scan.files) / self.global_batch))

        net, self.net_desc = build_loss_net(cfg.loss_net, loss_weights=cfg.loss_weights,
                                            random_weights=cfg.random_loss_net, seed=cfg.seed)
        for name in self.content_layers + self.style_layers:  # validate taps up front: one-line error
            try:
                net.check_tap(name)
            except ValueError:
                raise StyleEngineError(f"unknown layer {name!r} for loss network {cfg.loss_net}") from None
        self.net = net.to(dev)
        if self.use_cl:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.init = None
        if cfg.init_from is not None:
            self.init = load_checkpoint(cfg.init_from)
            if replace(self.init.arch, phase_bias=False, margin=0) != self.arch:
                raise StyleEngineError(f"--init-from {cfg.init_from}: a {self.init.arch.preset} network "
                                       f"{list(self.init.arch.widths)}, not the {self.arch.preset} network trained here")
        self.config = self.recipe()
        with torch.no_grad():  # the style targets: computed once, kept in fp32
            sfeats = self.net(self.style.to(dev), set(self.style_layers))
            self.style_grams = {k: gram(swag(sfeats[k], self.swag_t)) for k in self.style_layers}
        self.norms = style_norms(self.style_grams, self.style_norm)

        torch.manual_seed(cfg.seed)
        model = TransformerNet(self.arch)
        if self.init is not None:
            model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in self.init.state_dict.items()
                                   if k != "phase_bias"})
        else:
            _init_output_layer(model, self.style, cfg.image_size)
        model = model.to(dev)
        if self.use_cl:
            model = model.to(memory_format=torch.channels_last)
        elif dev.type == "cpu":
            _output_conv_channels_last(model)
        self.model = model
        fused = {"fused": True} if dev.type == "cuda" else {}
        self.optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, **fused)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.averaged = AveragedModel(model) if cfg.average_from is not None else None
        self.start_step = 0
        if self.resume and cfg.state_file.exists():
            self.start_step = self._restore(cfg.state_file)
        elif self.resume and self.main:
            log.info("no train state at %s; starting from step 0", cfg.state_file)
        if self.start_step > self.total_steps:
            raise StyleEngineError(f"the train state is at step {self.start_step}, past the requested "
                                   f"{self.total_steps} steps")
        if cfg.average_from is not None and cfg.average_from > self.total_steps:
            raise StyleEngineError(f"average_from {cfg.average_from} is past the last step ({self.total_steps})")
        self.ddp_model = dist_util.wrap(model, self.info, dev)
        self.end_step = self.total_steps if self.stop_after is None else min(self.total_steps,
                                                                             self.start_step + self.stop_after)
        self.loader, self.dataset = make_loader(
            self.scan.files, image_size=cfg.image_size, batch_size=cfg.batch_size, seed=cfg.seed,
            start_step=self.start_step, total_steps=self.end_step, rank=self.info.rank,
            world_size=self.info.world_size, workers=workers, pin_memory=dev.type == "cuda",
            photo_size=cfg.photo_size)
        self.preview_every = cfg.checkpoint_every if cfg.preview_every is None else cfg.preview_every
        self.grid = None
        if self.main and self.preview_every:
            photos = list(cfg.preview_images) or self.scan.files[:PREVIEW_PHOTOS]
            self.preview_inputs = [_preview_photo(p, cfg.image_size) for p in photos]
            self.grid = PreviewGrid(cfg.preview_dir, self.style[0].permute(1, 2, 0).round().byte().numpy(),
                                    self.preview_inputs)
        self.style_meta = {"name": cfg.style_name or cfg.style_image.stem, "image": cfg.style_image.name,
                           "image_sha256": self.config["style_sha256"]}
        if cfg.attribution:
            self.style_meta["attribution"] = cfg.attribution

    def recipe(self) -> dict[str, Any]:
        """What the model file records as its train_config (resolved; resume compares part of it)."""
        cfg = self.cfg
        return {
            "arch": self.arch.to_dict(), "loss_net": self.net_desc, "style_sha256": sha256_file(cfg.style_image),
            "style_size": cfg.style_size, "image_size": cfg.image_size, "photo_size": cfg.photo_size,
            "batch_size": cfg.batch_size,
            "world_size": self.info.world_size, "global_batch": self.global_batch, "steps": self.total_steps,
            "lr": cfg.lr, "content_weight": self.cw, "style_weight": self.sw, "tv_weight": self.tw,
            "stability_weight": float(cfg.stability_weight), "shift_weight": self.shift_w,
            "peak_weight": self.peak_w, "spike_weight": float(cfg.spike_weight), "plain_steps": self.plain_steps,
            "plain_style_weight": self.plain_sw,
            "content_layers": list(self.content_layers),
            "style_layers": list(self.style_layers), "style_norm": self.style_norm, "swag_temperature": self.swag_t,
            "loss_jitter": self.jitter,
            "average_from": cfg.average_from,
            "average_every": None if cfg.average_from is None else cfg.average_every,
            "seed": cfg.seed, "dataset_images": len(self.scan.files),
            "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off",
            "channels_last": self.use_cl, "device": self.dev.type,
            "output_init": "style-mean" if self.init is None else "init_from",
            "init_from": None if self.init is None else {"name": self.init.style_name, "sha256": self.init.sha256,
                                                         "steps": self.init.train_config.get("steps")},
        }

    def _restore(self, path: Path) -> int:
        ckpt = load_checkpoint(path)
        raw = ckpt.raw
        if raw.get("format") != TRAIN_STATE_FORMAT:
            raise StyleEngineError(f"{path}: not a train state (format {raw.get('format')!r})")
        old = raw.get("train_config", {})
        for key in _RESUME_KEYS:
            if old.get(key, _RESUME_DEFAULTS.get(key)) != self.config.get(key):
                raise StyleEngineError(f"{path} was made with different settings ({key}: {old.get(key)!r} vs now "
                                       f"{self.config.get(key)!r}); use the same options or start over with --overwrite")
        self.model.load_state_dict(ckpt.state_dict)
        self.optimizer.load_state_dict(raw["optimizer"])
        self.scaler.load_state_dict(raw["scaler"])
        if self.averaged is not None and raw.get("averaged") is not None:
            self.averaged.load_state_dict(raw["averaged"])
        rng = raw.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if rng.get("python"):
            random.setstate((3, tuple(rng["python"]), None))
        if self.dev.type == "cuda" and rng.get("cuda"):
            torch.cuda.set_rng_state_all(rng["cuda"])
        return int(raw["step"])

    # -------------------------------------------------------------------------------------- the loop
    def loss(self, x: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(total loss, stacked LOSS_PARTS for the log) for one batch."""
        dev, amp = self.dev, self.amp_dtype
        texture = step >= self.plain_steps  # jitter, shift and peak terms on
        with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None), \
                (norm_inputs(self.model) if self.cfg.spike_weight > 0 else contextlib.nullcontext([])) as norm_acts:
            y = self.ddp_model(x)
            # One shift per global batch (rank 0's draw on every rank), as a single process would make it.
            ys, xs = jitter(y, x, self.jitter if texture else 0, _step_generator(self.cfg.seed, step, 0))
            yfeats = self.net(ys, set(self.style_layers) | set(self.content_layers))
            with torch.no_grad():
                xfeats = self.net(xs, set(self.content_layers))
        relative = self.style_norm == "relative"
        l_content = sum(content_loss(swag(yfeats[k], self.swag_t), swag(xfeats[k], self.swag_t), relative=relative)
                        for k in self.content_layers)
        l_style = style_loss({k: swag(yfeats[k], self.swag_t) for k in self.style_layers}, self.style_grams,
                             self.norms)
        l_tv = tv_loss(y)
        sw = self.sw if texture or self.plain_sw is None else self.plain_sw
        loss = self.cw * l_content + sw * l_style + self.tw * l_tv
        l_stab = torch.zeros((), device=dev)
        if self.cfg.stability_weight > 0:
            # The bare module: DDP's reducer still averages these gradients (its hooks sit on the parameters),
            # and a second DDP forward per backward is not allowed.
            with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
                l_stab = stability_loss(self.model, x, y, generator=_step_generator(self.cfg.seed, step,
                                                                                      self.info.rank))
            loss = loss + self.cfg.stability_weight * l_stab
        l_shift = torch.zeros((), device=dev)
        if self.shift_w > 0 and texture:
            # One shift per global batch, as for the jitter.
            d = int(torch.randint(1, 16, (1,), generator=_step_generator(self.cfg.seed, step, 0, 1)))
            with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None):
                l_shift = shift_loss(self.model, x, y, dy=d // 4, dx=d % 4)  # the bare module, as above
            loss = loss + self.shift_w * l_shift
        l_peak = torch.zeros((), device=dev)
        if self.peak_w > 0 and texture:
            l_peak = peak_loss(y, x)
            loss = loss + self.peak_w * l_peak
        l_spike = torch.zeros((), device=dev)
        if self.cfg.spike_weight > 0:
            l_spike = norm_spike_loss(norm_acts)
            loss = loss + self.cfg.spike_weight * l_spike
        parts = torch.stack([loss.detach(), l_content.detach(), l_style.detach(), l_tv.detach(), l_stab.detach(),
                             l_shift.detach(), l_peak.detach(), l_spike.detach()])
        return loss, parts.float()

    def run(self) -> TrainResult:
        cfg = self.cfg
        if self.main:
            log.info("training %s on %d images%s, loss net %s, %s%s%s, steps %d->%d", self.arch.preset,
                     len(self.scan.files),
                     f" ({len(self.scan.skipped)} skipped: not images or unreadable)" if self.scan.skipped else "",
                     self.net_desc, self.dev, f" x{self.info.world_size}" if self.info.enabled else "",
                     f", amp {self.config['amp']}" if self.amp_dtype else "", self.start_step, self.end_step)
        logf = _Log(cfg.log_file, self.start_step) if self.main else _Log(None, 0)
        self.model.train()
        step = self.start_step
        sums = torch.zeros(len(LOSS_PARTS), device=self.dev)
        n_sums = 0
        last: dict[str, float] = {}
        t_window, step_window = time.time(), step
        bar = progress("train", self.total_steps, unit="step") if self.main else None
        try:
            if bar:
                bar.__enter__()
                bar.update(step)
            for batch in self.loader:
                x = batch.to(self.dev, non_blocking=True)
                if self.use_cl:
                    x = x.contiguous(memory_format=torch.channels_last)
                loss, parts = self.loss(x, step)
                self.optimizer.zero_grad(set_to_none=True)
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
                step += 1
                if self.averaged is not None and self._averages(step):
                    self.averaged.update_parameters(self.model)
                sums += parts
                n_sums += 1
                info = None
                if step % cfg.log_every == 0 or step == self.end_step:
                    # The only host sync in the loop: averaged over the window and over processes.
                    vals = (dist_util.mean_across(sums, self.info) / n_sums).tolist()
                    now = time.time()
                    its = (step - step_window) / max(now - t_window, 1e-9)
                    t_window, step_window = now, step
                    last = dict(zip(LOSS_PARTS, vals))
                    if not all(math.isfinite(v) for v in vals):
                        raise StyleEngineError(f"training diverged at step {step} (loss {vals[0]}); lower --lr or "
                                               f"the loss weights, or use --amp off")
                    logf.write({"step": step, **{k: round(v, 6) for k, v in last.items()},
                                "it_s": round(its, 3), "time": round(now - self.t_start, 2)})
                    info = (f"loss {last['loss']:.3g}  content {last['content']:.3g}  style {last['style']:.3g}  "
                            f"tv {last['tv']:.3g}" + (f"  stab {last['stability']:.3g}" if last["stability"] else "")
                            + (f"  shift {last['shift']:.3g}" if last["shift"] else "")
                            + (f"  spike {last['spike']:.3g}" if last["spike"] else "")
                            + f"  {its:.2f} it/s")
                    sums.zero_()
                    n_sums = 0
                if bar:
                    bar.update(step, info=info)
                if self.grid is not None and step % self.preview_every == 0:
                    self.preview(step)
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < self.total_steps:
                    self.save_state(step)
        except KeyboardInterrupt:
            if step > self.start_step:
                self.save_state(step)
            raise Interrupted(f"interrupted at step {step}; continue with --resume ({cfg.state_file})") from None
        finally:
            if bar:
                bar.__exit__(None, None, None)
            logf.close()
        return self.finish(step, last)

    def _averages(self, step: int) -> bool:
        """Whether the weights after `step` join the average."""
        start, every = self.cfg.average_from, self.cfg.average_every
        return step >= start and ((step - start) % every == 0 or step == self.total_steps)

    # ------------------------------------------------------------------------------------- outputs
    def preview(self, step: int) -> None:
        was_training = self.model.training
        self.model.eval()
        # What the saved model will paint: with its margin, or the border band it keeps out would show here;
        # once averaging has begun, the average.
        net = self.averaged.module if self.averaged is not None and self.averaged.n_averaged > 0 else self.model
        net = with_margin(net, self.margin) if self.margin else net
        outs = []
        with torch.no_grad():
            for photo in self.preview_inputs:
                x = torch.from_numpy(photo).permute(2, 0, 1)[None].float().to(self.dev)
                y = net(x).float().clamp(0, 255).round().byte()[0].permute(1, 2, 0).cpu().numpy()
                outs.append(y)
        self.model.train(was_training)
        self.grid.add(step, outs)
        plot_losses(read_log(self.cfg.log_file), self.cfg.loss_plot) if self.cfg.log_file.exists() else None

    def save_state(self, step: int) -> None:
        if not self.main:
            return
        obj = {
            "format": TRAIN_STATE_FORMAT, "arch": self.arch.to_dict(),
            "state_dict": _cpu_copy(self.model),
            "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(), "step": step,
            "averaged": None if self.averaged is None else _cpu_copy(self.averaged),
            "rng": {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
                    "cuda": torch.cuda.get_rng_state_all() if self.dev.type == "cuda" else []},
            "style": self.style_meta, "train_config": self.config, "loss_net": self.net_desc,
        }
        with atomic_path(self.cfg.state_file) as tmp:
            torch.save(obj, tmp)

    def finish(self, step: int, last: dict[str, float]) -> TrainResult:
        cfg = self.cfg
        finished = step >= self.total_steps
        path = cfg.state_file
        if not finished:  # stop_after: leave a resumable state, no final model
            self.save_state(step)
            if self.main:
                log.info("stopped at step %d of %d; train state %s", step, self.total_steps, cfg.state_file)
        elif self.main:
            if self.grid is not None and step % (self.preview_every or 1) != 0:
                self.preview(step)
            model_cpu = TransformerNet(replace(self.arch, margin=self.margin))
            weights = self.model if self.averaged is None else self.averaged.module
            model_cpu.load_state_dict({k: v.detach().float().cpu() for k, v in weights.state_dict().items()})
            if self.averaged is not None:
                log.info("weights averaged over %d steps from step %d", int(self.averaged.n_averaged),
                         self.cfg.average_from)
            model_cpu, calib = phase_bias.calibrate(model_cpu, phase_photos(self.scan.files))
            log.info("phase bias: the fixed 4-px pattern measured on %d photos, %.2f levels rms, %.3f after; "
                     "on %d other photos, peakiness %.3fx with it and %.3fx without: %s", calib.images,
                     calib.rms_before, calib.rms_after, calib.check_images, calib.peakiness_with,
                     calib.peakiness_without, "kept" if calib.kept else "left at zero")
            recorded = {**self.config, "phase_bias": asdict(calib)}
            save_model(cfg.output, model_cpu, style=self.style_meta, train_config=recorded, loss_net=self.net_desc,
                       half=cfg.half, overwrite=True)
            self.save_state(step)  # a finished state: `--resume --steps N` trains further
            path = cfg.output
            failures = len(self.dataset.decode_failures)
            log.info("wrote %s (%d steps, %.0f s%s)", cfg.output, step, time.time() - self.t_start,
                     f", {failures} files failed to decode and were replaced" if failures else "")
        if self.main and cfg.log_file.exists():
            plot_losses(read_log(cfg.log_file), cfg.loss_plot)
        return TrainResult(path, step, cfg.state_file, cfg.log_file if self.main else None, last,
                           len(self.scan.skipped), time.time() - self.t_start, finished,
                           cfg.preview_dir / "grid.jpg" if self.grid is not None else None,
                           cfg.loss_plot if cfg.loss_plot.exists() else None)


def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
          stop_after: int | None = None) -> TrainResult:
    """Train a transformation network for one style (see TrainConfig and the module doc).

    `resume=True` continues from the train state beside the output. `stop_after` ends this invocation after
    that many steps, leaving a train state (time-sliced jobs, tests); the result then points at the state.
    """
    trainer = Trainer(config, resume=resume, overwrite=overwrite, stop_after=stop_after)
    trainer.info = dist_util.DistInfo()
    try:
        trainer.setup()
        result = trainer.run()
        dist_util.barrier(trainer.info)
        return result
    finally:
        dist_util.shutdown(trainer.info)
