"""Train the built-in styles with styleengine's own trainer and install them into the package as bundles.

    python benchmarks/recipe_study.py prepare --work W            # the photo set (held-out photos left out)
    nice python benchmarks/train_builtins.py --work W [--styles starry_night,...] [--steps 3000] [--threads 1]
    nice python benchmarks/train_builtins.py --work W --refine --steps 200 --chunk 100 [--styles ...]
    python benchmarks/train_builtins.py --work W --install [--styles ...]
    python benchmarks/train_builtins.py --work W --styles starry_night --install-from W/runs/starry_night_ft_s768/model.pt
    python benchmarks/train_builtins.py --work W --refresh [--styles ...]

Every built-in is the `fast` preset, trained from seed 0 or fine-tuned from one that was (`--init-from`; the shared
ancestry keeps weight blending between built-ins meaningful), with the trainer's defaults for efficientnet-lite0 — the recipe chosen by
benchmarks/recipe_study.py — on the same photos, in resumable chunks (a killed run continues where it stopped;
the preview grid and loss curve grow beside each run). `--install` writes each finished model with FP16 weights,
its attribution, lineage and full training config, builds its bundle (FP32/FP16 ONNX, validated against
torch) into styleengine/assets/styles/<name>.engine and records it in index.json. `--refine` instead fine-tunes
each shipped built-in against the 4-px grid (refine_recipe; results in benchmarks/results/recipe/README.md).
`--refresh` (formerly `--phase-bias`) gives each shipped built-in what the trainer adds at the end of a run: the
margin of reflected input that keeps the border band out of the picture (core.network), and the output bias that
cancels its fixed 4-px pattern (core.phase_bias), measured on the training photos and checked on others: zero
where it does not lower the outputs' peakiness. `train_until` is the same run from seed 0 inside a time box (a GPU
lease; benchmarks/gpu_builtins.py), its model the mean of the later half of its snapshots.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from styleengine.core import phase_bias
from styleengine.core.checkpoint import load_checkpoint, save_model
from styleengine.core.network import TransformerNet, with_margin
from styleengine.engine.builtin_styles import (
    PAINTINGS,
    STYLES_DIR,
    attribution_for,
    index_entry,
    read_index,
    write_index,
)
from styleengine.export.build import build_bundle
from styleengine.train.data import scan_images
from styleengine.train.trainer import DEFAULT_MARGIN, TrainConfig, phase_photos, train

SHARED_STYLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "styles"
PREVIEW_PHOTOS = ("kodim04.png", "chelsea.png", "cars_0050.png")  # held out of training, shown in the grid
# The study's larger style scale (its 768 variants): the strokes of a ~1000-px reproduction at close to native size.
STYLE_SIZE = 768
REFINE_CROP = 128
REFINE_SHIFT_WEIGHT = 50.0
REFINE_STYLE_SCALE = 2.0


def shipped_model(painting: str) -> Path:
    return STYLES_DIR / f"{painting}.engine" / "model.pt"


def shipped_recipe(painting: str) -> dict:
    """The shipped built-in's own recipe (from its checkpoint's train_config), as TrainConfig fields."""
    return model_recipe(shipped_model(painting))


def model_recipe(model: Path) -> dict:
    """A trained model's recipe (from its checkpoint's train_config), as TrainConfig fields."""
    c = load_checkpoint(model).train_config
    keys = ("image_size", "style_size", "batch_size", "content_weight", "style_weight", "tv_weight",
            "content_layers", "style_layers", "seed")
    return {k: c[k] for k in keys if c.get(k) is not None}


def refine_recipe(painting: str) -> dict:
    """Fine-tuning a shipped built-in against the 4-px grid: its own recipe plus loss jitter and the
    shift-equivariance loss (the study's ft_* runs), lr 1e-3, on 128-px crops of photos at the size the
    built-in was trained at (the same scale of shapes at a quarter of the cost for the 256-px ones)."""
    r = shipped_recipe(painting)
    return {**r, "image_size": REFINE_CROP, "photo_size": max(REFINE_CROP, r["image_size"]), "lr": 1e-3,
            "loss_jitter": 4, "shift_weight": REFINE_SHIFT_WEIGHT, "peak_weight": 0.0, "plain_steps": 0,
            "style_weight": r["style_weight"] * REFINE_STYLE_SCALE}


def config(painting: str, work: Path, steps: int, chunk: int, init_from: Path | None = None,
           refine: bool = False, paintings: Path = SHARED_STYLES, **options) -> TrainConfig:
    """A built-in's run under WORK/builtins/<painting>/; `options` are more TrainConfig fields (device, sizes)."""
    run = work / "builtins" / painting
    run.mkdir(parents=True, exist_ok=True)
    held = work / "heldout"
    recipe = dict(style_size=STYLE_SIZE, seed=0)
    if refine:
        recipe, init_from = refine_recipe(painting), shipped_model(painting)
    fields = dict(preset="fast", loss_net="efficientnet-lite0", steps=steps, checkpoint_every=chunk,
                  preview_every=chunk, preview_images=tuple(held / p for p in PREVIEW_PHOTOS if (held / p).exists()),
                  style_name=painting, attribution=attribution_for(painting), half=True, init_from=init_from,
                  **recipe)
    return TrainConfig(paintings / f"{painting}.jpg", work / "photos", run / f"{painting}.pt", **{**fields, **options})


def train_one(painting: str, work: Path, steps: int, chunk: int, init_from: Path | None = None,
              refine: bool = False) -> Path:
    cfg = config(painting, work, steps, chunk, init_from, refine)
    if cfg.output.exists():
        return cfg.output
    t0 = time.time()
    while True:
        r = train(cfg, resume=cfg.state_file.exists(), stop_after=chunk)
        print(f"[{painting}] step {r.steps}/{steps} {time.time() - t0:.0f} s {r.final_losses}", flush=True)
        if r.finished:
            return r.path


def train_until(painting: str, work: Path, steps: int, chunk: int, until: float, paintings: Path = SHARED_STYLES,
                **options) -> Path | None:
    """A run from seed 0 inside a time box (a GPU lease): chunks of `chunk` steps, a snapshot after each
    (WORK/builtins/<painting>/snap_<step>.pt), and no chunk started that the last one's duration says would end
    after `until` (time.time()). The model is the mean of the snapshots from the middle one on (the trainer's
    --average-from, for a run whose length is not known in advance), finished as the trainer finishes:
    WORK/builtins/<painting>/<painting>_mean.pt. None if not one chunk fitted."""
    cfg = config(painting, work, steps, chunk, paintings=paintings, **options)
    step = state_step(cfg.state_file)
    last = 0.0
    while step < steps and time.time() + last < until:
        t0 = time.time()
        r = train(cfg, resume=step > 0, stop_after=min(chunk, steps - step))
        step, last = r.steps, time.time() - t0
        save_snapshot(r, cfg.output.parent)
        print(f"[{painting}] step {step}/{steps} {last:.0f} s {r.final_losses}", flush=True)
    snaps = snapshots(cfg.output.parent)
    if not snaps:
        return None
    made = sorted(snaps)
    net, train_config = snapshot_mean([snaps[k] for k in made[len(made) // 2:]], chunk, work)
    out = cfg.output.with_name(f"{painting}_mean.pt")
    ck = load_checkpoint(snaps[made[-1]])
    save_model(out, net, style=ck.style, train_config=train_config, loss_net=ck.loss_net, half=True, overwrite=True)
    return out


def state_step(state: Path) -> int:
    """The step a train state is at (0 where there is none yet)."""
    return int(torch.load(state, weights_only=True, map_location="cpu")["step"]) if state.exists() else 0


def save_snapshot(result, run: Path) -> Path:
    """RUN/snap_<step>.pt from a chunk's TrainResult: the weights so far with the margin the trainer saves models
    with, recorded with the steps done so far, not the run's total (a snapshot may be shipped: --install-from)."""
    ck = load_checkpoint(result.path if result.finished else result.state_path)
    path = run / f"snap_{result.steps:05d}.pt"
    save_model(path, with_trainer_margin(ck.build_model()), style=ck.style,
               train_config={**ck.train_config, "steps": result.steps}, loss_net=ck.loss_net)
    return path


def snapshots(run: Path) -> dict[int, Path]:
    """A run's snapshots (save_snapshot's snap_<step>.pt) by step."""
    return {int(p.stem[5:]): p for p in run.glob("snap_*.pt")}


def snapshot_mean(paths: list[Path], every: int, work: Path) -> tuple[torch.nn.Module, dict]:
    """The mean of snapshots' weights (one run's, in step order, `every` steps apart), finished as the trainer
    finishes (margin, phase bias), and the train config a run with average_from = the first step would record."""
    cks = [load_checkpoint(p) for p in paths]
    steps = [int(ck.train_config["steps"]) for ck in cks]
    if steps != list(range(steps[0], steps[-1] + 1, every)):  # the trainer's steps (the last is on the grid here)
        sys.exit(f"snapshots at steps {steps} are not evenly spaced ({every} steps apart) from {steps[0]}")
    last = cks[-1]
    # Trained without the phase bias: the last snapshot may carry the one its run measured at the end.
    keys = [k for k in cks[0].state_dict if k != "phase_bias"]
    mean = {k: sum(ck.state_dict[k].float() for ck in cks) / len(cks) for k in keys}
    net = TransformerNet(replace(last.arch, phase_bias=False))
    net.load_state_dict(mean)
    net, calib = finish_as_trainer(net, work)
    return net, {**last.train_config, "steps": steps[-1], "average_from": steps[0], "average_every": every,
                 "phase_bias": asdict(calib)}


def lineage(painting: str, init: dict | None, work: Path) -> str:
    """Where a model started, for the index: its parent, the parent's parents while they are runs under WORK/runs
    (recipe_study.py's from_variant chains), and once the chain reaches the built-in shipped now (or the run it was
    installed from), that built-in's own lineage after it."""
    previous = read_index().get(painting)
    shipped = shipped_model(painting)
    ship_ck = load_checkpoint(shipped) if previous and shipped.is_file() else None

    def find_run(name: str, sha: str | None) -> dict | None:
        run = work / "runs" / name / "model.pt"
        if not run.is_file():
            return None
        ck = load_checkpoint(run)
        return ck.train_config if ck.sha256 == sha else None

    if ship_ck is None:
        return lineage_chain(init, find_run=find_run, shipped_sha=None, shipped_parent=None, shipped_lineage=None)
    return lineage_chain(init, find_run=find_run, shipped_sha=ship_ck.sha256,
                         shipped_parent=(ship_ck.train_config.get("init_from") or {}).get("sha256"),
                         shipped_lineage=previous["train"]["init_from"])


def lineage_chain(init: dict | None, *, find_run, shipped_sha: str | None, shipped_parent: str | None,
                  shipped_lineage: str | None) -> str:
    """"name (N steps) <- ..." from a trainer's init_from record. find_run(name, sha256) gives the train config of
    an earlier run with that file hash, or None. The shipped built-in is re-saved into its bundle, so the run it was
    installed from is known by its parent (shipped_parent), not by its own hash."""
    if not init:
        return "seed 0"
    parts: list[str] = []
    seen: set = set()
    while init:
        parts.append(f"{init['name']} ({init['steps']} steps)")
        sha = init.get("sha256")
        if shipped_lineage is not None and sha == shipped_sha:
            return " <- ".join([*parts, shipped_lineage])
        config = find_run(init["name"], sha) if sha not in seen else None
        if config is None:
            break
        seen.add(sha)
        init = config.get("init_from")
        if shipped_lineage is not None and init and init.get("sha256") == shipped_parent:
            return " <- ".join([*parts, shipped_lineage])
    return " <- ".join(parts)


def with_trainer_margin(net):
    """`net` with the margin the trainer now saves every model with, where it has none (snapshots, older runs)."""
    return net if net.config.margin else with_margin(net, DEFAULT_MARGIN)


def finish_as_trainer(net, work: Path):
    """What the trainer adds at the end of a run, for a model made before it did (a snapshot, an older run): its
    margin where it has none, and a phase bias measured with it (a bias it has is corrected by what is left).
    Returns (model, phase-bias record)."""
    return phase_bias.calibrate(with_trainer_margin(net), work_phase_photos(work))


def install(painting: str, model: Path, work: Path) -> None:
    """Ship a finished model of `painting` (FP16 weights, today's attribution) as its built-in bundle. A model
    without a margin or phase bias (a snapshot, a run from before the trainer added them) gets them as the trainer
    would."""
    ck = load_checkpoint(model)
    c = ck.train_config
    net = ck.build_model()
    if not net.config.margin or not net.config.phase_bias:
        net, calib = finish_as_trainer(net, work)
        c = {**c, "phase_bias": asdict(calib)}
    summary = {"trainer": "styleengine.train.trainer", "preset": c["arch"]["preset"], "steps": c["steps"],
               "image_size": c["image_size"], "style_size": c["style_size"], "batch_size": c["batch_size"],
               "loss_net": "efficientnet-lite0", "loss_jitter": c.get("loss_jitter", 0), "lr": c["lr"], "content_weight": c["content_weight"],
               "style_weight": c["style_weight"], "tv_weight": c["tv_weight"],
               "swag_temperature": c.get("swag_temperature", 0.0), "content_layers": c["content_layers"],
               "style_layers": c["style_layers"], "stability_weight": c["stability_weight"],
               "shift_weight": c.get("shift_weight", 0.0), "peak_weight": c.get("peak_weight", 0.0),
               "plain_steps": c.get("plain_steps", 0),
               "plain_style_weight": c.get("plain_style_weight"), "photo_size": c.get("photo_size"),
               "average_from": c.get("average_from"), "average_every": c.get("average_every"),
               "device": "cpu (2 shared cores)" if c.get("device", "cpu") == "cpu" else f"{c['device']} (amp {c.get('amp')})",
               "init_from": lineage(painting, c.get("init_from"), work),
               "data": f"{c['dataset_images']} photos: Kodak24 and scikit-image photos without the held-out ones, "
                       f"frames of cars_432p and Big Buck Bunny"}
    if "phase_bias" in c:
        summary["phase_bias"] = c["phase_bias"]
    ship(painting, net, ck, c, summary)


def work_phase_photos(work: Path) -> list:
    """The photos the trainer would measure a phase bias on, for a run on WORK's training photos."""
    return phase_photos(scan_images(work / "photos").files)


def refresh(painting: str, work: Path) -> None:
    """Give the shipped built-in what the trainer now adds at the end of every run (finish_as_trainer: the margin,
    and the phase bias measured with it, zero where it does not lower the peakiness on other photos); weights,
    lineage and recipe stay."""
    ck = load_checkpoint(shipped_model(painting))
    model, calib = finish_as_trainer(ck.build_model(), work)
    record = asdict(calib)
    summary = {**read_index()[painting]["train"], "phase_bias": record}
    ship(painting, model, ck, {**ck.train_config, "phase_bias": record}, summary)
    print(f"[{painting}] margin {model.config.margin} px; phase bias: {calib.rms_before:.2f} -> "
          f"{calib.rms_after:.3f} levels rms on {calib.images} photos; peakiness {calib.peakiness_with:.3f}x with "
          f"it, {calib.peakiness_without:.3f}x without on {calib.check_images} others: "
          f"{'kept' if calib.kept else 'zero'}", flush=True)


def ship(painting: str, model: torch.nn.Module, ck, train_config: dict, summary: dict) -> None:
    target = STYLES_DIR / f"{painting}.engine"
    with tempfile.TemporaryDirectory() as d:
        half = Path(d) / f"{painting}.pt"
        # FP16 weights, as shipped (exact for a model the trainer wrote with half=True), under the painting's
        # name and today's attribution.
        save_model(half, model, style={**ck.style, "name": painting, "attribution": attribution_for(painting)},
                   train_config=train_config, loss_net=ck.loss_net, half=True)
        build_bundle(half, target, tensorrt="off", overwrite=True)
    entries = read_index()
    entries[painting] = index_entry(painting, painting, target.name, "fast", summary)
    write_index(entries)
    print(f"[{painting}] installed {target}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--styles", default=",".join(PAINTINGS))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--chunk", type=int, default=250)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init-from", type=Path, default=None,
                    help="fine-tune from this finished model (e.g. WORK/builtins/starry_night/starry_night.pt)")
    ap.add_argument("--refine", action="store_true",
                    help="fine-tune each shipped built-in against the 4-px grid (refine_recipe)")
    ap.add_argument("--install", action="store_true", help="install finished runs (no training)")
    ap.add_argument("--refresh", "--phase-bias", action="store_true",
                    help="give the shipped built-ins the margin and phase bias (measured on WORK/photos) the trainer "
                         "adds at the end of a run (no training)")
    ap.add_argument("--install-from", type=Path, default=None,
                    help="install this finished model as the (one) style given by --styles, e.g. a recipe_study run")
    args = ap.parse_args()
    names = [s for s in args.styles.split(",") if s]
    unknown = [s for s in names if s not in PAINTINGS]
    if unknown:
        sys.exit(f"unknown paintings {unknown}; known: {', '.join(PAINTINGS)}")
    if args.install_from and len(names) != 1:
        sys.exit("--install-from installs one model: give its style with --styles NAME")
    torch.set_num_threads(args.threads)
    for painting in names:
        if args.refresh:
            refresh(painting, args.work)
        elif args.install_from:
            install(painting, args.install_from, args.work)
        elif args.install:
            install(painting, config(painting, args.work, args.steps, args.chunk).output, args.work)
        else:
            train_one(painting, args.work, args.steps, args.chunk, args.init_from, args.refine)


if __name__ == "__main__":
    main()
