"""Train the built-in styles with styleengine's own trainer and install them into the package.

    nice -n 5 .venv/bin/python benchmarks/train_builtins.py --work /tmp/builtin_train [--styles starry_night,...]
        [--preset fast] [--minutes 9] [--image-size 160] [--style-size 320] [--stability-weight 0]

Each style trains for a wall-clock budget (the CPU here is shared), in resumable chunks of `--chunk` steps
(the trainer has no learning-rate schedule, so stopping by time changes nothing but the step count), then
the final model is written with FP16 weights, its attribution and full training config, copied to
styleengine/assets/styles/<name>.pt and recorded in index.json. Every chunk leaves a preview of the
held-out sample photo in <work>/<name>.previews/. All built-ins start from the same initialization
(seed 0), which keeps weight blending between them meaningful (engine/blend.py).

`--init-from BASE.pt` starts a style from another style's weights (fine-tuning) instead of the seed-0 init:
on a 2-core CPU shared by six people, a from-scratch run gets ~100 steps in 10 minutes, too few to learn
to reproduce the photo at all; starting from a trained style network only has to change the texture. The
trainer has no init option, so this writes a step-0 train state holding BASE's weights, a fresh Adam state
and exactly the config the trainer will compute, and lets `train(..., resume=True)` continue from it.
Shared ancestry also keeps weight blending between built-ins meaningful. `--resume` continues a
previous run of this script (more minutes for the same style).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from styleengine.core.fsutil import sha256_file
from styleengine.engine.builtin_styles import PAINTINGS, STYLES_DIR, attribution_for, index_entry, write_index
from styleengine.train.trainer import train

SHARED_STYLES = Path("/work/shared/data/styles")
SAMPLE = STYLES_DIR.parent / "samples" / "chelsea.jpg"


def train_one(painting: str, args: argparse.Namespace) -> dict:
    work = Path(args.work)
    name = painting if args.preset == "fast" else f"{painting}_{args.preset}"
    if args.suffix:
        name += args.suffix
    out = work / f"{name}.pt"
    common = dict(lr=args.lr, preset=args.preset, loss_net="efficientnet-lite0", batch_size=args.batch_size,
                  image_size=args.image_size, style_size=args.style_size, stability_weight=args.stability_weight,
                  style_weight=args.style_weight, content_weight=args.content_weight, seed=0,
                  style_name=name, attribution=attribution_for(painting), half=True, preview_image=SAMPLE,
                  preview_every=args.chunk, checkpoint_every=args.chunk, progress=False, result=True)
    style_image = SHARED_STYLES / f"{painting}.jpg"
    t0 = time.time()
    first = not args.resume
    step = 0
    if args.init_from and not args.resume:
        write_init_state(Path(args.init_from), style_image, out, args)
        first = False
    while time.time() - t0 < args.minutes * 60 and step < args.max_steps:
        r = train(style_image, args.photos, out, steps=args.max_steps, stop_after=args.chunk, resume=not first,
                  overwrite=True, **common)
        first = False
        step = r.steps
        print(f"[{name}] step {step}  {time.time() - t0:.0f} s  {r.final_losses}", flush=True)
    if step < args.max_steps:
        r = train(style_image, args.photos, out, steps=step, resume=True, **common)
    print(f"[{name}] done: {r.steps} steps in {time.time() - t0:.0f} s -> {out}", flush=True)
    summary = {"trainer": "styleengine.train.trainer.train", "preset": args.preset, "steps": r.steps,
               "image_size": args.image_size, "style_size": args.style_size, "batch_size": args.batch_size,
               "loss_net": "efficientnet-lite0", "stability_weight": args.stability_weight,
               "style_weight": args.style_weight, "lr": args.lr, "content_weight": args.content_weight,
               "wall_seconds": round(time.time() - t0), "device": "cpu (2 shared cores)",
               "data": "Kodak24 + scikit-image astronaut/coffee/rocket (27 photos)",
               "init_from": Path(args.init_from).stem if args.init_from else "seed 0"}
    if args.install:
        install(name, painting, out, args.preset, summary)
    return summary


def install(name: str, painting: str, src: Path, preset: str, summary: dict) -> None:
    dest = STYLES_DIR / f"{name}.pt"
    shutil.copyfile(src, dest)
    index_path = STYLES_DIR / "index.json"
    entries = json.loads(index_path.read_text())["styles"] if index_path.is_file() else {}
    entries[name] = index_entry(name, painting, dest.name, preset, sha256_file(dest), summary)
    write_index(entries)
    print(f"[{name}] installed {dest} ({dest.stat().st_size / 1e6:.2f} MB)", flush=True)


def install_trained(folder: Path, painting: str, lineage: str) -> None:
    """Install <folder>/<painting>.pt, a finished run of this script, describing it from its own train_config."""
    from styleengine.core.checkpoint import load_checkpoint

    src = folder / f"{painting}.pt"
    c = load_checkpoint(src).train_config
    summary = {"trainer": "styleengine.train.trainer.train", "preset": c["arch"]["preset"], "steps": c["steps"],
               "image_size": c["image_size"], "style_size": c["style_size"], "batch_size": c["batch_size"],
               "loss_net": "efficientnet-lite0", "stability_weight": c["stability_weight"],
               "style_weight": c["style_weight"], "content_weight": c["content_weight"], "tv_weight": c["tv_weight"],
               "content_layers": c["content_layers"], "style_layers": c["style_layers"], "lr": c["lr"],
               "device": "cpu (2 shared cores)",
               "data": "Kodak24 + scikit-image astronaut/coffee/rocket (27 photos)", "init_from": lineage}
    install(painting, painting, src, c["arch"]["preset"], summary)


def write_init_state(base: Path, style_image: Path, out: Path, args: argparse.Namespace) -> None:
    """A step-0 train state for `out` that holds `base`'s weights (see the module doc)."""
    import random

    import torch

    from styleengine.core.checkpoint import TRAIN_STATE_FORMAT, load_checkpoint
    from styleengine.core.fsutil import atomic_path
    from styleengine.core.loss_networks import build_loss_net, loss_net_defaults
    from styleengine.core.network import preset
    from styleengine.train.trainer import default_state_path

    ckpt = load_checkpoint(base)
    arch = preset(args.preset)
    if ckpt.arch.to_dict() != arch.to_dict():
        sys.exit(f"{base} is a {ckpt.arch.preset} network, not {args.preset}")
    d = loss_net_defaults("efficientnet-lite0")
    _, desc = build_loss_net("efficientnet-lite0")
    config = {"arch": arch.to_dict(), "loss_net": desc, "style_sha256": sha256_file(style_image),
              "style_size": args.style_size, "image_size": args.image_size, "global_batch": args.batch_size,
              "seed": 0, "lr": args.lr,
              "content_weight": d.content_weight if args.content_weight is None else args.content_weight,
              "style_weight": d.style_weight if args.style_weight is None else args.style_weight,
              "tv_weight": d.tv_weight, "stability_weight": float(args.stability_weight),
              "content_layers": list(d.content_layers), "style_layers": list(d.style_layers),
              "style_norm": d.style_norm}
    model = ckpt.build_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    obj = {"format": TRAIN_STATE_FORMAT, "arch": arch.to_dict(),
           "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
           "optimizer": optimizer.state_dict(), "scaler": torch.amp.GradScaler("cuda", enabled=False).state_dict(),
           "step": 0, "rng": {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]), "cuda": []},
           "style": {"name": out.stem}, "train_config": config, "loss_net": desc}
    with atomic_path(default_state_path(out)) as tmp:
        torch.save(obj, tmp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--styles", default=",".join(PAINTINGS))
    ap.add_argument("--work", default="/tmp/builtin_train")
    ap.add_argument("--photos", default="/tmp/builtin_train/photos")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--minutes", type=float, default=9.0)
    ap.add_argument("--max-steps", type=int, default=4000)
    ap.add_argument("--chunk", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a crowded CPU)")
    ap.add_argument("--image-size", type=int, default=160)
    ap.add_argument("--style-size", type=int, default=320)
    ap.add_argument("--style-weight", type=float, default=None)
    ap.add_argument("--content-weight", type=float, default=None)
    ap.add_argument("--stability-weight", type=float, default=0.0)
    ap.add_argument("--init-from", default=None, help="start from this model's weights (fine-tune)")
    ap.add_argument("--resume", action="store_true", help="continue this script's earlier run of the style")
    ap.add_argument("--suffix", default="", help="name suffix for experiments (e.g. _stab)")
    ap.add_argument("--no-install", dest="install", action="store_false")
    ap.add_argument("--install-from", default=None, help="install finished runs from this work folder, no training")
    ap.add_argument("--lineage", default="", help="with --install-from: where the run started (for the index)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.install_from:
        for painting in args.styles.split(","):
            install_trained(Path(args.install_from), painting, args.lineage.replace("{name}", painting))
        return
    Path(args.work).mkdir(parents=True, exist_ok=True)
    for painting in args.styles.split(","):
        if painting not in PAINTINGS:
            sys.exit(f"unknown painting {painting!r}; known: {', '.join(PAINTINGS)}")
        train_one(painting, args)


if __name__ == "__main__":
    main()
