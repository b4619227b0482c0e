"""`styleengine stylize IN... -o OUT --style STYLE`: images, folders, stdin/stdout and videos."""

from __future__ import annotations

from typing import List, Optional

import typer

from .common import err, handle_errors, print_json


def register(app: typer.Typer) -> None:
    @app.command("stylize")
    @handle_errors
    def stylize(
        inputs: List[str] = typer.Argument(..., metavar="IN...", help="Image/video files, folders (recursive), or - for stdin."),
        output: Optional[str] = typer.Option(None, "-o", "--output", help="Output file (one input), folder, or - for stdout."),
        style: str = typer.Option(..., "--style", "-s", help="Bundle folder, .pt/.pth checkpoint, or built-in style name."),
        backend: str = typer.Option("auto", "--backend", help="auto | tensorrt | onnxruntime | torch."),
        device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: best available)."),
        precision: str = typer.Option("auto", "--precision", help="auto | fp32 | fp16 | int8 (int8: ONNX Runtime on CPU)."),
        max_size: Optional[int] = typer.Option(None, "--max-size", help="Downscale so the long side is at most this many pixels."),
        strength: float = typer.Option(1.0, "--strength", help="Blend with the original: 1 = full style, 0 = original."),
        preserve_color: bool = typer.Option(False, "--preserve-color", help="Keep the original colours (stylize luminance only)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs (never the inputs)."),
        json: bool = typer.Option(False, "--json", help="Print per-file results as JSON on stdout."),
        crf: Optional[int] = typer.Option(None, "--crf", help="Video: encoder quality (lower = better)."),
        preset: Optional[str] = typer.Option(None, "--preset", help="Video: encoder speed preset."),
        codec: Optional[str] = typer.Option(None, "--codec", help="Video: output codec (default: auto)."),
        stats: Optional[str] = typer.Option(None, "--stats", help="Video: write per-stage timing stats JSON here (- = stdout)."),
        temporal: bool = typer.Option(False, "--temporal", help="Video: optical-flow temporal stabilization (less flicker)."),
        temporal_blend: Optional[float] = typer.Option(
            None, "--temporal-blend", help="Video: weight of the warped previous frame, 0-1 (default 0.5; higher = "
            "steadier but softer strokes). Implies --temporal."),
    ) -> None:
        """Stylize images (and videos) with a style; per-file errors, exit code 2 if any file failed."""
        from styleengine.engine.stylize_images import stylize as run

        if json and output == "-":
            raise typer.BadParameter("--json prints to stdout; it cannot be combined with -o -")
        results = run(inputs, output, style, backend=backend, device=device, precision=precision,
                      max_size=max_size, strength=strength, preserve_color=preserve_color, overwrite=overwrite,
                      video_options={"crf": crf, "preset": preset, "codec": codec, "stats": stats,
                                     "temporal": _temporal(temporal, temporal_blend)},
                      on_result=None if json or output == "-" else _print_line)
        if json:
            print_json([r.to_dict() for r in results])
        failed = sum(not r.ok for r in results)
        if failed:
            err(f"{failed} of {len(results)} file(s) failed")
            raise typer.Exit(2)


def _temporal(temporal: bool, blend: Optional[float]):
    """None (off), True (default stabilizer) or a per-stream factory with the asked blend (validated now)."""
    if blend is None:
        return temporal or None
    from functools import partial

    from styleengine.engine.temporal import TemporalConfig, TemporalStabilizer

    return partial(TemporalStabilizer, TemporalConfig(blend=blend))


def _print_line(res) -> None:
    if res.ok:
        size = f" {res.width}x{res.height}" if res.width else ""
        print(f"{res.input} -> {res.output}{size} ({res.backend}, {res.seconds:.2f} s)", flush=True)
