"""torch on CUDA: our torch backend (FP16, channels_last, FP32 InstanceNorm, CUDA graph per shape) vs plain eager
FP32 torch, at 720p and 1080p, side by side in one run; plus the FP16 output's difference from FP32.

Needs an NVIDIA GPU and CUDA torch. Not run on the CPU-only development machine (no GPU there).

    .venv/bin/python benchmarks/gpu_torch_fp16.py [--iters 50] [--checkpoint style.pt]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "gpu_torch_fp16.json"
SIZES = {"720p": (720, 1280), "1080p": (1080, 1920)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--checkpoint")
    ap.add_argument("--output", default=str(RESULTS))
    args = ap.parse_args()

    import torch

    if not torch.cuda.is_available():
        sys.exit("needs CUDA torch and an NVIDIA GPU")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from cpu_speed import make_checkpoint

    from styleengine.core.bundle import Bundle
    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.engine.backend_torch import TorchBackend
    from styleengine.engine.environment import environment

    tmp = Path(tempfile.mkdtemp(prefix="gpu_fp16."))
    ckpt_path, source = make_checkpoint("johnson", tmp, args.checkpoint)
    bundle_dir = tmp / "b.engine"
    bundle_dir.mkdir()
    (bundle_dir / "model.pt").write_bytes(Path(ckpt_path).read_bytes())  # the torch backend needs only model.pt
    bundle = Bundle(bundle_dir, {"format": "styleengine.bundle/1"})

    eager = load_checkpoint(ckpt_path).build_model("cuda")

    def eager_fp32(x_u8: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(x_u8).cuda().permute(0, 3, 1, 2).float()
            y = eager(x).clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1)
            return y.cpu().numpy()

    ours = TorchBackend(bundle, device="cuda", precision="fp16").load()
    rng = np.random.default_rng(0)
    rows = {}
    for label, (h, w) in SIZES.items():
        x = rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
        for fn in (eager_fp32, ours.infer):
            for _ in range(5):
                fn(x)
        times = {"eager_fp32": [], "ours_fp16_graphs": []}
        for _ in range(args.iters):  # interleaved
            for name, fn in (("eager_fp32", eager_fp32), ("ours_fp16_graphs", ours.infer)):
                torch.cuda.synchronize()
                t = time.perf_counter()
                fn(x)
                times[name].append(time.perf_counter() - t)
        ref, out = eager_fp32(x).astype(int), ours.infer(x).astype(int)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows[label] = {k: {"median_ms": round(v * 1000, 2), "fps": round(1 / v, 1)} for k, v in med.items()}
        rows[label]["speedup"] = round(med["eager_fp32"] / med["ours_fp16_graphs"], 2)
        rows[label]["fp16_vs_fp32"] = {"max_abs_diff": int(np.abs(out - ref).max()),
                                       "mean_abs_diff": round(float(np.abs(out - ref).mean()), 3)}
        print(label, json.dumps(rows[label]))
    ours.close()
    result = {"benchmark": "gpu_torch_fp16", "model": source, "iters": args.iters,
              "note": "end-to-end per frame incl. host<->device copies of uint8 frames", "results": rows,
              "environment": environment()}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
