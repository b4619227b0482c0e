"""`styleengine bench STYLE`: latency grid over backends, precisions, sizes and batches (engine.bench.bench)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import err, handle_errors


def register(app: typer.Typer) -> None:
    @app.command("bench")
    @handle_errors
    def bench(
        style: str = typer.Argument(..., help="Bundle folder, .pt checkpoint, built-in style name, or a preset "
                                              "(johnson, fast; also preset:NAME) with RANDOM weights for pure speed work."),
        backend: str = typer.Option("all", "--backend", "-b", help="Comma list of backends, 'all' (unavailable ones are listed with the reason) or 'none' (baseline and --variant rows only)."),
        precision: str = typer.Option("auto", "--precision", "-p", help="Comma list of fp32, fp16, int8; auto = fp32 on CPU, fp32,fp16 on CUDA."),
        size: Optional[str] = typer.Option(None, "--size", "-s", help="Comma list: 256, 512, 360p, 720p, 1080p, 4k or HxW. Default: 256,512 on CPU; 720p,1080p,4k on CUDA."),
        batch: str = typer.Option("1", "--batch", help="Comma list of batch sizes."),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
        warmup: Optional[int] = typer.Option(None, "--warmup", help="Untimed iterations per row (default 3 on CPU, 10 on CUDA)."),
        iters: Optional[int] = typer.Option(None, "--iters", help="Timed iterations per row (alternative to --seconds)."),
        seconds: Optional[float] = typer.Option(None, "--seconds", help="Time budget per row, at least 3 iterations (default 2)."),
        baseline: bool = typer.Option(True, "--baseline/--no-baseline", help="Measure the eager FP32 torch baseline row (speed-up reference)."),
        variant: Optional[str] = typer.Option(None, "--variant", help="Extra torch rows: fp16-cl, cudagraph, compile (comma list) or all."),
        seed: int = typer.Option(0, "--seed", help="Seed of the random inputs (and of random preset weights)."),
        rounds: int = typer.Option(1, "--rounds", help="Passes over the whole grid, samples pooled per row (fairer on a busy machine)."),
        threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch and ONNX Runtime (default: each runtime's own)."),
        json: Optional[Path] = typer.Option(None, "--json", help="Write JSON here ('-' = stdout)."),
        csv: Optional[Path] = typer.Option(None, "--csv", help="Write CSV here ('-' = stdout); environment in '#' lines."),
        markdown: Optional[Path] = typer.Option(None, "--markdown", help="Write a Markdown report here ('-' = stdout)."),
        plot: Optional[Path] = typer.Option(None, "--plot", help="Write a latency-vs-resolution plot (.png/.svg/.pdf)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No per-row progress on stderr."),
    ) -> None:
        """Benchmark a style: p50/p90/p99 latency, frames/s, MP/s, TFLOP/s, memory, speed-up over eager FP32 torch."""
        import sys

        from styleengine.engine.bench import bench as run
        from styleengine.engine.bench.report import print_table

        report = run(style, backend=backend, precision=precision, size=size, batch=batch, device=device, warmup=warmup,
                     iters=iters, seconds=seconds, baseline=baseline, variant=variant, seed=seed, threads=threads, rounds=rounds, json=json, csv=csv,
                     markdown=markdown, plot=plot, overwrite=overwrite, log=(lambda m: None) if quiet else err)
        to_stdout = any(str(p) == "-" for p in (json, csv, markdown) if p is not None)
        print_table(report, sys.stderr if to_stdout else sys.stdout)
