"""Merge a device session's pieces (bench JSONs, peak, stream, env) into two files and print the short table.

    python3 benchmarks/gpu_summary.py WORK_DIR OUT_DIR

Run by benchmarks/gpu.sh after every step, so whatever finished before a time-out still comes back. Writes
OUT_DIR/gpu_results.json (everything, with environment blocks) and OUT_DIR/gpu_summary.md (the tables).
Works on CPU-made files too (then the peak and GPU columns are empty).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _f(v, digits=2):
    if v is None:
        return "—"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def summarize(work: Path) -> tuple[dict, str]:
    peak = _load(work / "peak.json") or {}
    benches = {p.stem: _load(p) for p in sorted(work.glob("bench_*.json"))}
    benches = {k: v for k, v in benches.items() if v}
    stream = _load(work / "stream_720p.json")
    env = _load(work / "env.json")
    smi = (work / "nvidia-smi.txt").read_text() if (work / "nvidia-smi.txt").exists() else None
    fp16_peak = peak.get("matmul_fp16_tflops")
    rows = []
    for name, doc in benches.items():
        for r in doc.get("rows", []):
            if r.get("status") != "ok":
                continue
            rows.append(dict(r, run=name, frac_fp16_peak=(r["tflops"] / fp16_peak if fp16_peak and r.get("tflops") else None)))
    best = max(rows, key=lambda r: r.get("tflops") or 0, default=None)
    results = {"format": "styleengine.gpu-session/1", "peak": peak, "benches": benches, "stream": stream,
               "environment": env, "nvidia_smi": smi,
               "best_row": {k: best.get(k) for k in ("run", "backend", "variant", "precision", "size", "batch",
                                                    "latency_ms_p50", "tflops", "frac_fp16_peak")} if best else None}
    md = ["# GPU session results", ""]
    if peak:
        md.append(f"Measured on {peak.get('device')}: matmul FP32 {peak.get('matmul_fp32_tflops')} / TF32 "
                  f"{peak.get('matmul_tf32_tflops')} / FP16 {fp16_peak} / BF16 {peak.get('matmul_bf16_tflops')} TFLOP/s; "
                  f"device copy {peak.get('d2d_copy_tb_per_s')} TB/s; pinned H2D {peak.get('h2d_pinned_gb_per_s')} GB/s, "
                  f"D2H {peak.get('d2h_pinned_gb_per_s')} GB/s.")
        md.append("")
    md.append("| run | backend | prec | size | batch | p50 ms | GPU ms | H2D ms | compute ms | D2H ms | frames/s | "
              "TFLOP/s | % FP16 matmul peak | × eager FP32 | Δ max | prepare s |")
    md.append("|" + "---|" * 16)
    for r in rows:
        name = r["backend"] + (f"/{r['variant']}" if r.get("variant") else "")
        md.append(f"| {r['run']} | {name} | {r['precision']} | {r['size']} | {r['batch']} | {_f(r.get('latency_ms_p50'))} | "
                  f"{_f(r.get('gpu_ms_p50'))} | {_f(r.get('h2d_ms_p50'))} | {_f(r.get('compute_ms_p50'))} | "
                  f"{_f(r.get('d2h_ms_p50'))} | {_f(r.get('fps'), 1)} | {_f(r.get('tflops'), 2)} | "
                  f"{_f(100 * r['frac_fp16_peak'], 1) if r.get('frac_fp16_peak') else '—'} | {_f(r.get('speedup'))} | "
                  f"{_f(r.get('max_abs_diff'))} | {_f(r.get('prepare_s'), 1)} |")
    for name, doc in benches.items():
        for r in doc.get("rows", []):
            if r.get("status") != "ok":
                what = " ".join(str(x) for x in (r.get("backend"), r.get("variant"), r.get("precision"), r.get("size"),
                                                 r.get("batch")) if x)
                md.append(f"\n- {name}: {what}: {r['status']}: {r.get('reason')}")
    if best:
        md += ["", f"Best row: {best['run']} {best['backend']}{'/' + best['variant'] if best.get('variant') else ''} "
                   f"{best['precision']} {best['size']} x{best['batch']}: {_f(best.get('tflops'), 1)} TFLOP/s"
                   + (f" = {100 * best['frac_fp16_peak']:.1f}% of the measured FP16 matmul peak" if best.get('frac_fp16_peak') else "")]
    if stream:
        for run in stream.get("runs", []):
            md += ["", f"Streaming ({run.get('label')}): pure inference {run['pure_inference']['fps_median']} fps, naive loop "
                       f"{run['naive']['fps']} fps, pipeline {run['pipeline']['fps']} fps "
                       f"(pipeline/pure {run['ratios']['pipeline_vs_pure_inference']}, pipeline/naive "
                       f"{run['ratios']['pipeline_vs_naive']}), backend {run.get('backend')}, encoder {run.get('encoder')}"]
    if smi:
        md += ["", "nvidia-smi:", "", "```", smi.strip(), "```"]
    return results, "\n".join(md) + "\n"


def plot(results: dict, path: Path) -> None:
    """p50 latency vs megapixels per frame for every measured row of every bench run (matplotlib is in the image)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    series: dict[str, dict[float, tuple[float, str]]] = {}
    for doc in results["benches"].values():
        for r in doc.get("rows", []):
            if r.get("status") != "ok":
                continue
            name = r["backend"] + (f"/{r['variant']}" if r.get("variant") else "")
            key = f"{name} {r['precision']} x{r['batch']}"
            mp = r["height"] * r["width"] / 1e6
            # the same cell from two runs (the baseline is in every one): keep the faster median
            if mp not in series.setdefault(key, {}) or r["latency_ms_p50"] < series[key][mp][0]:
                series[key][mp] = (r["latency_ms_p50"], r["size"])
    if not series:
        return
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    ticks = {}
    for key, pts in sorted(series.items()):
        xs = sorted(pts)
        ax.plot(xs, [pts[x][0] for x in xs], marker="o", label=key)
        ticks.update({x: pts[x][1] for x in xs})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(list(ticks), [ticks[t] for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("resolution (megapixels per frame)")
    ax.set_ylabel("p50 latency per batch (ms)")
    ax.set_title(f"johnson (random weights) on {results['peak'].get('device', 'the GPU')}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    work, out = Path(sys.argv[1]), Path(sys.argv[2])
    results, md = summarize(work)
    plot(results, out / "gpu_latency.png")
    (out / "gpu_results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / "gpu_summary.md").write_text(md)
    table = [ln for ln in md.splitlines() if ln.startswith("| ") or ln.startswith("Best") or ln.startswith("Streaming")]
    print("\n".join(table[-40:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
