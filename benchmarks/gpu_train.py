"""Training speed on the GPU: the trainer as shipped (AMP, channels_last, fused Adam) vs a plain FP32 loop.

    python benchmarks/gpu_train.py --out train.json [--smoke]

Run by benchmarks/gpu.sh (step train), through its import shim. The plain loop is benchmarks/train_speed.py's
(the pytorch/examples fast_neural_style recipe: FP32, NCHW, pre-loaded batches, loss.item() every step) run in
true FP32: TF32 off (cuda_numerics("fp32"), which also turns cuDNN autotuning on, as the trainer does). Ours is
styleengine.train.trainer.train(TrainConfig(...)) end to end from the photo folder, with its defaults.
Same preset, batch, crop size, loss network (VGG16, random weights: speed does not depend on them) and style.
Windows of --window steps after --warmup steps; plain and ours alternate for --rounds; medians compared.
Photos: the bundled calibration images; style: the bundled starry_night painting.
--smoke: CPU, fast preset, 64 px crops, a few steps (checks the code paths; not a measurement).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO / "styleengine" / "assets" / "calibration"
STYLE = REPO / "styleengine" / "assets" / "styles" / "images" / "starry_night.jpg"


def ours(args, device: str) -> list[float]:
    """Steps/s of the shipped trainer per logged window, the warm-up windows left out."""
    from styleengine.train.trainer import TrainConfig, train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(style_image=args.style, data_dir=args.photos, output=Path(tmp) / "bench.pt",
                          preset=args.preset, loss_net="vgg16", random_loss_net=True,
                          steps=args.warmup + args.windows * args.window, batch_size=args.batch_size,
                          image_size=args.image_size, style_size=args.style_size, checkpoint_every=0,
                          preview_every=0, log_every=args.window, device=device, amp=args.amp,
                          workers=args.workers)
        train(cfg)
        records = [json.loads(line) for line in cfg.log_file.read_text().splitlines()]
    return [r["it_s"] for r in records if r["step"] - args.window >= args.warmup]


def plain(args, device: str) -> list[float]:
    """train_speed.plain_loop in true FP32 (TF32 off), flags restored afterwards."""
    import torch

    sys.path.insert(0, str(REPO / "benchmarks"))
    from train_speed import plain_loop

    from styleengine.engine.backend_torch import cuda_numerics
    from styleengine.train.data import scan_images

    ns = argparse.Namespace(loss_net="vgg16", random_loss_net=True, style=str(args.style),
                            style_size=args.style_size, preset=args.preset, image_size=args.image_size,
                            batch_size=args.batch_size, warmup=args.warmup, windows=args.windows,
                            window=args.window)
    files = scan_images(args.photos).files
    with cuda_numerics("fp32"):
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        return plain_loop(ns, torch.device(device), files)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--photos", type=Path, default=PHOTOS)
    ap.add_argument("--style", type=Path, default=STYLE)
    ap.add_argument("--preset", default="johnson")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--style-size", type=int, default=256)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--windows", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2, help="alternating plain/ours rounds")
    ap.add_argument("--amp", default="auto")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--smoke", action="store_true", help="CPU dry run at tiny sizes (not a measurement)")
    args = ap.parse_args(argv)
    import torch

    from styleengine.cli.console import configure
    from styleengine.engine.environment import environment

    configure(quiet=True)
    device = "cuda"
    if args.smoke:
        device, args.preset, args.image_size, args.style_size, args.batch_size = "cpu", "fast", 64, 64, 2
        args.warmup, args.window, args.windows, args.rounds = 1, 2, 1, 1
    elif not torch.cuda.is_available():
        print("error: no CUDA GPU visible to torch; this benchmark needs the device machine", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    p, o = [], []
    for _ in range(args.rounds):  # alternated, so a drift hits both alike
        p += plain(args, device)
        print(f"plain FP32 (TF32 off): {[round(x, 2) for x in p]} steps/s", flush=True)
        o += ours(args, device)
        print(f"ours: {[round(x, 2) for x in o]} steps/s", flush=True)
    result = {
        "benchmark": "gpu_train", "smoke": args.smoke, "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "out"},
        "plain": {"median": statistics.median(p), "best": max(p), "windows": p,
                  "what": "plain FP32 loop, TF32 off, NCHW, pre-loaded batches, loss.item() each step"},
        "ours": {"median": statistics.median(o), "best": max(o), "windows": o,
                 "what": "styleengine trainer as shipped (CUDA: AMP auto, channels_last, fused Adam), from the photo folder"},
        "speedup_median": round(statistics.median(o) / statistics.median(p), 3),
        "speedup_best": round(max(o) / max(p), 3),
        "note": "steps/s over windows after the warm-up; loss net VGG16 with random weights (same speed)",
        "seconds": round(time.perf_counter() - t0, 1),
        "environment": environment(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps({k: result[k] for k in ("device", "speedup_median", "speedup_best")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
