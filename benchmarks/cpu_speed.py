"""CPU speed of the stylization backends, side by side in one run, at 640x360 (the issue's target).

Baseline: plain eager FP32 torch (the torch backend on the CPU: model(x) under inference_mode, 2 threads).
Variants: ONNX Runtime FP32 (threads = physical cores, ORT_ENABLE_ALL, sequential; spin-wait off (our default) /
on),
ONNX Runtime INT8 (static QDQ quantization, engine/quantize.py), and the `fast` preset for each.
Variants are interleaved round-robin and summarized by medians, because the machine is shared.
Quality cost of INT8: PSNR / max / mean uint8 difference against the FP32 output on the same frames (frames
not used for calibration).

    nice -n 0 .venv/bin/python benchmarks/cpu_speed.py [--rounds 7] [--checkpoint style.pt]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "cpu_speed.json"
SAMPLES = ROOT / "styleengine" / "assets" / "samples"
W, H = 640, 360


def eval_frames(n: int = 4) -> list[np.ndarray]:
    """Real frames (video + a photo), never the calibration images."""
    from PIL import Image

    frames = []
    try:
        import av

        with av.open(str(SAMPLES / "bunny_2s.mp4")) as c:
            for i, f in enumerate(c.decode(video=0)):
                if i % 12 == 0:
                    frames.append(np.asarray(f.to_image().convert("RGB").resize((W, H), Image.BILINEAR)))
                if len(frames) >= n - 1:
                    break
    except Exception as exc:  # benchmark still runs on the photo alone
        print(f"(no video frames: {exc})", file=sys.stderr)
    with Image.open(SAMPLES / "chelsea.jpg") as im:
        frames.append(np.asarray(im.convert("RGB").resize((W, H), Image.BILINEAR)))
    return [np.ascontiguousarray(f[None]) for f in frames]


def make_checkpoint(preset: str, folder: Path, given: str | None) -> tuple[Path, str]:
    """A trained built-in when one exists for the preset (real activation statistics), else random weights."""
    if given:
        return Path(given), "given checkpoint"
    try:
        from styleengine.engine.builtin_styles import list_builtins

        for s in list_builtins():
            if s.preset == preset:
                return s.path, f"built-in {s.name}"
    except Exception:
        pass
    import torch

    from styleengine.core.checkpoint import save_model
    from styleengine.core.network import PRESETS, TransformerNet

    torch.manual_seed(0)
    model = TransformerNet(PRESETS[preset])
    with torch.no_grad():  # random IN affine + output scale so the output is not flat grey
        for name, p in model.named_parameters():
            if name.startswith("in") or ".in" in name:
                p.uniform_(0.5, 1.5) if name.endswith("weight") else p.uniform_(-0.5, 0.5)
        model.deconv3.conv2d.bias.fill_(127.0)
        model.deconv3.conv2d.weight.mul_(20.0)
    path = folder / f"{preset}.pt"
    save_model(path, model, style={"name": f"random-{preset}"})
    return path, "random weights (no trained built-in of this preset yet)"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--checkpoint", help="johnson-preset checkpoint to measure (default: built-in or random)")
    ap.add_argument("--no-fast", action="store_true", help="skip the fast preset")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for every variant (torch.set_num_threads and ORT intra-op); default: torch's "
                         "default and ORT's physical cores")
    ap.add_argument("--output", default=str(RESULTS))
    args = ap.parse_args()

    from styleengine.core.bundle import load_bundle
    from styleengine.engine.backend import get_backend
    from styleengine.engine.environment import environment
    from styleengine.export.build import build_bundle

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    frames = eval_frames()
    tmp = Path(tempfile.mkdtemp(prefix="cpu_speed."))
    os.environ.setdefault("STYLEENGINE_CACHE", str(tmp / "cache"))
    presets = ["johnson"] + ([] if args.no_fast else ["fast"])
    bundles, sources = {}, {}
    for preset in presets:
        ckpt, sources[preset] = make_checkpoint(preset, tmp, args.checkpoint if preset == "johnson" else None)
        print(f"building {preset} bundle from {sources[preset]} ...", file=sys.stderr, flush=True)
        bundles[preset] = load_bundle(build_bundle(ckpt, tmp / f"{preset}.engine", tensorrt="off").path)

    variants = {}
    for preset in presets:
        b = bundles[preset]
        variants[f"{preset}/torch_eager_fp32"] = get_backend("torch")(b, device="cpu", precision="fp32")
        ort = get_backend("onnxruntime")
        variants[f"{preset}/ort_fp32"] = ort(b, provider="cpu", precision="fp32", threads=args.threads)
        variants[f"{preset}/ort_fp32_spin"] = ort(b, provider="cpu", precision="fp32", spinning=True, threads=args.threads)
        variants[f"{preset}/ort_int8"] = ort(b, provider="cpu", precision="int8", threads=args.threads)
    for name, be in variants.items():
        t = time.perf_counter()
        be.load()
        be.infer(frames[0])  # warm-up (allocations, first-run kernels)
        print(f"loaded {name} ({time.perf_counter() - t:.1f} s)", file=sys.stderr, flush=True)

    load_before = os.getloadavg()
    times: dict[str, list[float]] = {k: [] for k in variants}
    outputs: dict[str, list[np.ndarray]] = {k: [] for k in variants}
    for r in range(args.rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))  # interleave, alternate order
        for name in order:
            for f in frames:
                t = time.perf_counter()
                y = variants[name].infer(f)
                times[name].append(time.perf_counter() - t)
                if r == 0:
                    outputs[name].append(y)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k.split('/')[0][0]}/{k.split('/')[1]} "
              f"{1 / statistics.median(v):.2f}" for k, v in times.items()), file=sys.stderr, flush=True)
    load_after = os.getloadavg()

    base = statistics.median(times["johnson/torch_eager_fp32"])
    nf = len(frames)

    def round_ratio(name: str) -> float:
        """Median over rounds of (baseline / variant) within the same round: robust to load drifting."""
        b, v = times["johnson/torch_eager_fp32"], times[name]
        return statistics.median(statistics.median(b[i:i + nf]) / statistics.median(v[i:i + nf])
                                 for i in range(0, len(v), nf))

    rows = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        rows[name] = {"median_ms": round(med * 1000, 1), "fps": round(1 / med, 3),
                      "speedup_vs_johnson_torch_eager_fp32": round(base / med, 2),
                      "speedup_median_of_rounds": round(round_ratio(name), 2),
                      "p10_ms": round(float(np.percentile(ts, 10)) * 1000, 1),
                      "p90_ms": round(float(np.percentile(ts, 90)) * 1000, 1), "samples": len(ts)}
    quality = {}
    for preset in presets:
        ref = outputs[f"{preset}/ort_fp32"]
        for name in (f"{preset}/torch_eager_fp32", f"{preset}/ort_int8"):
            diffs = [np.abs(a.astype(int) - b.astype(int)) for a, b in zip(outputs[name], ref)]
            quality[f"{name} vs {preset}/ort_fp32"] = {
                "psnr_db": round(min(psnr(a, b) for a, b in zip(outputs[name], ref)), 2),
                "max_abs_diff": int(max(d.max() for d in diffs)),
                "mean_abs_diff": round(float(np.mean([d.mean() for d in diffs])), 3)}
    result = {
        "benchmark": "cpu_speed",
        "resolution": f"{W}x{H}",
        "frames": len(frames),
        "rounds": args.rounds,
        "models": sources,
        "results": rows,
        "quality": quality,
        "loadavg_before_after": [list(load_before), list(load_after)],
        "threads": {k: v.describe().get("threads") for k, v in variants.items()},
        "torch_threads": __import__("torch").get_num_threads(),
        "environment": environment(),
    }
    for be in variants.values():
        be.close()
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"{'variant':34} {'ms':>8} {'fps':>7} {'x eager':>8} {'x/round':>8}")
    for name, r in rows.items():
        print(f"{name:34} {r['median_ms']:8.1f} {r['fps']:7.2f} {r['speedup_vs_johnson_torch_eager_fp32']:8.2f} "
              f"{r['speedup_median_of_rounds']:8.2f}")
    print(f"load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} (2 usable cores)")
    for k, q in quality.items():
        print(f"quality {k}: PSNR {q['psnr_db']} dB, max |diff| {q['max_abs_diff']}, mean {q['mean_abs_diff']}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
