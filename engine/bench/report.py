"""Benchmark output: rich table, JSON, CSV, Markdown and a latency-vs-resolution plot.

Every file carries the environment block (versions, CPU, GPUs, driver, clocks): JSON as a key, CSV as leading
`#` comment lines (pandas: `read_csv(path, comment="#")`), Markdown as a section under the table.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_path

from .grid import BenchReport

CSV_FIELDS = [
    "backend", "variant", "precision", "device", "size", "height", "width", "batch", "status", "reason",
    "warmup", "iters", "load_s", "prepare_s",
    "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "latency_ms_mean", "latency_ms_min", "latency_ms_max",
    "latency_ms_std", "cpu_ms_p50", "cpu_ms_min", "gpu_ms_p50", "gpu_ms_p90", "gpu_ms_p99", "gpu_ms_mean", "h2d_ms_p50", "compute_ms_p50",
    "d2h_ms_p50", "gpu_timing", "fps", "mpix_per_s", "tflops", "speedup", "host_peak_mib", "host_peak_scope",
    "device_peak_mib", "device_mem_scope", "gpu_sm_clock_mhz", "max_abs_diff", "mean_abs_diff", "round_p50_ms",
]


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None or v == "":
        return "—"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1e5 else f"{v:.3g}"
    return str(v)


def row_name(r: dict[str, Any]) -> str:
    return r["backend"] + (f"/{r['variant']}" if r.get("variant") else "")


def environment_lines(report: BenchReport) -> list[str]:
    env = report.environment
    cpu = env.get("cpu") or {}
    lines = [f"styleengine {env.get('styleengine')}, Python {env.get('python')}, {env.get('platform')}",
             f"CPU: {cpu.get('name')} ({cpu.get('usable_cores')} usable of {cpu.get('logical_cores')} logical cores)"]
    pk = env.get("packages") or {}
    lines.append("packages: " + ", ".join(f"{k} {v}" for k, v in pk.items() if v))
    gpus = env.get("gpus") or []
    for g in gpus:
        lines.append(f"GPU {g.get('index')}: {g.get('name')} (sm {g.get('compute_capability')}, "
                     f"{g.get('memory_mib')} MiB, driver {g.get('driver')}, max SM clock {g.get('max_sm_clock_mhz')} MHz)")
    if not gpus:
        lines.append("GPU: none")
    for label, clocks in (("before", report.gpu_clocks_before), ("after", report.gpu_clocks_after)):
        for c in clocks or []:
            lines.append(f"GPU {c.get('index')} clocks {label}: SM {c.get('clocks_sm')} / {c.get('clocks_max_sm')} MHz, "
                         f"memory {c.get('clocks_mem')} MHz, {c.get('power_draw')} W of {c.get('power_limit')} W, "
                         f"{c.get('temperature_gpu')} °C, {c.get('pstate')}")
    src = report.source
    lines.append(f"style: {src.get('style')} ({src.get('weights')}), preset {src.get('preset')}, "
                 f"{_fmt(src.get('macs_per_pixel'), 0)} MACs/pixel")
    extra = []
    if env.get("torch_threads"):
        extra.append(f"torch threads {env['torch_threads']}")
    if env.get("load_average_1_5_15min"):
        extra.append("load average " + " / ".join(str(x) for x in env["load_average_1_5_15min"]))
    lines.append(f"run: {report.started_at}, {report.duration_s:.1f} s" + (", " + ", ".join(extra) if extra else ""))
    return lines


def to_json(report: BenchReport) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str) + "\n"


def to_csv(report: BenchReport) -> str:
    buf = io.StringIO()
    for line in environment_lines(report):
        buf.write(f"# {line}\n")
    buf.write("# environment: " + json.dumps(report.environment, default=str) + "\n")
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in report.rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in CSV_FIELDS})
    return buf.getvalue()


MD_COLUMNS = [("backend", "backend"), ("precision", "prec"), ("size", "size"), ("batch", "batch"),
              ("latency_ms_p50", "p50 ms"), ("latency_ms_p90", "p90 ms"), ("latency_ms_p99", "p99 ms"),
              ("latency_ms_mean", "mean ms"), ("cpu_ms_p50", "CPU ms"), ("gpu_ms_p50", "GPU ms"), ("h2d_ms_p50", "H2D ms"),
              ("compute_ms_p50", "compute ms"), ("d2h_ms_p50", "D2H ms"), ("fps", "frames/s"),
              ("mpix_per_s", "MP/s"), ("tflops", "TFLOP/s"), ("speedup", "× baseline"),
              ("host_peak_mib", "host MiB"), ("device_peak_mib", "device MiB"),
              ("mean_abs_diff", "Δ mean"), ("max_abs_diff", "Δ max")]


def columns(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The table's columns: the identifying ones always, the others where some row has a value (no GPU columns
    in a CPU run)."""
    return [(k, h) for k, h in MD_COLUMNS if k in ("backend", "precision", "size", "batch", "latency_ms_p50")
            or any(r.get(k) is not None for r in rows)]


