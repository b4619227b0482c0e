"""Export time, and ONNX Runtime CPU latency of the FP32 model vs plain eager torch on the same frames (one run).

    python benchmarks/export_time.py [--checkpoint M.pt] [--preset johnson] [--sizes 256x256,360x640] [--reps 5]
    python benchmarks/export_time.py --smoke [--out F]    # fast preset, 64x64, 2 reps, no whole-bundle build

1. Times each build step on the model: dynamo ONNX export (+ checks), FP16 conversion, ORT-vs-torch parity, and
   the whole `build_bundle` (TensorRT off).
2. Latency per frame, uint8 NHWC in -> uint8 NHWC out on both sides (the same graph: cast, transpose, network,
   clamp, round), batch 1: eager torch (inference_mode, default threads) vs ONNX Runtime CPUExecutionProvider on
   the exported FP32 model (default threads). The two are interleaved rep by rep so machine load hits both alike;
   medians of wall time and of process CPU time (all threads; less sensitive to other load on a shared machine)
   are reported with their ratios.
Result: benchmarks/results/export_time.json (+ environment block), or --out; --smoke writes to --out or a
temporary file, never to results/. Speed does not depend on the weights, so without --checkpoint a random-weight
network of --preset is used.
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

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "export_time.json"


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--preset", default="johnson")
    ap.add_argument("--sizes", default="256x256,360x640")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help=f"default {RESULTS}")
    ap.add_argument("--smoke", action="store_true",
                    help="seconds-long run proving the script works: fast preset, 64x64, 2 reps, no whole-bundle "
                         "build step; writes to --out or a temporary file")
    args = ap.parse_args(argv)
    if args.smoke:
        args.preset, args.sizes, args.reps = "fast", "64x64", 2
        args.out = args.out or Path(tempfile.mkdtemp(prefix="export_time_smoke_")) / "export_time.json"
    args.out = args.out or RESULTS

    import onnxruntime as ort
    import torch

    from styleengine.core.checkpoint import load_checkpoint, save_model
    from styleengine.core.fsutil import atomic_path
    from styleengine.core.network import TransformerNet, preset
    from styleengine.engine.environment import environment
    from styleengine.export.build import build_bundle
    from styleengine.export.fp16 import export_fp16
    from styleengine.export.onnx_export import export_onnx, uint8_model
    from styleengine.export.parity import onnx_parity

    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        if args.checkpoint:
            ckpt_path = args.checkpoint
        else:
            torch.manual_seed(0)
            ckpt_path = save_model(d / f"{args.preset}.pt", TransformerNet(preset(args.preset)),
                                   style={"name": "random"}, loss_net="none (random weights)")
        ckpt = load_checkpoint(ckpt_path)
        steps = {}
        fp32, steps["onnx_export_fp32_s"] = timed(lambda: export_onnx(ckpt, d / "m32.onnx"))
        fp16, steps["fp16_conversion_s"] = timed(lambda: export_fp16(fp32, d / "m16.onnx"))
        parity, steps["parity_fp32_s"] = timed(lambda: onnx_parity(fp32, ckpt))
        if not args.smoke:  # the whole build repeats the export (the smoke run keeps to one export)
            _, steps["build_bundle_total_s"] = timed(lambda: build_bundle(ckpt_path, d / "b.engine", tensorrt="off"))
        steps = {k: round(v, 2) for k, v in steps.items()}
        print("export steps:", steps, file=sys.stderr)

        ref = uint8_model(ckpt)
        sess = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
        latency = []
        rng = np.random.default_rng(0)
        for spec in args.sizes.split(","):
            h, w = (int(v) for v in spec.lower().split("x"))
            frame = rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
            t_torch, t_ort = [], []

            def run_torch():
                with torch.inference_mode():
                    return ref(torch.from_numpy(frame)).numpy()

            def run_ort():
                return sess.run(None, {"input": frame})[0]

            a, b = run_torch(), run_ort()  # warm-up (also a parity spot check on this size)
            diff = int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())
            c_torch, c_ort = [], []
            for _ in range(args.reps):
                for fn, wall, cpu in ((run_torch, t_torch, c_torch), (run_ort, t_ort, c_ort)):
                    c0 = time.process_time()
                    wall.append(timed(fn)[1])
                    cpu.append(time.process_time() - c0)  # CPU seconds of all our threads: robust to machine load
            row = {"size": [h, w], "reps": args.reps, "torch_eager_ms": round(statistics.median(t_torch) * 1e3, 1),
                   "onnxruntime_cpu_ms": round(statistics.median(t_ort) * 1e3, 1),
                   "torch_eager_cpu_time_ms": round(statistics.median(c_torch) * 1e3, 1),
                   "onnxruntime_cpu_time_ms": round(statistics.median(c_ort) * 1e3, 1), "max_abs_diff_uint8": diff}
            row["ort_speedup_vs_torch"] = round(row["torch_eager_ms"] / row["onnxruntime_cpu_ms"], 3)
            row["ort_cpu_time_ratio_vs_torch"] = round(row["torch_eager_cpu_time_ms"] / row["onnxruntime_cpu_time_ms"], 3)
            latency.append(row)
            print(f"{h}x{w}: torch {row['torch_eager_ms']} ms, ORT {row['onnxruntime_cpu_ms']} ms wall, "
                  f"ORT/torch speedup x{row['ort_speedup_vs_torch']} (CPU time x{row['ort_cpu_time_ratio_vs_torch']}) "
                  f"(max diff {diff})")

    result = {"model": {"checkpoint": str(args.checkpoint) if args.checkpoint else None, "preset": ckpt.arch.preset,
                        "random_weights": not args.checkpoint},
              "export_steps": steps, "parity_fp32": {"max_abs_diff": parity["max_abs_diff"]},
              "latency_batch1": latency, "torch_threads": torch.get_num_threads(),
              "onnxruntime": ort.__version__, "environment": environment()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
