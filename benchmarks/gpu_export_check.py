"""GPU checks of the export stage: real FP16 at 1080p/4K, a real TensorRT build, parity and refit.

    python benchmarks/gpu_export_check.py --out export_check.json [--checkpoint M.pt] [--sizes 1080x1920,2160x3840]

Run by benchmarks/gpu.sh (step export-check), through its import shim. Needs TensorRT or onnxruntime-gpu with
its CUDA provider; where neither is there (the device image has onnxruntime's CPU build and no TensorRT) it
prints "SKIP: <reason>" and exits 3, which gpu.sh records as skipped.

Steps (each independent; what cannot run here is recorded with the reason, nothing is faked):
  1. build a bundle (TensorRT plan too when TensorRT is installed; time, sidecar);
  2. ONNX Runtime CUDA EP: FP32 and FP16 models on a photo at each size -> FP16-vs-FP32 uint8 error; a real FP16
     overflow would show as saturated/garbled pixels (inf -> clip) and a large error (the CPU provider cannot show
     this: it computes FP16 graphs in FP32);
  3. TensorRT plan via the engine's tensorrt backend: parity with the ORT CUDA FP32 output, median latency;
  4. refit: a second style (other random weights) of the same preset: refit_compatible() on the two FP16 models,
     then refit_engine() into a deserialized copy of the plan (weights set, refit time).
Result: --out (+ environment block).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def gpu_paths() -> tuple[bool, str]:
    """(can anything of this script run here?, what is missing). Cheap: no model, no heavy import."""
    import importlib.util

    from styleengine.core.hostinfo import cuda_device_count
    from styleengine.engine.backend_onnxruntime import OnnxRuntimeBackend

    if not cuda_device_count():
        return False, "no NVIDIA GPU found (the export stage's GPU paths need one)"
    if importlib.util.find_spec("tensorrt") is not None:
        return True, ""
    ok, why = OnnxRuntimeBackend.gpu_available()
    if ok:
        return True, ""
    return False, f"TensorRT is not installed and ONNX Runtime's GPU providers cannot run ({why})"


def diff(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return {"max_abs_diff": int(d.max()), "mean_abs_diff": round(float(d.mean()), 4),
            "pct_pixels_diff_gt_2": round(float((d > 2).mean() * 100), 4)}


def step(results: dict, name: str, fn) -> None:
    print(f"== {name}", file=sys.stderr, flush=True)
    try:
        results[name] = fn()
    except Exception as exc:  # record and go on: every step reports what it could not do
        results[name] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--image", default=str(ROOT / "styleengine" / "assets" / "samples"))
    ap.add_argument("--sizes", default="1080x1920,2160x3840")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--smoke", action="store_true", help="accepted for gpu.sh; the check below decides")
    args = ap.parse_args(argv)
    ok, why = gpu_paths()
    if not ok:
        print(f"SKIP: {why}")
        return 3

    import onnxruntime as ort
    import torch

    from styleengine.core.bundle import load_bundle
    from styleengine.core.checkpoint import save_model
    from styleengine.core.network import TransformerNet
    from styleengine.engine.environment import environment
    from styleengine.export.build import build_bundle

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fp16_overflow import load_frame, stress_frame  # noqa: E402

    results: dict = {"environment": environment()}
    work = Path(tempfile.mkdtemp(prefix="gpu-export-"))
    if args.checkpoint:
        ckpt = args.checkpoint
    else:
        torch.manual_seed(0)
        ckpt = save_model(work / "a.pt", TransformerNet(), style={"name": "random-a"})
    torch.manual_seed(1)
    ckpt_b = save_model(work / "b.pt", TransformerNet(), style={"name": "random-b"}) if not args.checkpoint else None
    src = Path(args.image)
    images = sorted(p for p in src.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if src.is_dir() else [src]
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    frames = {}
    for h, w in sizes:
        frames[f"{h}x{w}"] = load_frame(str(images[0]), h, w) if images else stress_frame(h, w)

    state: dict = {}

    def build():
        t = time.perf_counter()
        res = build_bundle(ckpt, work / "a.engine", shapes=["default", "4k"], refit=True, tensorrt="auto")
        state["bundle"] = load_bundle(res.path)
        return {"seconds": round(time.perf_counter() - t, 1), "tensorrt_note": res.tensorrt_note,
                "plans": [json.loads(p.with_suffix(".json").read_text()) for p in res.plans]}

    step(results, "build", build)

    def ort_cuda():
        b = state["bundle"]
        providers = [("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"]
        s32 = ort.InferenceSession(str(b.onnx("fp32")), providers=providers)
        s16 = ort.InferenceSession(str(b.onnx("fp16")), providers=providers)
        if "CUDAExecutionProvider" not in s16.get_providers():
            raise RuntimeError(f"ONNX Runtime CUDA provider unavailable ({ort.get_available_providers()})")
        out = {}
        for key, x in frames.items():
            y32 = s32.run(None, {"input": x})[0]
            y16 = s16.run(None, {"input": x})[0]
            state.setdefault("ref", {})[key] = y32
            t = []
            for _ in range(min(args.reps, 5)):
                t0 = time.perf_counter()
                s16.run(None, {"input": x})
                t.append(time.perf_counter() - t0)
            out[key] = {"fp16_vs_fp32": diff(y16, y32), "fp16_ms_incl_copies": round(statistics.median(t) * 1e3, 2),
                        "saturated_pct_fp16": round(float(np.isin(y16, (0, 255)).mean() * 100), 3),
                        "saturated_pct_fp32": round(float(np.isin(y32, (0, 255)).mean() * 100), 3)}
        return out

    step(results, "onnxruntime_cuda", ort_cuda)

    def tensorrt():
        from styleengine.engine.backend import get_backend

        b = state["bundle"]
        out = {}
        with get_backend("tensorrt")(b) as be:
            out["describe"] = be.describe()
            for key, x in frames.items():
                y = be.infer(x)
                t = []
                for _ in range(args.reps):
                    t0 = time.perf_counter()
                    be.infer(x)
                    t.append(time.perf_counter() - t0)
                out[key] = {"vs_ort_cuda_fp32": diff(y, state["ref"][key]) if key in state.get("ref", {}) else None,
                            "ms_median_incl_copies": round(statistics.median(t) * 1e3, 2)}
        return out

    step(results, "tensorrt_backend", tensorrt)

    def refit():
        import tensorrt as trt

        from styleengine.export import tensorrt_build as tb
        from styleengine.export.fp16 import export_fp16
        from styleengine.export.onnx_export import export_onnx

        if ckpt_b is None:
            raise RuntimeError("refit check needs the random two-style setup (run without --checkpoint)")
        b = state["bundle"]
        onnx_b = export_fp16(export_onnx(ckpt_b, work / "b32.onnx"), work / "b16.onnx")
        ok, why = tb.refit_compatible(b.onnx("fp16"), onnx_b)
        plan = next(b.plans_dir.glob("*.plan"))
        _rt, engine = tb.deserialize(trt, plan.read_bytes())
        t0 = time.perf_counter()
        n = tb.refit_engine(engine, onnx_b, trt=trt)
        return {"refit_compatible": ok, "reason": why, "weights": n,
                "refit_ms": round((time.perf_counter() - t0) * 1e3, 1)}

    step(results, "refit", refit)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "environment"}, indent=1, default=str)[:4000])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
