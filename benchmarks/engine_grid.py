"""Engine grid on this machine: every backend x precision x size for each preset, beside the eager FP32 baseline.

    nice -n 10 .venv/bin/python benchmarks/engine_grid.py --threads 1          # CPU defaults, ~8 min on 2 cores
    .venv/bin/python benchmarks/engine_grid.py --device cuda --sizes 720p,1080p,4k --batches 1,8
    .venv/bin/python benchmarks/engine_grid.py --smoke [--out DIR]            # seconds: fast preset, 64x64, 1 round

Uses the random-weight presets (speed does not depend on weight values). Besides the grid it measures the
machine's own FP32 matrix-multiply rate with the same thread count, so each row's achieved TFLOP/s can be read
as a fraction of a measured peak (the physical-limit note in benchmarks/README.md). Writes
results/engine_grid_<device>.json (every row, environment block) and .md (tables), and prints the ratios
(`--out DIR` writes there instead; `--smoke` writes to a temporary folder unless --out is given).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from styleengine.core.fsutil import atomic_path
from styleengine.engine.bench import run_bench
from styleengine.engine.bench.report import to_markdown

RESULTS = Path(__file__).resolve().parent / "results"


def matmul_peak(device: str, threads: int | None, n: int = 2048, seconds: float = 3.0) -> dict:
    """Best-of FP32 GEMM rate through torch: a measured ceiling for conv-heavy work on this device.

    Reports the wall-clock rate and, on the CPU, the rate per second of process CPU time (equal to the wall rate
    on an idle machine with 1 thread; on a shared machine it is what the core does when it runs)."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    a = torch.randn(n, n, device=dev)
    b = torch.randn(n, n, device=dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(2):
        a @ b
    sync()
    best, best_cpu, reps, t_end = float("inf"), float("inf"), 0, time.perf_counter() + seconds
    while time.perf_counter() < t_end or reps < 3:
        c0, t0 = time.process_time(), time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
        reps += 1
    flop = 2 * n**3
    return {"what": f"torch FP32 matmul {n}x{n}x{n}, best of {reps}", "threads": torch.get_num_threads(),
            "tflops": flop / best / 1e12,
            "tflops_per_cpu_second": flop / best_cpu / 1e12 if dev.type == "cpu" and best_cpu > 0 else None}


def ort_matmul_peak(threads: int | None, n: int = 2048, seconds: float = 3.0) -> dict | None:
    """The same GEMM through ONNX Runtime's MLAS kernels (the CPU backend's own): on AMD CPUs torch's MKL can take a
    slower code path, so the CPU ceiling is the higher of the two."""
    try:
        import numpy as np
        import onnxruntime as ort
        from onnx import TensorProto, helper
    except ImportError:
        return None
    g = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
                          [helper.make_tensor_value_info(k, TensorProto.FLOAT, [n, n]) for k in "ab"],
                          [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # any onnxruntime reads it
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or 0
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {k: rng.random((n, n), dtype=np.float32) for k in "ab"}
    sess.run(None, feed)
    best, best_cpu, reps, t_end = float("inf"), float("inf"), 0, time.perf_counter() + seconds
    while time.perf_counter() < t_end or reps < 3:
        c0, t0 = time.process_time(), time.perf_counter()
        sess.run(None, feed)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
        reps += 1
    flop = 2 * n**3
    return {"what": f"ONNX Runtime (MLAS) FP32 MatMul {n}x{n}x{n}, best of {reps}", "threads": threads,
            "tflops": flop / best / 1e12, "tflops_per_cpu_second": flop / best_cpu / 1e12}


def best_peak(*peaks: dict) -> dict:
    """The highest of several measurements (before and after the grid): a ceiling is the best the machine gave."""
    peaks = tuple(p for p in peaks if p)
    out = dict(max(peaks, key=lambda p: p.get("tflops_per_cpu_second") or p["tflops"]))
    out["tflops"] = max(p["tflops"] for p in peaks)
    cpu = [p["tflops_per_cpu_second"] for p in peaks if p.get("tflops_per_cpu_second")]
    out["tflops_per_cpu_second"] = max(cpu) if cpu else None
    out["what"] += f"; the highest of {len(peaks)} measurements (torch and ONNX Runtime GEMMs, before and after the grid)"
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="johnson,fast")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backends", default="all")
    ap.add_argument("--precisions", default=None, help="default: fp32,int8 on CPU; fp32,fp16 on CUDA")
    ap.add_argument("--sizes", default=None, help="default: 256,512 on CPU; 720p,1080p,4k on CUDA")
    ap.add_argument("--batches", default="1")
    ap.add_argument("--seconds", type=float, default=3.0, help="time budget per row (at least --min-iters)")
    ap.add_argument("--min-iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=2, help="passes over the grid, samples pooled (fairer on a shared box)")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: physical cores)")
    ap.add_argument("--name", default=None, help="results file stem (default engine_grid_<device>)")
    ap.add_argument("--out", type=Path, default=None, help=f"results folder (default {RESULTS})")
    ap.add_argument("--smoke", action="store_true",
                    help="a seconds-long run proving the script works: fast preset, every backend at fp32, 64x64, "
                         "1 round, tiny GEMMs; writes to --out or a temporary folder, never to results/")
    args = ap.parse_args(argv)

    from styleengine.cli.console import configure

    configure()
    gemm = {}
    if args.smoke:
        args.presets, args.backends, args.precisions, args.sizes = "fast", "all", "fp32", "64"
        args.seconds, args.min_iters, args.warmup, args.rounds = 0.01, 2, 1, 1
        args.threads = args.threads or 1
        gemm = {"n": 128, "seconds": 0.05}
    out_dir = args.out or (Path(tempfile.mkdtemp(prefix="engine_grid_smoke_")) if args.smoke else RESULTS)

    cpu = args.device == "cpu"
    if args.threads is None and cpu:
        from styleengine.core.hostinfo import physical_cores

        args.threads = physical_cores()
    precisions = args.precisions or ("fp32,int8" if cpu else "fp32,fp16")
    sizes = args.sizes or ("256,512" if cpu else "720p,1080p,4k")
    def measure_peaks() -> list[dict]:
        peaks = [matmul_peak(args.device, args.threads, **gemm)]
        return peaks + ([ort_matmul_peak(args.threads, **gemm)] if cpu else [])

    peak_before = measure_peaks()
    reports = []
    for preset in args.presets.split(","):
        print(f"== {preset} (random weights) on {args.device}", file=sys.stderr, flush=True)
        rep = run_bench(preset, backend=args.backends, precision=precisions, size=sizes, batch=args.batches,
                        device=args.device, warmup=args.warmup, seconds=args.seconds, min_iters=args.min_iters,
                        threads=args.threads, rounds=args.rounds)
        reports.append(rep)
    peaks = peak_before + measure_peaks()
    peak = best_peak(*peaks)
    # With 1 thread on the CPU, CPU-time figures are the contention-free view of a shared machine.
    by_cpu = cpu and args.threads == 1 and peak.get("tflops_per_cpu_second")

    summary = []
    for rep in reports:
        macs = rep.source.get("macs_per_pixel") or 0
        base_cpu = {(r["size"], r["batch"]): r.get("cpu_ms_p50") for r in rep.measured() if r["backend"] == "baseline"}
        for r in rep.measured():
            flop = 2 * macs * r["height"] * r["width"] * r["batch"]
            entry = {"preset": rep.source["preset"], "backend": r["backend"] + (f"/{r['variant']}" if r["variant"] else ""),
                     "precision": r["precision"], "size": r["size"], "batch": r["batch"],
                     "p50_ms": r["latency_ms_p50"], "cpu_ms_p50": r.get("cpu_ms_p50"), "fps": r["fps"],
                     "tflops": r["tflops"], "speedup_vs_eager_fp32": r["speedup"],
                     "fraction_of_measured_peak": r["tflops"] / peak["tflops"] if r["tflops"] else None}
            if by_cpu and r.get("cpu_ms_p50"):
                entry["tflops_per_cpu_second"] = flop / (r["cpu_ms_p50"] / 1e3) / 1e12
                entry["fraction_of_peak_cpu_time"] = entry["tflops_per_cpu_second"] / peak["tflops_per_cpu_second"]
                b = base_cpu.get((r["size"], r["batch"]))
                entry["speedup_cpu_time"] = b / r["cpu_ms_p50"] if b else None
            summary.append(entry)
    # The physical-limit note compares floating-point rows with a floating-point GEMM; INT8 rows run on other units.
    key = "fraction_of_peak_cpu_time" if by_cpu else "fraction_of_measured_peak"
    best = max((e for e in summary if e["precision"] != "int8"), key=lambda s: s.get(key) or 0, default=None)
    stem = args.name or f"engine_grid_{args.device.replace(':', '')}"
    doc = {"format": "styleengine.bench-grid/1", "script": "benchmarks/engine_grid.py", "argv": sys.argv[1:],
           "measured_peak": peak, "peak_measurements": peaks, "ranked_by": key, "best_row": best,
           "summary": summary,
           "reports": [r.to_dict() for r in reports]}
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / f"{stem}.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    md = [f"# Engine grid on {args.device}", "",
          f"Measured peak: {peak['what']}, {peak['threads']} threads: **{peak['tflops']:.3f} TFLOP/s** wall-clock"
          + (f", **{peak['tflops_per_cpu_second']:.3f} TFLOP per CPU-second**" if peak.get("tflops_per_cpu_second") else "")
          + ".", ""]
    if best and by_cpu:
        md.append(f"Best floating-point row (CPU-time view): {best['preset']} {best['backend']} {best['precision']} {best['size']} "
                  f"x{best['batch']}: {best['tflops_per_cpu_second']:.3f} TFLOP per CPU-second = "
                  f"{100 * best['fraction_of_peak_cpu_time']:.0f}% of the measured FP32 GEMM peak (INT8 rows use other "
                  "instructions and may exceed it).")
        md.append("")
    elif best:
        md.append(f"Best row: {best['preset']} {best['backend']} {best['precision']} {best['size']} x{best['batch']}: "
                  f"{best['tflops']:.3f} TFLOP/s = {100 * best['fraction_of_measured_peak']:.0f}% of the measured peak.")
        md.append("")
    md += ["| preset | backend | prec | size | batch | p50 ms (wall) | × eager (wall) | CPU ms | × eager (CPU time) | "
           "% of peak (CPU time) |", "|" + "---|" * 10]
    for e in summary:
        md.append(f"| {e['preset']} | {e['backend']} | {e['precision']} | {e['size']} | {e['batch']} | {e['p50_ms']:.1f} | "
                  f"{e['speedup_vs_eager_fp32'] or 0:.2f} | {e['cpu_ms_p50'] or 0:.1f} | "
                  f"{e.get('speedup_cpu_time') or 0:.2f} | {100 * (e.get('fraction_of_peak_cpu_time') or 0):.0f}% |")
    md.append("")
    md += [to_markdown(r) for r in reports]
    with atomic_path(out_dir / f"{stem}.md") as tmp:
        tmp.write_text("\n".join(md))

    print(f"{'preset':<8} {'backend':<14} {'prec':<5} {'size':<8} {'b':>2} {'p50 ms':>9} {'x eager':>8} {'CPU ms':>9} "
          f"{'x eager':>8} {'% peak':>7}   (last three: process CPU time)")
    for e in summary:
        print(f"{e['preset']:<8} {e['backend']:<14} {e['precision']:<5} {e['size']:<8} {e['batch']:>2} {e['p50_ms']:>9.2f} "
              f"{e['speedup_vs_eager_fp32'] or 0:>8.2f} {e['cpu_ms_p50'] or 0:>9.2f} {e.get('speedup_cpu_time') or 0:>8.2f} "
              f"{100 * (e.get('fraction_of_peak_cpu_time') or e['fraction_of_measured_peak'] or 0):>6.1f}%")
    print(f"measured peak: {peak['what']}: {peak['tflops']:.3f} TFLOP/s wall"
          + (f", {peak['tflops_per_cpu_second']:.3f} TFLOP per CPU-second" if peak.get("tflops_per_cpu_second") else "")
          + f" ({peak['threads']} threads)")
    print(f"wrote {out_dir / (stem + '.json')} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
