"""Run a benchmark grid: baseline and torch variants, then every backend x precision x size x batch.

Each row: warm-up iterations (untimed), then timed iterations (a fixed count, or until a time budget is spent
with at least `min_iters`). Wall clock around each call of the uniform uint8-in/uint8-out API, so host<->device
copies are included; where the runner reports per-stage CUDA-event times (`last_timings()`), those are kept too.
Rows that cannot run say why (status "unavailable" or "failed") instead of disappearing.
"""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from styleengine.core import __version__
from styleengine.core.errors import StyleEngineError
from styleengine.core.hostinfo import PACKAGES, cpu_info, gpu_info, package_version
from styleengine.core.log import log

from ..backend import REGISTRY, create_backend, get_backend
from ..environment import environment
from .gpuinfo import gpu_clocks, sm_clock_mhz
from .memory import DevicePeak, HostPeak
from .source import BenchSource, open_source, profile_spec
from .spec import (
    BASELINE,
    DEFAULT_SIZES,
    GridSpec,
    Size,
    check_timing,
    parse_backends,
    parse_batches,
    parse_device,
    parse_precisions,
    parse_sizes,
)
from .stats import rates, summarize
from .torch_runners import BASELINE_VARIANT, VARIANTS, TorchRunner

REPORT_FORMAT = "styleengine.bench/1"
TIMING_HOOK = "last_timings"  # optional backend method -> {"h2d_ms", "compute_ms", "d2h_ms", "gpu_ms"} of the last call
STAGES = ("h2d_ms", "compute_ms", "d2h_ms", "gpu_ms")


@dataclass
class BenchReport:
    source: dict[str, Any]
    spec: dict[str, Any]
    rows: list[dict[str, Any]]
    environment: dict[str, Any]
    gpu_clocks_before: list[dict[str, Any]] | None
    gpu_clocks_after: list[dict[str, Any]] | None
    started_at: str
    duration_s: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"format": REPORT_FORMAT, "source": self.source, "spec": self.spec, "rows": self.rows,
                "environment": self.environment, "gpu_clocks_before": self.gpu_clocks_before,
                "gpu_clocks_after": self.gpu_clocks_after, "started_at": self.started_at,
                "duration_s": round(self.duration_s, 2), "notes": self.notes}

    def measured(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "ok"]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first[:240]}" if not isinstance(exc, StyleEngineError) else first[:240]


def _row(backend: str, precision: str | None, device: str, size: Size | None, batch: int | None, *,
         variant: str | None = None, status: str = "ok", reason: str = "") -> dict[str, Any]:
    return {"backend": backend, "precision": precision, "variant": variant, "device": device,
            "size": size.label if size else None, "height": size.height if size else None,
            "width": size.width if size else None, "batch": batch, "status": status, "reason": reason}


_INPUTS: dict[tuple[int, int, int, int], list[np.ndarray]] = {}


def _inputs(size: Size, batch: int, seed: int) -> list[np.ndarray]:
    """Two different random batches, alternated: never time on zeros or on one buffer that stays cached.
    Made once per shape and run (4K x 8 takes a second to draw) and shared by every row of that shape."""
    key = (batch, size.height, size.width, seed)
    if key not in _INPUTS:
        rng = np.random.default_rng(seed)
        _INPUTS[key] = [rng.integers(0, 256, (batch, size.height, size.width, 3), dtype=np.uint8) for _ in range(2)]
    return _INPUTS[key]


class _Runner:
    """What the row loop needs from a backend or a torch runner."""

    def __init__(self, run: Callable[[np.ndarray], np.ndarray], timings: Callable[[], dict | None] | None,
                 prepare: Callable[[np.ndarray], None] | None, torch_allocator: bool, timing_source: str):
        self.run, self.timings, self.prepare = run, timings, prepare
        self.torch_allocator, self.timing_source = torch_allocator, timing_source


