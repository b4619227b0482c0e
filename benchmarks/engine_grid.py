"""Engine grid on this machine: every backend x precision x size for each preset, beside the eager FP32 baseline.

    nice -n 10 .venv/bin/python benchmarks/engine_grid.py                      # CPU defaults, ~5 min on 2 cores
    .venv/bin/python benchmarks/engine_grid.py --device cuda --sizes 720p,1080p,4k --batches 1,8

Uses the random-weight presets (speed does not depend on weight values). Besides the grid it measures the
machine's own FP32 matrix-multiply rate with the same thread count, so each row's achieved TFLOP/s can be read
as a fraction of a measured peak (the physical-limit note in benchmarks/README.md). Writes
results/engine_grid_<device>.json (every row, environment block) and .md (tables), and prints the ratios.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from styleengine.engine.bench import run_bench
from styleengine.engine.bench.report import to_markdown
from styleengine.fsutil import atomic_path

RESULTS = Path(__file__).resolve().parent / "results"


def matmul_peak(device: str, threads: int | None, n: int = 2048, seconds: float = 3.0) -> dict:
    """Best-of FP32 GEMM rate (TFLOP/s) through torch: a measured ceiling for conv-heavy work on this device."""
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
    best, reps, t_end = float("inf"), 0, time.perf_counter() + seconds
    while time.perf_counter() < t_end or reps < 3:
        t0 = time.perf_counter()
        a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
        reps += 1
    return {"what": f"torch FP32 matmul {n}x{n}x{n}, best of {reps}", "threads": torch.get_num_threads(),
            "tflops": 2 * n**3 / best / 1e12, "tf32_allowed": bool(dev.type == "cuda" and torch.backends.cuda.matmul.allow_tf32)}


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
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: physical cores)")
    ap.add_argument("--name", default=None, help="results file stem (default engine_grid_<device>)")
    args = ap.parse_args(argv)

    cpu = args.device == "cpu"
    if args.threads is None and cpu:
        from styleengine.engine.hardware import physical_cores

        args.threads = physical_cores()
    precisions = args.precisions or ("fp32,int8" if cpu else "fp32,fp16")
    sizes = args.sizes or ("256,512" if cpu else "720p,1080p,4k")
    reports = []
    for preset in args.presets.split(","):
        print(f"== {preset} (random weights) on {args.device}", file=sys.stderr, flush=True)
        rep = run_bench(preset, backend=args.backends, precision=precisions, size=sizes, batch=args.batches,
                        device=args.device, warmup=args.warmup, seconds=args.seconds, min_iters=args.min_iters,
                        threads=args.threads, log=lambda m: print("  " + m, file=sys.stderr, flush=True))
        reports.append(rep)
    peak = matmul_peak(args.device, args.threads)

    summary = []
    for rep in reports:
        for r in rep.measured():
            summary.append({"preset": rep.source["preset"], "backend": r["backend"] + (f"/{r['variant']}" if r["variant"] else ""),
                            "precision": r["precision"], "size": r["size"], "batch": r["batch"],
                            "p50_ms": r["latency_ms_p50"], "fps": r["fps"], "tflops": r["tflops"],
                            "speedup_vs_eager_fp32": r["speedup"],
                            "fraction_of_measured_peak": r["tflops"] / peak["tflops"] if r["tflops"] else None})
    best = max(summary, key=lambda s: s["fraction_of_measured_peak"] or 0, default=None)
    stem = args.name or f"engine_grid_{args.device.replace(':', '')}"
    doc = {"format": "styleengine.bench-grid/1", "script": "benchmarks/engine_grid.py", "argv": sys.argv[1:],
           "measured_peak": peak, "best_row": best, "summary": summary,
           "reports": [r.to_dict() for r in reports]}
    RESULTS.mkdir(exist_ok=True)
    with atomic_path(RESULTS / f"{stem}.json") as tmp:
        tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    md = [f"# Engine grid on {args.device}", "",
          f"Measured peak: {peak['what']}, {peak['threads']} threads: **{peak['tflops']:.3f} TFLOP/s**.", ""]
    if best:
        md.append(f"Best row: {best['preset']} {best['backend']} {best['precision']} {best['size']} x{best['batch']}: "
                  f"{best['tflops']:.3f} TFLOP/s = {100 * best['fraction_of_measured_peak']:.0f}% of the measured peak.")
        md.append("")
    md += [to_markdown(r) for r in reports]
    with atomic_path(RESULTS / f"{stem}.md") as tmp:
        tmp.write_text("\n".join(md))

    print(f"{'preset':<8} {'backend':<14} {'prec':<5} {'size':<10} {'b':>2} {'p50 ms':>9} {'fps':>8} {'TFLOP/s':>8} "
          f"{'x eager':>8} {'% peak':>7}")
    for s in summary:
        print(f"{s['preset']:<8} {s['backend']:<14} {s['precision']:<5} {s['size']:<10} {s['batch']:>2} {s['p50_ms']:>9.2f} "
              f"{s['fps']:>8.2f} {s['tflops'] or 0:>8.3f} {s['speedup_vs_eager_fp32'] or 0:>8.2f} "
              f"{100 * (s['fraction_of_measured_peak'] or 0):>6.1f}%")
    print(f"measured peak: {peak['what']}: {peak['tflops']:.3f} TFLOP/s ({peak['threads']} threads)")
    print(f"wrote {RESULTS / (stem + '.json')} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
