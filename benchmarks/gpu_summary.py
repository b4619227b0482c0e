"""Merge a gpu.sh run's raw step files into the few files the device returns, with the goals beside the numbers.

    python3 benchmarks/gpu_summary.py --work WORK_DIR --out OUT_DIR [--final] [--smoke 1] [--engine-size 1080p]

Run by benchmarks/gpu.sh after EVERY step (plain Python: imports neither torch nor styleengine, so it is quick
and works whatever broke). Reads WORK_DIR/steps.jsonl and the steps' JSON files; writes
  OUT_DIR/summary.json   {"steps": [{name, status, seconds, reason}], "goals": [...], "measured": {...}, "code": ...}
  OUT_DIR/results.json   every step's raw JSON (bench reports with their environment blocks, stream, train, ...)
  OUT_DIR/summary.md     the tables
  OUT_DIR/latency.png    p50 latency vs resolution (with --final; needs matplotlib)
The goals are targets the run checks, written next to the measured numbers; `meets_target` is arithmetic on the
numbers of this run, nothing more (null where the number was not measured, and always in a smoke run).
"""

from __future__ import annotations

import argparse
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

FORMAT = "styleengine.gpu-session/2"
# (key, what, target, unit): what a device run is checked against. Targets, not claims.
GOALS = (
    ("engine_fps", "engine throughput at {size}, torch backend as shipped (best batch/precision)", 400.0, "frames/s"),
    ("engine_speedup", "that row's speed-up over eager FP32 with TF32 off (same size and batch, same run)", 15.0, "x"),
    ("stream_fps", "720p file -> file end to end (decode, stylize, encode, mux), the pipeline", 120.0, "frames/s"),
    ("train_speedup", "training steps/s as shipped (AMP, channels_last) over a plain FP32 loop (TF32 off)", 3.0, "x"),
)


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text(errors="replace"))
    except (OSError, ValueError):
        return None


def _jsonl(path: Path) -> list[dict]:
    out = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"unparsed": line[:300]})
    return out