def measure(runner: _Runner, inputs: list[np.ndarray], *, warmup: int, iters: int | None, seconds: float | None,
            min_iters: int = 3, max_iters: int = 100_000, keep_first: dict | None = None
            ) -> tuple[list[float], dict[str, list[float]]]:
    """Warm up, then time iterations. Returns per-iteration wall ms, and per-iteration process CPU ms ("cpu_ms")
    and per-stage GPU ms (where the runner reports them) by name.

    The first output is checked against the contract (uint8, input's shape); with `keep_first` given, the output
    for inputs[0] is stored under "output" for the parity check against the baseline.
    """
    expect = inputs[0].shape
    checked = False

    def call(x: np.ndarray) -> None:
        nonlocal checked
        out = runner.run(x)
        if not checked:
            if not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.shape != expect:
                raise StyleEngineError(f"backend returned {getattr(out, 'dtype', type(out).__name__)} "
                                       f"{getattr(out, 'shape', '')} for input {expect}; expected uint8 {expect}")
            checked = True
            if keep_first is not None and x is inputs[0]:
                keep_first["output"] = out.copy()

    for i in range(warmup):
        call(inputs[i % len(inputs)])
    wall: list[float] = []
    stages: dict[str, list[float]] = {}
    deadline = time.perf_counter() + seconds if seconds is not None else None
    i = 0
    while True:
        if iters is not None and i >= iters:
            break
        if deadline is not None and i >= min_iters and (time.perf_counter() >= deadline or i >= max_iters):
            break
        x = inputs[i % len(inputs)]
        c0 = time.process_time()
        t0 = time.perf_counter()
        call(x)
        wall.append((time.perf_counter() - t0) * 1e3)
        # CPU time of the whole process (all threads): on a shared machine a 1-thread run's CPU time is its
        # uncontended compute time; on a GPU it is the host overhead per call.
        stages.setdefault("cpu_ms", []).append((time.process_time() - c0) * 1e3)
        st = runner.timings() if runner.timings else None
        for k, v in (st or {}).items():
            if k in STAGES and v is not None:
                stages.setdefault(k, []).append(float(v))
        i += 1
    return wall, stages


