"""`styleengine bench`: latency/throughput grids over backends, precisions, sizes and batches.

    from styleengine.engine.bench import bench
    report = bench("johnson", backend="torch,onnxruntime", size="256,720p", batch="1,4", save_json="out.json")

Modules: spec (argument parsing), grid (the timing loop and rows), torch_runners (eager FP32 baseline and torch
variants), source (STYLE -> bundle, random-weight presets), memory, gpuinfo, stats, report (writers).
Importing this package imports neither torch nor onnxruntime.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from styleengine.core.errors import StyleEngineError

from . import report as report_module
from .grid import BenchReport, run_bench

__all__ = ["BenchReport", "bench", "run_bench", "write_outputs", "check_outputs"]


def check_outputs(*, save_json: str | Path | None = None, csv: str | Path | None = None, markdown: str | Path | None = None,
                  plot: str | Path | None = None, overwrite: bool = False) -> None:
    """Fail before measuring anything when an output cannot be written (missing folder, existing file)."""
    seen: set[str] = set()
    for flag, path in (("--save-json", save_json), ("--csv", csv), ("--markdown", markdown), ("--plot", plot)):
        if path is None:
            continue
        if str(path) == "-":
            if flag == "--plot":
                raise StyleEngineError("--plot needs a file name (an image cannot go to stdout)")
            if "-" in seen:
                raise StyleEngineError("only one of --save-json/--csv/--markdown can write to stdout ('-')")
            seen.add("-")
            continue
        p = Path(path)
        if not p.parent.is_dir():
            raise StyleEngineError(f"{flag}: output folder does not exist: {p.parent}")
        if p.is_dir():
            raise StyleEngineError(f"{flag}: {p} is a folder")
        if p.exists() and not overwrite:
            raise StyleEngineError(f"{flag}: output exists (use --overwrite): {p}")
        if str(p.resolve()) in seen:
            raise StyleEngineError(f"{flag}: {p} is named for two outputs")
        seen.add(str(p.resolve()))
    if plot is not None and Path(plot).suffix.lower() not in (".png", ".svg", ".pdf"):
        raise StyleEngineError(f"--plot: {plot} should end in .png, .svg or .pdf")


def write_outputs(report: BenchReport, *, save_json: str | Path | None = None, csv: str | Path | None = None,
                  markdown: str | Path | None = None, plot: str | Path | None = None,
                  overwrite: bool = False) -> None:
    rep = report_module
    if save_json is not None:
        rep.write_text(save_json, rep.to_json(report), overwrite=overwrite)
    if csv is not None:
        rep.write_text(csv, rep.to_csv(report), overwrite=overwrite)
    if markdown is not None:
        rep.write_text(markdown, rep.to_markdown(report), overwrite=overwrite)
    if plot is not None:
        rep.plot(report, Path(plot))


def bench(style: Any, *, backend: Any = None, precision: Any = None, size: Any = None, batch: Any = "1",
          device: str | None = "auto", warmup: int | None = None, iters: int | None = None,
          seconds: float | None = None, baseline: bool = True, variant: Any = None, seed: int = 0,
          threads: int | None = None, rounds: int = 1, save_json: str | Path | None = None,
          csv: str | Path | None = None, markdown: str | Path | None = None, plot: str | Path | None = None,
          overwrite: bool = False) -> BenchReport:
    """Run the grid (see run_bench) and write the requested outputs; outputs are checked before measuring."""
    check_outputs(save_json=save_json, csv=csv, markdown=markdown, plot=plot, overwrite=overwrite)
    report = run_bench(style, backend=backend, precision=precision, size=size, batch=batch, device=device,
                       warmup=warmup, iters=iters, seconds=seconds, baseline=baseline, variant=variant, seed=seed,
                       threads=threads, rounds=rounds)
    write_outputs(report, save_json=save_json, csv=csv, markdown=markdown, plot=plot, overwrite=overwrite)
    return report
