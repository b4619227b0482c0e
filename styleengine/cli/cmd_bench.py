"""`styleengine bench STYLE`: latency grid over backends, precisions, sizes and batches (engine.bench.bench)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from styleengine.core.errors import StyleEngineError

from .common import deprecated, flag, handle_errors, hidden


def register(app: typer.Typer) -> None:
    @app.command("bench")
    @handle_errors
    def bench(
        style: str = typer.Argument(..., help="Bundle folder, .pt checkpoint, built-in style name, or a preset "
                                              "(johnson, fast; also preset:NAME) with RANDOM weights for pure speed work."),
        backend: str = typer.Option("all", "--backend", "-b", help="Comma list of backends, 'all' (unavailable ones are listed with the reason) or 'none' (baseline and --variant rows only)."),
        precision: str = typer.Option("auto", "--precision", "-p", help="Comma list of fp32, fp16, bf16, int8; auto = fp32 on CPU, fp32,fp16 on CUDA (a backend that cannot run one is listed with the reason)."),
        size: Optional[str] = typer.Option(None, "--size", help="Comma list: 256, 512, 360p, 720p, 1080p, 4k or HxW. Default: 256,512 on CPU; 720p,1080p,4k on CUDA."),
        batch: str = typer.Option("1", "--batch", help="Comma list of batch sizes."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        warmup: Optional[int] = typer.Option(None, "--warmup", help="Untimed iterations per row (default 3 on CPU, 10 on CUDA)."),
        iters: Optional[int] = typer.Option(None, "--iters", help="Timed iterations per row (alternative to --seconds)."),
        seconds: Optional[float] = typer.Option(None, "--seconds", help="Time budget per row, at least 3 iterations (default 2)."),
        baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Measure the eager FP32 torch baseline row (speed-up reference)."),
        variant: Optional[str] = typer.Option(None, "--variant", help="Extra torch rows: tf32, fp16-cl, cudagraph, compile (comma list) or all. The baseline is FP32 with TF32 off."),
        seed: int = typer.Option(0, "--seed", help="Seed of the random inputs (and of random preset weights)."),
        rounds: int = typer.Option(1, "--rounds", help="Passes over the whole grid, samples pooled per row (fairer on a busy machine)."),
        threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch and ONNX Runtime (default: each runtime's own)."),
        json: bool = flag("Print the report as JSON on stdout (the table then goes to stderr).", "--json"),
        save_json: Optional[Path] = typer.Option(None, "--save-json", help="Write the JSON report to this file ('-' = stdout)."),
        csv: Optional[Path] = typer.Option(None, "--csv", help="Write CSV here ('-' = stdout); environment in '#' lines."),
        markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write a Markdown report here ('-' = stdout)."),
        plot: Optional[Path] = typer.Option(None, "--plot", help="Write a latency-vs-resolution plot (.png/.svg/.pdf)."),
        overwrite: bool = flag("Replace existing output files.", "--overwrite"),
        old_size: Optional[str] = hidden(None, "-s"),
    ) -> None:
        """Benchmark a style: p50/p90/p99 latency, frames/s, MP/s, TFLOP/s, memory, speed-up over eager FP32 torch."""
        from styleengine.engine.bench import bench as run
        from styleengine.engine.bench.report import to_json

        if old_size is not None:
            deprecated("bench -s", "--size")
            size = size or old_size
        dash = [p for p in (save_json, csv, markdown) if p is not None and str(p) == "-"]
        if json and dash:
            raise StyleEngineError("only one of --json, --save-json -, --csv - and --markdown - can use stdout")
        to_stdout = json or bool(dash)  # then the table goes to stderr, so stdout stays machine-readable
        report = run(style, backend=backend, precision=precision, size=size, batch=batch, device=device, warmup=warmup,
                     iters=iters, seconds=seconds, baseline=baseline, variant=variant, seed=seed, threads=threads,
                     rounds=rounds, save_json=save_json, csv=csv, markdown=markdown, plot=plot, overwrite=overwrite)
        _print_table(report, sys.stderr if to_stdout else sys.stdout)
        if json:
            sys.stdout.write(to_json(report))


def _print_table(report, file) -> None:
    """Rich table of measured rows, then the rows that could not run with their reasons."""
    from rich.console import Console
    from rich.table import Table

    from styleengine.engine.bench.report import (
        cell,
        columns,
        environment_lines,
        row_name,
    )

    console = Console(file=file, width=max(160, Console(file=file).width))
    title = f"styleengine bench: {report.source.get('style')}"
    if str(report.source.get("weights", "")).startswith("random"):
        title += "  [bold red](RANDOM WEIGHTS: speed only)[/]"
    table = Table(title=title, show_lines=False)
    cols = columns(report.measured())
    for key, head in cols:
        table.add_column(head, justify="left" if key in ("backend", "precision", "size") else "right", no_wrap=True)
    for r in report.measured():
        table.add_row(*[cell(r, k) for k, _ in cols])
    console.print(table)
    for r in report.rows:
        if r["status"] != "ok":
            where = " ".join(str(x) for x in (r.get("precision"), r.get("size"), f"x{r['batch']}" if r.get("batch") else None) if x)
            console.print(f"[yellow]{row_name(r)}{' ' + where if where else ''}: {r['status']}[/]: {r['reason']}",
                          highlight=False, markup=True)
    for n in report.notes:
        console.print(f"[dim]{n}[/]", highlight=False)
    for line in environment_lines(report):
        console.print(f"[dim]{line}[/]", highlight=False)