def _parity(out: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """How far a row's output is from the eager FP32 baseline's on the same input, in 8-bit levels."""
    diff = np.abs(out.astype(np.int16) - ref.astype(np.int16))
    return {"max_abs_diff": int(diff.max()), "mean_abs_diff": round(float(diff.mean()), 4)}


def _measure_row(row: dict[str, Any], runner: _Runner, size: Size, batch: int, spec: GridSpec,
                 macs: float | None, references: dict | None = None) -> dict[str, Any]:
    """Time one row. `references` maps (size, batch) -> baseline output: the baseline fills it, others compare."""
    inputs = _inputs(size, batch, spec.seed)
    first: dict[str, np.ndarray] | None = {} if references is not None else None
    host = HostPeak()
    dev = DevicePeak(spec.device, torch_allocator=runner.torch_allocator)
    host.start()
    try:
        dev.start()
        if runner.prepare:  # per-shape work kept out of the timings: graph capture, compilation
            t0 = time.perf_counter()
            runner.prepare(inputs[0])
            row["prepare_s"] = round(time.perf_counter() - t0, 3)
        wall, stages = measure(runner, inputs, warmup=spec.warmup, iters=spec.iters, seconds=spec.seconds,
                               min_iters=spec.min_iters, max_iters=spec.max_iters, keep_first=first)
        dev.sample()
    except Exception as exc:  # one row failing (e.g. out of memory at 4K x 8) must not end the grid
        row.update(status="failed", reason=_one_line(exc))
        _free_cuda(spec.device)
        return row
    row["warmup"] = spec.warmup
    row["_samples"] = {"wall": wall, **stages}  # raw per-call times: merged across --rounds, dropped from outputs
    row["_timing_source"] = runner.timing_source
    _summarize_row(row, spec.device, macs)
    row.update(host.stop())
    row.update(dev.stop())
    row["gpu_sm_clock_mhz"] = sm_clock_mhz(spec.device) if spec.device.startswith("cuda") else None
    if first and "output" in first and references is not None:
        key = (size.label, batch)
        if row["backend"] == BASELINE:
            references[key] = first["output"]
        elif key in references:
            row.update(_parity(first["output"], references[key]))
    return row


def _summarize_row(row: dict[str, Any], device: str, macs: float | None) -> None:
    """Latency statistics and rates of a measured row, from its raw samples."""
    samples = row["_samples"]
    wall = samples["wall"]
    row["iters"] = len(wall)
    for k, v in summarize(wall).items():
        if k != "n":
            row[f"latency_ms_{k}"] = round(v, 4)
    cpu = samples.get("cpu_ms")
    if cpu:
        row["cpu_ms_p50"] = round(summarize(cpu)["p50"], 4)
        row["cpu_ms_min"] = round(min(cpu), 4)
    gpu = samples.get("gpu_ms")
    if gpu:
        g = summarize(gpu)
        for k in ("p50", "p90", "p99", "mean"):
            row[f"gpu_ms_{k}"] = round(g[k], 4)
    for k in ("h2d_ms", "compute_ms", "d2h_ms"):
        if samples.get(k):
            row[f"{k[:-3]}_ms_p50"] = round(summarize(samples[k])["p50"], 4)
    gpu_stages = any(k in samples for k in STAGES)
    row["gpu_timing"] = row["_timing_source"] if gpu_stages else (
        "n/a (CPU)" if device == "cpu" else "none: backend has no timing hook; wall clock only")
    # Throughput figures use the median latency: robust to the odd preempted iteration on a shared machine.
    row.update({k: (_sig(v) if v is not None else None) for k, v in
                rates(row["latency_ms_p50"], batch=row["batch"], height=row["height"], width=row["width"],
                      macs_per_pixel=macs).items()})


def merge_rounds(rounds: list[list[dict[str, Any]]], device: str, macs: float | None) -> list[dict[str, Any]]:
    """One row per grid cell from several passes over the grid: samples pooled, per-pass medians kept in
    `round_p50_ms`, memory the highest, parity the worst. A cell that failed in some pass keeps the reason."""
    merged: dict[tuple, dict[str, Any]] = {}
    for rows in rounds:
        for r in rows:
            key = (r["backend"], r.get("variant"), r.get("precision"), r.get("size"), r.get("batch"))
            m = merged.get(key)
            if r["status"] == "ok":
                r.setdefault("round_p50_ms", [r["latency_ms_p50"]])
            if m is None:
                merged[key] = r
            elif m["status"] != "ok" and r["status"] == "ok":
                r["reason"] = f"{m['status']} in an earlier round: {m['reason']}"
                merged[key] = r
            elif m["status"] == "ok" and r["status"] != "ok":
                m["reason"] = f"{r['status']} in a later round: {r['reason']}"
            elif m["status"] == "ok":
                for k, v in r["_samples"].items():
                    m["_samples"].setdefault(k, []).extend(v)
                m["round_p50_ms"].append(r["latency_ms_p50"])
                for k in ("host_peak_mib", "device_peak_mib", "max_abs_diff"):
                    if r.get(k) is not None:
                        m[k] = max(m.get(k) or 0, r[k])
                if r.get("mean_abs_diff") is not None:
                    m["mean_abs_diff"] = max(m.get("mean_abs_diff") or 0, r["mean_abs_diff"])
    out = list(merged.values())
    for r in out:
        if r["status"] == "ok" and len(r.get("round_p50_ms", [])) > 1:
            _summarize_row(r, device, macs)
    _add_speedups(out)
    return out


def _sig(v: float, digits: int = 6) -> float:
    """Round to significant digits: TFLOP/s of a tiny test network and frames/s of 4K both stay readable."""
    return float(f"{v:.{digits}g}")


def _free_cuda(device: str) -> None:
    if device.startswith("cuda"):
        try:
            import torch

            torch.cuda.empty_cache()
        except Exception:
            pass


def _add_speedups(rows: list[dict[str, Any]]) -> None:
    base = {(r["device"], r["size"], r["batch"]): r["latency_ms_p50"] for r in rows
            if r["backend"] == BASELINE and r["status"] == "ok"}
    for r in rows:
        b = base.get((r["device"], r["size"], r["batch"]))
        r["speedup"] = round(b / r["latency_ms_p50"], 3) if b and r["status"] == "ok" else None


def _grid(spec: GridSpec) -> list[tuple[Size, int]]:
    return [(s, b) for s in spec.sizes for b in spec.batches]


def backend_available(name: str, device: str) -> tuple[bool, str]:
    """Can backend `name` run on `device` here (its available_for: e.g. ONNX Runtime's GPU providers need the
    onnxruntime-gpu build and a GPU)? Cheap: nothing is loaded. An import error in its module is a reason."""
    try:
        return get_backend(name).available_for(device=device)
    except Exception as exc:
        return False, _one_line(exc)


def _runs_precision(name: str, device: str, precisions: list[str]) -> bool:
    """Does backend `name` declare at least one of `precisions` on `device`'s kind?"""
    try:
        declared = get_backend(name).precisions.get("cpu" if device == "cpu" else "cuda", ())
    except Exception:
        return False
    return any(p in declared for p in precisions)


def run_grid(source: BenchSource, spec: GridSpec, *, backend_options: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    macs = source.macs_per_pixel
    shapes = _grid(spec)
    references: dict[tuple[str, int], np.ndarray] = {}  # baseline outputs for the parity columns

    def run_shapes(base: dict[str, Any], runner: _Runner) -> None:
        for size, batch in shapes:
            row = dict(base, size=size.label, height=size.height, width=size.width, batch=batch)
            row = _measure_row(row, runner, size, batch, spec, macs, references)
            rows.append(row)
            what = f"{row['backend']}{'/' + row['variant'] if row['variant'] else ''} {row['precision']} {size.label} x{batch}"
            log.info("%s", f"{what}: p50 {row['latency_ms_p50']:.2f} ms, {row['fps']:.1f} frames/s" if row["status"] == "ok"
                else f"{what}: {row['status']}: {row['reason']}")

    # Baseline (eager FP32 torch) and torch variants share one CPU copy of the network.
    model = None
    if spec.baseline or spec.variants:
        try:
            model = source.model()
        except (StyleEngineError, ImportError) as exc:
            reason = _one_line(exc) if not isinstance(exc, ImportError) else "torch is not installed"
            if spec.baseline:
                rows.append(_row(BASELINE, "fp32", spec.device, None, None, variant="eager", status="unavailable",
                                 reason=reason))
            for v in spec.variants:
                rows.append(_row("torch-variant", None, spec.device, None, None, variant=v, status="unavailable",
                                 reason=reason))
    if model is not None:
        todo = ([(BASELINE, BASELINE_VARIANT)] if spec.baseline else []) + [("torch-variant", v) for v in spec.variants]
        for name, variant in todo:
            label = "eager" if variant == BASELINE_VARIANT else variant
            try:
                tr = TorchRunner(model, spec.device, variant)
            except Exception as exc:
                rows.append(_row(name, None, spec.device, None, None, variant=label, status="unavailable",
                                 reason=_one_line(exc)))
                continue
            runner = _Runner(tr.run, tr.last_timings if tr.cuda else None, tr.prepare, True,
                             "CUDA events on torch's current stream (h2d / compute / d2h)")
            try:
                run_shapes(_row(name, tr.precision, spec.device, None, None, variant=label), runner)
            finally:
                tr.close()

    for name in spec.backends:
        ok, reason = backend_available(name, spec.device)
        if not ok:
            rows.append(_row(name, None, spec.device, None, None, status="unavailable", reason=reason))
            log.info("%s", f"{name}: unavailable: {reason}")
            continue
        for precision in spec.precisions:
            t0 = time.perf_counter()
            try:
                be = create_backend(name, source.bundle, device=spec.device, precision=precision,
                                    **(backend_options or {}).get(name, {}))
                be.load()
            except Exception as exc:
                rows.append(_row(name, precision, spec.device, None, None, status="unavailable", reason=_one_line(exc)))
                log.info("%s", f"{name} {precision}: unavailable: {_one_line(exc)}")
                continue
            load_s = round(time.perf_counter() - t0, 3)
            try:
                if be.precision != precision:  # a backend may fall back (e.g. no fp16 model in the bundle)
                    rows.append(_row(name, precision, spec.device, None, None, status="unavailable",
                                     reason=f"backend would run {be.precision} instead (no {precision} model for it)"))
                    continue
                timings = getattr(be, TIMING_HOOK, None)
                runner = _Runner(be.infer, timings if callable(timings) else None, None, name == "torch",
                                 f"backend {TIMING_HOOK}() (CUDA events on the backend's stream)")
                base = _row(name, precision, spec.device, None, None)
                base["load_s"] = load_s
                base["backend_info"] = be.describe()
                run_shapes(base, runner)
            finally:
                be.close()
                _free_cuda(spec.device)
    _add_speedups(rows)
    _INPUTS.clear()
    return rows


def run_bench(style: Any, *, backend: Any = None, precision: Any = None, size: Any = None, batch: Any = "1",
              device: str | None = "auto", warmup: int | None = None, iters: int | None = None,
              seconds: float | None = None, baseline: bool = True, variant: Any = None, seed: int = 0,
              threads: int | None = None, rounds: int = 1, min_iters: int = 3,
              backend_options: dict[str, dict[str, Any]] | None = None) -> BenchReport:
    """Benchmark STYLE over the grid. Arguments are validated before anything heavy runs (one-line errors).

    threads: CPU threads for torch (baseline, variants, torch backend; restored afterwards) and ONNX Runtime's
    intra-op pool; None leaves each runtime's default.
    rounds: passes over the whole grid; each cell pools its samples over the passes, so slow drifts of a shared
    machine's load (or a GPU's clocks) spread over all rows instead of hitting whichever ran at the time.
    """
    dev = parse_device(device)
    kind = "cpu" if dev == "cpu" else "cuda"
    backends = parse_backends(backend, REGISTRY)
    precisions = parse_precisions(precision, kind)
    sizes = parse_sizes(size if size is not None else DEFAULT_SIZES[kind])
    batches = parse_batches(batch if batch is not None else "1")
    warmup, iters, seconds = check_timing(warmup if warmup is not None else (3 if kind == "cpu" else 10), iters, seconds)
    variants = _parse_variants(variant)
    if rounds is None or rounds < 1:
        raise StyleEngineError(f"--rounds: must be at least 1, got {rounds}")
    if threads is not None and threads < 1:
        raise StyleEngineError(f"--threads: must be at least 1, got {threads}")
    if min_iters < 1:
        raise StyleEngineError(f"--min-iters: must be at least 1, got {min_iters}")
    spec = GridSpec(backends, precisions, sizes, batches, dev, warmup, iters, seconds, min_iters=min_iters,
                    baseline=baseline, variants=variants, seed=seed, threads=threads, rounds=rounds)
    if not backends and not baseline and not variants:
        raise StyleEngineError("nothing to measure: no backend, no baseline, no variant")

    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    env = _environment()
    # An ONNX export (random-weight presets) only where a non-torch row can run on this device at a requested
    # precision: a GPU row of a CPU-only onnxruntime, or TensorRT without a GPU, costs nothing.
    need_onnx = any(b != "torch" and backend_available(b, dev)[0] and _runs_precision(b, dev, precisions)
                    for b in backends)
    shapes = [profile_spec([(s.height, s.width) for s in sizes], batches)]
    source = open_source(style, seed=seed, need_onnx=need_onnx, shapes=shapes)
    options = {k: dict(v) for k, v in (backend_options or {}).items()}
    restore_threads = None
    if threads is not None:
        options.setdefault("onnxruntime", {}).setdefault("threads", threads)
        try:
            import torch

            restore_threads = torch.get_num_threads()
            torch.set_num_threads(threads)
        except ImportError:
            pass
    try:
        DevicePeak.record_floor(dev)
        before = gpu_clocks()
        if source.random_weights:
            log.info("%s", f"{source.label}: RANDOM WEIGHTS ({source.weights}) — speed only, the pictures mean nothing")
        env["torch_threads"] = _torch_threads()
        env["load_average_1_5_15min"] = _load_average()  # a busy shared machine explains noisy rows
        passes = []
        for i in range(rounds):
            if rounds > 1:
                log.info("%s", f"round {i + 1} of {rounds}")
            passes.append(run_grid(source, spec, backend_options=options))
        rows = merge_rounds(passes, dev, source.macs_per_pixel)
        for r in rows:
            r.pop("_samples", None)
            r.pop("_timing_source", None)
        after = gpu_clocks()
        described = source.describe()
    finally:
        source.close()
        _INPUTS.clear()
        if restore_threads is not None:
            import torch

            torch.set_num_threads(restore_threads)
    notes = _notes(spec, source, rows)
    return BenchReport(described, spec.to_dict(), rows, env, before, after,
                       started.isoformat(timespec="seconds"), time.perf_counter() - t0, notes)


def _load_average() -> list[float] | None:
    import os

    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _torch_threads() -> int | None:
    import sys

    torch = sys.modules.get("torch")  # only report it where torch is in use already
    return torch.get_num_threads() if torch is not None else None


def _environment() -> dict[str, Any]:
    """environment.environment(), kept even when one backend module is broken (its error is recorded)."""
    import platform
    import sys

    try:
        return environment()
    except Exception as exc:
        return {"styleengine": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
                "packages": {k: package_version(v) for k, v in PACKAGES.items()},
                "cpu": cpu_info(), "gpus": gpu_info(), "backends": {},
                "error": f"environment() failed: {_one_line(exc)}"}


def _parse_variants(value: Any) -> list[str]:
    if value is None or value == "" or value == []:
        return []
    items = [v.strip().lower() for v in (value.split(",") if isinstance(value, str) else value) if str(v).strip()]
    if items == ["all"]:
        return list(VARIANTS)
    for v in items:
        if v not in VARIANTS:
            raise StyleEngineError(f"--variant: unknown torch variant {v!r}; choose from: all, {', '.join(VARIANTS)}")
    return list(dict.fromkeys(items))


def _notes(spec: GridSpec, source: BenchSource, rows: list[dict[str, Any]]) -> list[str]:
    notes = []
    if source.random_weights:
        notes.append(f"RANDOM WEIGHTS: {source.weights}. Speed does not depend on weight values; outputs are meaningless.")
    notes.append("latency = wall clock per call of the uint8 NHWC host-array API (host<->device copies included); "
                 "frames/s, megapixels/s and TFLOP/s derive from the median (p50) latency.")
    if source.macs_per_pixel:
        notes.append(f"TFLOP/s counts 2 FLOP per MAC of the convolutions: {source.macs_per_pixel:,.0f} MACs per pixel "
                     "(InstanceNorm, ReLU, padding and conversions not counted).")
    notes.append("speedup = baseline p50 / row p50 at the same device, size and batch; baseline = eager FP32 torch of "
                 "the same network, NCHW, measured in this run. Δ mean / Δ max = mean and largest absolute difference "
                 "from the baseline's output on the same input, in 8-bit levels (a broken fast path shows here).")
    if spec.device == "cpu":
        notes.append("CPU run: no GPU timing; host peak memory is the resident-set high-water mark of each row.")
    return notes