def _f(v: Any, digits: int = 2) -> str:
    if v is None:
        return "—"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def pytest_counts(path: Path) -> dict | None:
    """Counts and failing test ids from a JUnit XML report."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    bad, skipped = [], {}
    for case in root.iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("failure") is not None or case.find("error") is not None:
            bad.append(name)
        sk = case.find("skipped")
        if sk is not None:
            msg = (sk.get("message") or "")[:160]
            skipped[msg] = skipped.get(msg, 0) + 1
    counts["failed_tests"] = bad
    counts["skip_reasons"] = skipped
    return counts


def bench_rows(benches: dict[str, dict]) -> list[dict]:
    rows = []
    for name, doc in benches.items():
        for r in doc.get("rows", []):
            rows.append(dict(r, run=name))
    return rows


def engine_measurement(rows: list[dict], size: str) -> dict:
    ok = [r for r in rows if r.get("status") == "ok" and r.get("size") == size]
    shipped = [r for r in ok if r.get("backend") == "torch"]
    best = max(shipped, key=lambda r: r.get("fps") or 0, default=None)
    best_any = max(ok, key=lambda r: r.get("fps") or 0, default=None)
    base = {r.get("batch"): r.get("fps") for r in ok if r.get("backend") == "baseline"}

    def brief(r):
        if r is None:
            return None
        return {k: r.get(k) for k in ("run", "backend", "variant", "precision", "size", "batch", "fps",
                                      "latency_ms_p50", "gpu_ms_p50", "speedup", "tflops", "max_abs_diff",
                                      "mean_abs_diff", "device_peak_mib")}

    return {"size": size, "shipped_best": brief(best), "any_row_best": brief(best_any),
            "baseline_fps_by_batch": base or None,
            "baseline": "eager FP32 torch, NCHW, pageable memory, TF32 off (torch_runners.BASELINE_VARIANT)"}


def stream_measurement(stream: dict | None) -> dict | None:
    if not stream:
        return None
    runs = [r for r in stream.get("runs", []) if isinstance(r, dict) and "pipeline" in r]
    if not runs:
        return {"note": "no pipeline run finished", "runs": stream.get("runs")}
    run = next((r for r in runs if r.get("resolution") == "720p"), runs[0])
    return {"resolution": run.get("resolution"), "clip": run.get("clip"), "frames": run["pipeline"].get("frames"),
            "pipeline_fps": run["pipeline"].get("fps"), "pipeline_batch": run["pipeline"].get("batch"),
            "encoder": run["pipeline"].get("encoder"),
            "io_ceiling_fps": (run.get("io_ceiling") or {}).get("fps"),
            "naive_fps": (run.get("naive") or {}).get("fps"),
            "pure_inference_fps": [p.get("fps") for p in run.get("pure_inference", [])],
            "prepare_s": run["pipeline"].get("prepare_s"), "wall_s": run["pipeline"].get("wall_seconds")}


def goals(measured: dict, engine_size: str, smoke: bool = False) -> list[dict]:
    eng = (measured.get("engine") or {}).get("shipped_best") or {}
    values = {"engine_fps": eng.get("fps"), "engine_speedup": eng.get("speedup"),
              "stream_fps": (measured.get("stream") or {}).get("pipeline_fps"),
              "train_speedup": (measured.get("train") or {}).get("speedup_median")}
    out = []
    for key, what, target, unit in GOALS:
        v = values[key]
        meets = (v >= target) if isinstance(v, (int, float)) and not smoke else None
        out.append({"goal": key, "what": what.format(size=engine_size), "target": f">= {target:g} {unit}",
                    "measured": v, "meets_target": meets})
    return out


def code_provenance(records: list[dict]) -> dict | None:
    if not records:
        return None
    repos = sorted({r.get("repo") for r in records if r.get("repo")})
    outside = sorted({f for r in records for f in r.get("outside_repo", [])})
    return {"processes": len(records), "repo": repos, "roots": sorted({x for r in records for x in r.get("roots", [])}),
            "outside_repo": outside,
            "all_from_this_copy": not outside and len(repos) == 1}


def summarize(work: Path, *, engine_size: str, smoke: bool, budget: float | None, elapsed: float | None,
              final: bool) -> tuple[dict, dict, str]:
    steps = _jsonl(work / "steps.jsonl")
    benches = {p.stem: d for p in sorted(work.glob("bench_*.json")) + sorted(work.glob("compile_*.json"))
               if (d := _load(p))}
    peak = _load(work / "peak.json")
    stream = _load(work / "stream.json")
    train = _load(work / "train.json")
    fp16 = _load(work / "torch_fp16.json")
    export = _load(work / "export_check.json")
    env = _load(work / "env.json")
    smi = (work / "nvidia-smi.txt").read_text(errors="replace") if (work / "nvidia-smi.txt").exists() else None
    tests = pytest_counts(work / "pytest.xml")
    prov = code_provenance(_jsonl(work / "shim_record.jsonl"))
    rows = bench_rows(benches)
    measured = {
        "engine": engine_measurement(rows, engine_size),
        "stream": stream_measurement(stream),
        "train": ({k: train.get(k) for k in ("device", "speedup_median", "speedup_best", "plain", "ours", "note")}
                  if train else None),
        "pytest": {k: v for k, v in tests.items() if k != "skip_reasons"} if tests else None,
        "peak": peak,
        "torch_fp16": fp16.get("results") if fp16 else None,
    }
    gpus = (env or {}).get("gpus") or []
    summary = {
        "format": FORMAT, "smoke": smoke, "finished": final,
        "note": ("SMOKE run on a CPU at tiny sizes: it checks the flow; no number here is a GPU measurement"
                 if smoke else "device run: numbers are this run's measurements; goals are targets, not claims"),
        "device": (peak or {}).get("device") or (gpus[0].get("name") if gpus else None),
        "budget_s": budget, "elapsed_s": elapsed,
        "steps": [{k: s.get(k) for k in ("name", "status", "seconds", "reason")} for s in steps],
        "goals": goals(measured, engine_size, smoke),
        "measured": measured,
        "code": prov,
    }
    results = {"format": FORMAT, "smoke": smoke, "steps": steps, "environment": env, "nvidia_smi": smi,
               "peak": peak, "benches": benches, "stream": stream, "train": train, "pytest": tests,
               "torch_fp16": fp16, "export_check": export, "shim_record": _jsonl(work / "shim_record.jsonl")}
    return summary, results, markdown(summary, rows, smi)


def markdown(summary: dict, rows: list[dict], smi: str | None) -> str:
    md = ["# GPU session" + (" (SMOKE: CPU, tiny sizes, not a measurement)" if summary["smoke"] else ""), "",
          f"Device: {summary.get('device') or '—'}; elapsed {summary.get('elapsed_s')} s of a {summary.get('budget_s')} s budget"
          + ("" if summary["finished"] else " (run not finished)"), "",
          "| step | status | s | reason |", "|---|---|---|---|"]
    for s in summary["steps"]:
        md.append(f"| {s['name']} | {s['status']} | {_f(s.get('seconds'))} | {(s.get('reason') or '').replace('|', '/')} |")
    md += ["", "| goal | target | measured | meets target |", "|---|---|---|---|"]
    for g in summary["goals"]:
        md.append(f"| {g['what']} | {g['target']} | {_f(g['measured'])} | {_f(g['meets_target'])} |")
    peak = summary["measured"].get("peak") or {}
    fp16_peak = peak.get("matmul_fp16_tflops")
    if peak:
        md += ["", f"Measured ceilings on {peak.get('device')}: matmul FP32 {peak.get('matmul_fp32_tflops')} / TF32 "
                   f"{peak.get('matmul_tf32_tflops')} / FP16 {fp16_peak} / BF16 {peak.get('matmul_bf16_tflops')} TFLOP/s; "
                   f"device copy {peak.get('d2d_copy_tb_per_s')} TB/s; pinned H2D {peak.get('h2d_pinned_gb_per_s')} GB/s, "
                   f"D2H {peak.get('d2h_pinned_gb_per_s')} GB/s."]
    ok = [r for r in rows if r.get("status") == "ok"]
    if ok:
        md += ["", "| run | row | prec | size | batch | p50 ms | GPU ms | H2D ms | compute ms | D2H ms | frames/s | "
                   "TFLOP/s | % FP16 matmul peak | × eager FP32 (TF32 off) | Δ max | device MiB | prepare s |",
               "|" + "---|" * 17]
        for r in ok:
            name = r["backend"] + (f"/{r['variant']}" if r.get("variant") else "")
            frac = (100 * r["tflops"] / fp16_peak) if fp16_peak and r.get("tflops") else None
            md.append(f"| {r['run']} | {name} | {r.get('precision')} | {r.get('size')} | {r.get('batch')} | "
                      f"{_f(r.get('latency_ms_p50'))} | {_f(r.get('gpu_ms_p50'))} | {_f(r.get('h2d_ms_p50'))} | "
                      f"{_f(r.get('compute_ms_p50'))} | {_f(r.get('d2h_ms_p50'))} | {_f(r.get('fps'), 1)} | "
                      f"{_f(r.get('tflops'))} | {_f(frac, 1)} | {_f(r.get('speedup'))} | {_f(r.get('max_abs_diff'))} | "
                      f"{_f(r.get('device_peak_mib'), 0)} | {_f(r.get('prepare_s'), 1)} |")
    for r in rows:
        if r.get("status") != "ok":
            what = " ".join(str(x) for x in (r.get("backend"), r.get("variant"), r.get("precision"), r.get("size"),
                                             r.get("batch")) if x)
            md.append(f"\n- {r['run']}: {what}: {r.get('status')}: {r.get('reason')}")
    st = summary["measured"].get("stream")
    if st:
        md += ["", f"Streaming ({st.get('resolution')}, {st.get('clip')}): pipeline {st.get('pipeline_fps')} frames/s "
                   f"(batch {st.get('pipeline_batch')}, encoder {st.get('encoder')}); I/O ceiling {st.get('io_ceiling_fps')}; "
                   f"naive loop {st.get('naive_fps')}; pure inference {st.get('pure_inference_fps')}; graphs prepared "
                   f"in {st.get('prepare_s')} s before the clock started"]
    tr = summary["measured"].get("train")
    if tr:
        md += ["", f"Training ({tr.get('device')}): speed-up median {_f(tr.get('speedup_median'))}, best "
                   f"{_f(tr.get('speedup_best'))}; {tr.get('note')}"]
    pt = summary["measured"].get("pytest")
    if pt:
        md += ["", f"pytest -m 'gpu or tensorrt': {pt['passed']} passed, {pt['failures']} failed, {pt['errors']} errors, "
                   f"{pt['skipped']} skipped" + (f"; failing: {', '.join(pt['failed_tests'])}" if pt["failed_tests"] else "")]
    code = summary.get("code")
    if code:
        md += ["", f"Code that ran: {code['processes']} Python processes imported styleengine from {code['repo']} "
                   f"({', '.join(code['roots'])}); from elsewhere: {code['outside_repo'] or 'nothing'}"]
    if smi:
        md += ["", "nvidia-smi:", "", "```", smi.strip(), "```"]
    return "\n".join(md) + "\n"


def plot(benches_rows: list[dict], path: Path, device: str | None) -> None:
    """p50 latency vs megapixels per frame for every measured row (matplotlib, where installed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    series: dict[str, dict[float, tuple[float, str]]] = {}
    for r in benches_rows:
        if r.get("status") != "ok" or not r.get("height"):
            continue
        name = r["backend"] + (f"/{r['variant']}" if r.get("variant") else "")
        key = f"{name} {r.get('precision')} x{r.get('batch')}"
        mp = r["height"] * r["width"] / 1e6
        if mp not in series.setdefault(key, {}) or r["latency_ms_p50"] < series[key][mp][0]:
            series[key][mp] = (r["latency_ms_p50"], r["size"])  # the baseline is in every run: keep the faster
    if not series:
        return
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
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
    ax.set_title(f"johnson (random weights) on {device or 'the GPU'}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    tmp.replace(path)  # a kill mid-write never leaves half a summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--engine-size", default="1080p", help="size label of the engine goal's rows")
    ap.add_argument("--smoke", default="0")
    ap.add_argument("--budget", type=float, default=None)
    ap.add_argument("--elapsed", type=float, default=None)
    ap.add_argument("--final", action="store_true", help="also draw the latency plot")
    args = ap.parse_args(argv)
    summary, results, md = summarize(args.work, engine_size=args.engine_size, smoke=args.smoke in ("1", "true"),
                                     budget=args.budget, elapsed=args.elapsed, final=args.final)
    args.out.mkdir(parents=True, exist_ok=True)
    _write(args.out / "summary.json", json.dumps(summary, indent=2, default=str) + "\n")
    _write(args.out / "results.json", json.dumps(results, indent=2, default=str) + "\n")
    _write(args.out / "summary.md", md)
    if args.final:
        plot(bench_rows(results["benches"]), args.out / "latency.png", summary.get("device"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
