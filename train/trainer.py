"""The trainer: one style image + a folder of photos -> a self-describing transformation network file.

Paper defaults (Johnson et al. 2016): 256 px crops, batch 4, Adam lr 1e-3, 2 epochs (40k steps on COCO),
VGG16 relu2_2 content / relu1_2..relu4_3 style. Loss weights default per loss network
(loss_networks.LossNetDefaults), so `train(style, photos, out, loss_net="efficientnet-lite0")` works as is.

Recommended short CPU run (2 cores, a few minutes, starry_night + ~30 photos), tuned by looking at previews:

    train("starry_night.jpg", "photos/", "starry.pt", preset="fast", loss_net="efficientnet-lite0",
          steps=300, batch_size=4, image_size=128, style_size=256)

    ~3-7 it/s on an idle 2-core CPU. Starry Night's palette and strokes appear by step ~50 (thanks to the
    output-layer init, see _init_output_layer), the photo's shapes are recognizable by ~150 and sharpen after.
    For built-in quality: steps 2000-4000, image_size 256, style_size 384-512 (style_size sets the stroke scale:
    larger = finer strokes relative to the photo). The efficientnet-lite0 defaults (content block2.expand
    weight 1, style stem/block1/3/5/8.expand weight 0.5, TV 100, relative Gram normalization) need no tuning;
    raise style_weight (1-1.5) for a stronger look, lower it (0.25) to keep more of the photo.

Speed paths: CUDA AMP (bf16 where supported, else fp16 with a GradScaler), channels_last, cudnn autotuning,
fused Adam, the style Grams computed once, worker processes for decoding. The CPU path is plain fp32.

Resumable: a train state (model, optimizer, scaler, step, RNG states) is written atomically every
`checkpoint_every` steps and on Ctrl-C; the data order and every random draw are functions of (seed, step),
so `resume=True` after a kill -9 continues exactly, losing only the steps since the last checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from styleengine.errors import Interrupted, StyleEngineError
from styleengine.fsutil import atomic_path, sha256_file

from . import distributed as dist_util
from .checkpoint import TRAIN_STATE_FORMAT, load_checkpoint, save_model
from .data import load_rgb, load_style_image, make_loader, scan_images, to_tensor
from .loss_networks import DEFAULT_LOSS_NET, build_loss_net, loss_net_defaults
from .losses import content_loss, gram, stability_loss, style_loss, style_norms, swag, tv_loss
from .network import MIN_SIDE, ArchConfig, TransformerNet, preset as preset_config

MIN_DEFAULT_STEPS = 2000
# Settings that must match when resuming (anything else, e.g. the step count, may change).
_RESUME_KEYS = ("arch", "loss_net", "style_sha256", "style_size", "image_size", "global_batch", "seed", "lr",
                "content_weight", "style_weight", "tv_weight", "stability_weight", "content_layers",
                "style_layers", "style_norm", "swag_temperature")
# Values a key had before it was recorded, so train states from older versions still resume.
_RESUME_DEFAULTS = {"swag_temperature": 0.0}


@dataclass
class TrainResult:
    path: Path
    steps: int
    state_path: Path
    log_path: Path | None
    final_losses: dict[str, float]
    skipped_files: int
    seconds: float


def default_state_path(output: Path) -> Path:
    return output.with_name(output.stem + ".train-state.pt")


def _resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    if amp not in ("auto", "bf16", "fp16", "off"):
        raise StyleEngineError(f"unknown amp mode {amp!r}; choose auto, bf16, fp16 or off")
    if device.type != "cuda" or amp == "off":
        if amp in ("bf16", "fp16") and device.type != "cuda":
            raise StyleEngineError(f"--amp {amp} needs a CUDA device (this run uses {device})")
        return None
    if amp == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if amp == "bf16" else torch.float16


def _step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """Randomness for one step (stability warps/noise) derived from (seed, step, rank): exactly resumable."""
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 131 + rank)


class _Log:
    """JSONL loss log, rank 0 only. On resume, entries past the resumed step are dropped."""

    def __init__(self, path: Path | None, resume_step: int):
        self.path = path
        self.f = None
        if path is None:
            return
        if resume_step > 0 and path.exists():
            kept = []
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line).get("step", 0) <= resume_step:
                        kept.append(line)
                except json.JSONDecodeError:
                    pass  # a line cut by a kill -9
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


def _save_preview(model: torch.nn.Module, content: torch.Tensor, path: Path, device: torch.device) -> None:
    """[photo | stylized] side by side, JPEG."""
    from PIL import Image

    was_training = model.training
    model.eval()
    with torch.no_grad():
        y = model(content.to(device)).float().clamp(0, 255).cpu()
    model.train(was_training)
    pair = torch.cat([content, y], dim=3)[0].round().byte().permute(1, 2, 0).numpy()
    with atomic_path(path, suffix=".jpg") as tmp:
        Image.fromarray(pair).save(tmp, quality=90)


def _preview_input(path: Path, size: int) -> torch.Tensor:
    im = load_rgb(path)
    w, h = im.size
    s = size / min(w, h)
    im = im.resize((max(MIN_SIDE, round(w * s)), max(MIN_SIDE, round(h * s))))
    return to_tensor(im).unsqueeze(0)


def train(
    style_image: str | os.PathLike,
    data_dir: str | os.PathLike,
    output: str | os.PathLike,
    *,
    preset: str = "johnson",
    arch: ArchConfig | None = None,
    loss_net: str = DEFAULT_LOSS_NET,
    loss_weights: str | os.PathLike | None = None,
    random_loss_net: bool = False,
    steps: int | None = None,
    epochs: float | None = None,
    batch_size: int = 4,
    image_size: int = 256,
    style_size: int | None = 512,
    lr: float = 1e-3,
    content_weight: float | None = None,
    style_weight: float | None = None,
    tv_weight: float | None = None,
    content_layers: list[str] | tuple[str, ...] | None = None,
    style_layers: list[str] | tuple[str, ...] | None = None,
    stability_weight: float = 0.0,
    swag_temperature: float | None = None,
    seed: int = 0,
    checkpoint_every: int = 500,
    preview_every: int | None = None,
    preview_image: str | os.PathLike | None = None,
    preview_dir: str | os.PathLike | None = None,
    log: str | os.PathLike | None = None,
    log_every: int = 10,
    resume: bool = False,
    state_path: str | os.PathLike | None = None,
    overwrite: bool = False,
    device: str = "auto",
    amp: str = "auto",
    channels_last: bool | None = None,
    workers: int | None = None,
    style_name: str | None = None,
    attribution: str | None = None,
    half: bool = False,
    progress: bool = True,
    stop_after: int | None = None,
    result: bool = False,
) -> Path | TrainResult:
    """Train a transformation network for one style; returns the path of the final model file.

    `steps` (or `epochs`; default 2 epochs, at least MIN_DEFAULT_STEPS) sets the length; `checkpoint_every`/`preview_every` (default: same as
    checkpoints) in steps, 0 disables. `resume=True` continues from the train state beside `output`
    (`<output stem>.train-state.pt`, or `state_path`). `stop_after` ends the run early after that many steps
    of this invocation, leaving a train state (used by tests and for time-sliced jobs). With `result=True` a
    TrainResult is returned instead of the path.
    """
    t_start = time.time()
    output = Path(output)
    if output.suffix.lower() not in (".pt", ".pth"):
        raise StyleEngineError(f"output must be a .pt or .pth file: {output}")
    if not output.parent.is_dir():
        raise StyleEngineError(f"output folder does not exist: {output.parent}")
    state_path = Path(state_path) if state_path else default_state_path(output)
    log_path = Path(log) if log else output.with_name(output.stem + ".log.jsonl")
    preview_dir = Path(preview_dir) if preview_dir else output.with_name(output.stem + ".previews")
    for name, v in (("batch_size", batch_size), ("image_size", image_size), ("log_every", log_every)):
        if v < 1:
            raise StyleEngineError(f"{name} must be >= 1 (got {v})")
    if image_size < 32:
        raise StyleEngineError(f"image_size must be >= 32 (got {image_size})")
    if style_size is not None and style_size < 16:
        raise StyleEngineError(f"style_size must be >= 16 (got {style_size})")
    if lr <= 0:
        raise StyleEngineError(f"lr must be > 0 (got {lr})")
    if stability_weight < 0:
        raise StyleEngineError(f"stability_weight must be >= 0 (got {stability_weight})")
    if steps is not None and steps < 1:
        raise StyleEngineError(f"steps must be >= 1 (got {steps})")
    if epochs is not None and epochs <= 0:
        raise StyleEngineError(f"epochs must be > 0 (got {epochs})")
    if steps is not None and epochs is not None:
        raise StyleEngineError("give steps or epochs, not both")
    cfg_arch = arch or _preset(preset)
    defaults = loss_net_defaults(loss_net)
    content_layers = tuple(content_layers or defaults.content_layers)
    style_layers = tuple(style_layers or defaults.style_layers)
    cw = defaults.content_weight if content_weight is None else float(content_weight)
    sw = defaults.style_weight if style_weight is None else float(style_weight)
    tw = defaults.tv_weight if tv_weight is None else float(tv_weight)
    swag_t = defaults.swag_temperature if swag_temperature is None else float(swag_temperature)

    dev = dist_util.local_device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise StyleEngineError("device cuda requested but no CUDA GPU is available")
    info = dist_util.init(dev)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size: autotuned conv algorithms pay off
    main = info.is_main
    try:
        amp_dtype = _resolve_amp(amp, dev)
        use_cl = (dev.type == "cuda") if channels_last is None else bool(channels_last)
        if workers is None:
            workers = min(8, (os.cpu_count() or 2) // max(1, info.world_size)) if dev.type == "cuda" else 0

        if not resume and output.exists() and not overwrite:
            raise StyleEngineError(f"output exists (use --overwrite): {output}")
        if not resume and state_path.exists() and not overwrite:
            raise StyleEngineError(f"a train state from an earlier run exists: {state_path}; pass --resume to "
                                   f"continue it or --overwrite to start over")

        style_path = Path(style_image)
        style = load_style_image(style_path, style_size)
        scan = scan_images(data_dir, min_side=MIN_SIDE)
        global_batch = batch_size * info.world_size
        if steps is not None:
            total_steps = steps
        elif epochs is not None:
            total_steps = max(1, math.ceil(epochs * len(scan.files) / global_batch))
        else:  # the paper's 2 epochs (40k steps on COCO), but never a uselessly short run on a small folder
            total_steps = max(MIN_DEFAULT_STEPS, math.ceil(2 * len(scan.files) / global_batch))

        net, net_desc = build_loss_net(loss_net, loss_weights=loss_weights, random_weights=random_loss_net,
                                       seed=seed)
        for name in content_layers + style_layers:  # validate taps up front: one-line error
            try:
                net.check_tap(name)
            except ValueError:
                raise StyleEngineError(f"unknown layer {name!r} for loss network {loss_net}") from None
        net = net.to(dev)
        if use_cl:
            net = net.to(memory_format=torch.channels_last)

        config: dict[str, Any] = {
            "arch": cfg_arch.to_dict(), "loss_net": net_desc, "style_sha256": sha256_file(style_path),
            "style_size": style_size, "image_size": image_size, "batch_size": batch_size,
            "world_size": info.world_size, "global_batch": global_batch, "steps": total_steps, "lr": lr,
            "content_weight": cw, "style_weight": sw, "tv_weight": tw, "stability_weight": float(stability_weight),
            "content_layers": list(content_layers), "style_layers": list(style_layers),
            "style_norm": defaults.style_norm, "swag_temperature": swag_t, "seed": seed, "dataset_images": len(scan.files),
            "amp": str(amp_dtype).replace("torch.", "") if amp_dtype else "off", "channels_last": use_cl,
            "device": dev.type, "output_init": "style-mean",
        }

        # The style targets: computed once, kept in fp32.
        with torch.no_grad():
            sfeats = net(style.to(dev), set(style_layers))
            style_grams = {k: gram(swag(sfeats[k], swag_t)) for k in style_layers}
        norms = style_norms(style_grams, defaults.style_norm)
        relative_content = defaults.style_norm == "relative"

        torch.manual_seed(seed)
        model = TransformerNet(cfg_arch)
        _init_output_layer(model, style, image_size)
        model = model.to(dev)
        if use_cl:
            model = model.to(memory_format=torch.channels_last)
        elif dev.type == "cpu":
            _output_conv_channels_last(model)
        fused = {"fused": True} if dev.type == "cuda" else {}
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, **fused)
        scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
        start_step = 0

        if resume and state_path.exists():
            start_step = _restore(state_path, config, model, optimizer, scaler, dev)
        elif resume and main:
            _say(f"no train state at {state_path}; starting from step 0")
        if start_step > total_steps:
            raise StyleEngineError(f"the train state is at step {start_step}, past the requested {total_steps} steps")
        ddp_model = dist_util.wrap(model, info, dev)
        config["steps"] = total_steps

        end_step = total_steps if stop_after is None else min(total_steps, start_step + stop_after)
        loader, dataset = make_loader(scan.files, image_size=image_size, batch_size=batch_size, seed=seed,
                                      start_step=start_step, total_steps=end_step, rank=info.rank,
                                      world_size=info.world_size, workers=workers,
                                      pin_memory=dev.type == "cuda")
        if preview_every is None:
            preview_every = checkpoint_every
        preview = None
        if main and preview_every:
            preview = _preview_input(Path(preview_image) if preview_image else scan.files[0], image_size)
            preview_dir.mkdir(exist_ok=True)
        logf = _Log(log_path, start_step) if main else _Log(None, 0)
        if main:
            _say(f"training {cfg_arch.preset} on {len(scan.files)} images"
                 + (f" ({len(scan.skipped)} skipped: not images or unreadable)" if scan.skipped else "")
                 + f", loss net {net_desc}, {dev}" + (f" x{info.world_size}" if info.enabled else "")
                 + (f", amp {config['amp']}" if amp_dtype else "")
                 + f", steps {start_step}->{end_step}")

        style_name = style_name or style_path.stem
        style_meta = {"name": style_name, "image": style_path.name, "image_sha256": config["style_sha256"]}
        if attribution:
            style_meta["attribution"] = attribution

        def save_state(step: int) -> None:
            if not main:
                return
            obj = {
                "format": TRAIN_STATE_FORMAT, "arch": cfg_arch.to_dict(),
                "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "step": step,
                "rng": {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
                        "cuda": torch.cuda.get_rng_state_all() if dev.type == "cuda" else []},
                "style": style_meta, "train_config": config, "loss_net": net_desc,
            }
            with atomic_path(state_path) as tmp:
                torch.save(obj, tmp)

        model.train()
        step = start_step
        sums = torch.zeros(5, device=dev)
        n_sums = 0
        last: dict[str, float] = {}
        t_window, step_window = time.time(), step
        bar = _Progress(total_steps, start_step, enabled=progress and main)
        try:
            for batch in loader:
                x = batch.to(dev, non_blocking=True)
                if use_cl:
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast(dev.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    y = ddp_model(x)
                    yfeats = net(y, set(style_layers) | set(content_layers))
                    with torch.no_grad():
                        xfeats = net(x, set(content_layers))
                l_content = sum(content_loss(swag(yfeats[k], swag_t), swag(xfeats[k], swag_t),
                                             relative=relative_content) for k in content_layers)
                l_style = style_loss({k: swag(yfeats[k], swag_t) for k in style_layers}, style_grams, norms)
                l_tv = tv_loss(y)
                loss = cw * l_content + sw * l_style + tw * l_tv
                l_stab = torch.zeros((), device=dev)
                if stability_weight > 0:
                    # The bare module: DDP's reducer still averages these gradients (its hooks sit on the
                    # parameters), and a second DDP forward per backward is not allowed.
                    with torch.autocast(dev.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                        l_stab = stability_loss(model, x, y, generator=_step_generator(seed, step, info.rank))
                    loss = loss + stability_weight * l_stab
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                step += 1
                sums += torch.stack([loss.detach(), l_content.detach(), l_style.detach(), l_tv.detach(),
                                     l_stab.detach()]).float()
                n_sums += 1
                if step % log_every == 0 or step == end_step:
                    # The only host sync in the loop: averaged over the window and over processes.
                    vals = (dist_util.mean_across(sums, info) / n_sums).tolist()
                    now = time.time()
                    its = (step - step_window) / max(now - t_window, 1e-9)
                    t_window, step_window = now, step
                    last = dict(zip(("loss", "content", "style", "tv", "stability"), vals))
                    if not all(math.isfinite(v) for v in vals):
                        raise StyleEngineError(f"training diverged at step {step} (loss {vals[0]}); lower --lr or "
                                               f"the loss weights, or use --amp off")
                    logf.write({"step": step, **{k: round(v, 6) for k, v in last.items()},
                                "it_s": round(its, 3), "time": round(now - t_start, 2)})
                    bar.update(step, last, its)
                    sums.zero_()
                    n_sums = 0
                else:
                    bar.update(step, None, None)
                if main and preview is not None and preview_every and step % preview_every == 0:
                    _save_preview(model, preview, preview_dir / f"step_{step:07d}.jpg", dev)
                if checkpoint_every and step % checkpoint_every == 0 and step < total_steps:
                    save_state(step)
        except KeyboardInterrupt:
            if step > start_step:
                save_state(step)
            raise Interrupted(f"interrupted at step {step}; continue with --resume ({state_path})") from None
        finally:
            bar.close()
            logf.close()

        if step < total_steps:  # stop_after: leave a resumable state, no final model
            save_state(step)
            if main:
                _say(f"stopped at step {step} of {total_steps}; train state {state_path}")
            return _result(result, state_path, step, state_path, log_path, last, scan, t_start)
        if main:
            if preview is not None and step % (preview_every or 1) != 0:
                _save_preview(model, preview, preview_dir / f"step_{step:07d}.jpg", dev)
            model_cpu = TransformerNet(cfg_arch)
            model_cpu.load_state_dict({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
            save_model(output, model_cpu, style=style_meta, train_config=config, loss_net=net_desc, half=half,
                       overwrite=True)
            save_state(step)  # a finished state: `--resume --steps N` trains further
            failures = len(dataset.decode_failures)
            _say(f"wrote {output} ({step} steps, {time.time() - t_start:.0f} s"
                 + (f", {failures} files failed to decode and were replaced" if failures else "") + ")")
        dist_util.barrier(info)
        return _result(result, output, step, state_path, log_path, last, scan, t_start)
    finally:
        dist_util.shutdown(info)


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


def _output_conv_channels_last(model: TransformerNet) -> None:
    """oneDNN's NCHW backward for the 3-channel 9x9 output conv is ~4x slower than its channels_last one and
    takes ~40% of a CPU step; converting just that conv's input is 1.4-1.6x per step (other layers are
    faster in NCHW on CPU). The output goes back to NCHW so the loss network runs as before."""
    conv = model.deconv3.conv2d
    conv.register_forward_pre_hook(lambda _m, args: (args[0].contiguous(memory_format=torch.channels_last),))
    conv.register_forward_hook(lambda _m, _args, out: out.contiguous())


def _result(want: bool, path: Path, step: int, state: Path, log_path: Path, last: dict, scan, t0: float):
    if not want:
        return path
    return TrainResult(path, step, state, log_path, last, len(scan.skipped), time.time() - t0)


def _preset(name: str) -> ArchConfig:
    try:
        return preset_config(name)
    except ValueError as exc:
        raise StyleEngineError(str(exc)) from None


def _restore(path: Path, config: dict, model, optimizer, scaler, dev: torch.device) -> int:
    ckpt = load_checkpoint(path)
    raw = ckpt.raw
    if raw.get("format") != TRAIN_STATE_FORMAT:
        raise StyleEngineError(f"{path}: not a train state (format {raw.get('format')!r})")
    old = raw.get("train_config", {})
    for key in _RESUME_KEYS:
        if old.get(key, _RESUME_DEFAULTS.get(key)) != config.get(key):
            raise StyleEngineError(f"{path} was made with different settings ({key}: {old.get(key)!r} vs now "
                                   f"{config.get(key)!r}); use the same options or start over with --overwrite")
    model.load_state_dict(ckpt.state_dict)
    optimizer.load_state_dict(raw["optimizer"])
    scaler.load_state_dict(raw["scaler"])
    rng = raw.get("rng", {})
    if "torch" in rng:
        torch.set_rng_state(rng["torch"])
    if rng.get("python"):
        random.setstate((3, tuple(rng["python"]), None))
    if dev.type == "cuda" and rng.get("cuda"):
        torch.cuda.set_rng_state_all(rng["cuda"])
    return int(raw["step"])


def _say(msg: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False).print(msg)


class _Progress:
    """A rich progress bar on stderr with the latest losses and it/s; silent when disabled."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.p = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.p = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          TextColumn("{task.fields[info]}"), console=Console(stderr=True), transient=False)
        self.p.start()
        self.task = self.p.add_task("train", total=total, completed=start, info="")

    def update(self, step: int, losses: dict | None, its: float | None) -> None:
        if self.p is None:
            return
        if losses is None:
            self.p.update(self.task, completed=step)
            return
        info = (f"loss {losses['loss']:.3g}  content {losses['content']:.3g}  style {losses['style']:.3g}  "
                f"tv {losses['tv']:.3g}" + (f"  stab {losses['stability']:.3g}" if losses['stability'] else "")
                + f"  {its:.2f} it/s")
        self.p.update(self.task, completed=step, info=info)

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()
            self.p = None