def cell(r: dict[str, Any], key: str) -> str:
    if key == "backend":
        return row_name(r)
    v = r.get(key)
    return _fmt(v, 3 if key == "tflops" else 2)


def to_markdown(report: BenchReport) -> str:
    out = [f"# styleengine bench: {report.source.get('style')}", ""]
    if str(report.source.get("weights", "")).startswith("random"):
        out += [f"**Random weights** ({report.source['weights']}): speed only.", ""]
    ok = report.measured()
    cols = columns(ok)
    out.append("| " + " | ".join(h for _, h in cols) + " |")
    out.append("|" + "---|" * len(cols))
    for r in ok:
        out.append("| " + " | ".join(cell(r, k) for k, _ in cols) + " |")
    other = [r for r in report.rows if r["status"] != "ok"]
    if other:
        out += ["", "Not measured:", ""]
        for r in other:
            where = " ".join(str(x) for x in (r.get("precision"), r.get("size"), f"x{r['batch']}" if r.get("batch") else None) if x)
            out.append(f"- {row_name(r)}{' ' + where if where else ''}: {r['status']}: {r['reason']}")
    out += ["", "Notes:", ""] + [f"- {n}" for n in report.notes]
    out += ["", "Environment:", ""] + [f"- {line}" for line in environment_lines(report)]
    return "\n".join(out) + "\n"


def plot(report: BenchReport, path: Path) -> Path:
    """p50 latency vs megapixels per frame, one line per backend/precision/batch, log-log."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise StyleEngineError("--plot needs matplotlib (pip install 'styleengine[plot]')") from None
    series: dict[str, list[tuple[float, float, str]]] = {}
    for r in report.measured():
        key = f"{row_name(r)} {r['precision']} x{r['batch']}"
        series.setdefault(key, []).append((r["height"] * r["width"] / 1e6, r["latency_ms_p50"], r["size"]))
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    ticks: dict[float, str] = {}
    for key, pts in sorted(series.items()):
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=key)
        ticks.update({p[0]: p[2] for p in pts})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(list(ticks), [ticks[t] for t in ticks], rotation=30)
    ax.minorticks_off()
    ax.set_xlabel("resolution (megapixels per frame)")
    ax.set_ylabel("p50 latency per batch (ms)")
    dev = report.spec.get("device")
    gpus = report.environment.get("gpus") or []
    where = gpus[0]["name"] if dev != "cpu" and gpus else (report.environment.get("cpu") or {}).get("name")
    title = f"{report.source.get('style')} on {dev} ({where})"
    if str(report.source.get("weights", "")).startswith("random"):
        title += " — random weights"
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".").lower() or "png")
    plt.close(fig)
    return path


def write_text(path: str | Path, text: str, *, overwrite: bool) -> None:
    """'-' writes to stdout; files are written atomically and never replace an existing file unless asked."""
    import sys

    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_path(Path(path), overwrite=overwrite) as tmp:
        tmp.write_text(text)
