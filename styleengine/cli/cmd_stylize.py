"""`styleengine stylize IN... -o OUT --style STYLE`: images, folders, stdin/stdout and videos."""

from __future__ import annotations

from typing import List, Optional

import typer

from styleengine.core.errors import StyleEngineError

from .common import deprecated, err, flag, handle_errors, hidden, print_json


def register(app: typer.Typer) -> None:
    @app.command("stylize")
    @handle_errors
    def stylize(
        inputs: List[str] = typer.Argument(..., metavar="IN...", help="Image/video files, folders (recursive), or - for stdin."),
        output: Optional[str] = typer.Option(None, "-o", "--output", help="Output file (one input), folder (several inputs or a folder), or - for stdout."),
        style: str = typer.Option(..., "--style", "-s", help="Built-in name, bundle folder, .pt/.pth checkpoint, or a blend a:0.5,b:0.5."),
        backend: str = typer.Option("auto", "--backend", help="auto | tensorrt | onnxruntime | openvino | torch."),
        device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: best available)."),
        precision: str = typer.Option("auto", "--precision", help="auto | fp32 | fp16 | bf16 | int8."),
        max_size: Optional[int] = typer.Option(None, "--max-size", help="Downscale so the long side is at most this many pixels."),
        strength: float = typer.Option(1.0, "--strength", help="Blend with the original: 1 = full style, 0 = original."),
        preserve_color: bool = flag("Keep the original colours (stylize luminance only).", "--preserve-color"),
        overwrite: bool = flag("Replace existing outputs (never the inputs).", "--overwrite"),
        json: bool = flag("Print per-file results as JSON on stdout (nothing else goes there).", "--json"),
        crf: Optional[int] = typer.Option(None, "--crf", help="Video: encoder quality (lower = better)."),
        x264_preset: Optional[str] = typer.Option(None, "--x264-preset", help="Video: encoder speed preset (veryfast, medium, ...)."),
        codec: Optional[str] = typer.Option(None, "--codec", help="Video: output codec (default auto: H.264, VP9 for .webm, GIF for .gif)."),
        stats: Optional[str] = typer.Option(None, "--stats", help="Video: write per-stage timing stats JSON here (- = stdout, alone)."),
        temporal: bool = flag("Video: optical-flow temporal stabilization (less flicker).", "--temporal"),
        temporal_blend: Optional[float] = typer.Option(
            None, "--temporal-blend", help="Video: weight of the warped previous frame in the fine detail, 0-1 "
            "(default 0.5; higher = steadier but softer strokes; colour and shading use 0.9). Implies --temporal."),
        preset: Optional[str] = hidden(None, "--preset"),
    ) -> None:
        """Stylize images (and videos) with a style; per-file errors, exit code 2 if any file failed."""
        from styleengine.engine.stylize_images import stylize as run
        from styleengine.engine.temporal import temporal_filter

        if preset is not None:
            deprecated("stylize --preset", "--x264-preset")
            x264_preset = x264_preset or preset
        document = json or output == "-" or stats == "-"  # stdout then carries that document only
        if sum((json, output == "-", stats == "-")) > 1:
            raise StyleEngineError("only one of --json, -o - and --stats - can use stdout")

        def report(res) -> None:
            if not res.ok:
                err(f"error: {res.input}: {res.error}")
            elif not json:
                size = f" {res.width}x{res.height}" if res.width else ""
                line = f"{res.input} -> {res.output}{size} ({res.backend}, {res.seconds:.2f} s)"
                err(line) if document else print(line, flush=True)

        results = run(inputs, output, style, backend=backend, device=device, precision=precision,
                      max_size=max_size, strength=strength, preserve_color=preserve_color, overwrite=overwrite,
                      video_options={"crf": crf, "x264_preset": x264_preset, "codec": codec, "stats": stats,
                                     "temporal": temporal_filter(temporal, temporal_blend)},
                      on_result=report)
        if json:
            print_json([r.to_dict() for r in results])
        failed = sum(not r.ok for r in results)
        if failed:
            if len(results) > 1:  # one input: its own `error:` line says it all
                err(f"{failed} of {len(results)} file(s) failed")
            raise typer.Exit(2)
