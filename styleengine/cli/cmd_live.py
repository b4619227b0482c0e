"""`styleengine live SOURCE --style STYLE`: webcam, capture device, URL, or a file at real pace; MJPEG preview."""

from __future__ import annotations

from typing import Optional

import typer

from styleengine.core.errors import StyleEngineError

from .common import deprecated, flag, handle_errors, hidden, print_json


def register(app: typer.Typer) -> None:
    @app.command("live")
    @handle_errors
    def live(
        source: str = typer.Argument(..., help="Webcam index (0), device path (/dev/video0), rtsp://... or http://... URL, or a video file."),
        style: str = typer.Option(..., "--style", "-s", help="Built-in name, bundle folder, .pt/.pth checkpoint, or a blend a:0.5,b:0.5."),
        output: Optional[str] = typer.Option(None, "-o", "--output", help="Also record the stylized video to this file (video only)."),
        preview: bool = typer.Option(True, "--preview/--no-preview", help="Serve an MJPEG preview page over HTTP."),
        host: str = typer.Option("127.0.0.1", "--host", help="Preview address (0.0.0.0 exposes it to the network)."),
        port: int = typer.Option(8765, "--port", help="Preview port (0 = any free port)."),
        realtime: bool = flag("Play a file source at its real pace (drops frames when behind, like a camera).", "--realtime"),
        duration: Optional[float] = typer.Option(None, "--duration", help="Stop after this many seconds."),
        frames: Optional[int] = typer.Option(None, "--frames", help="Stop after this many stylized frames."),
        backend: str = typer.Option("auto", "--backend", help="auto | tensorrt | onnxruntime | openvino | torch."),
        device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: best available)."),
        precision: str = typer.Option("auto", "--precision", help="auto | fp32 | fp16 | bf16 | int8."),
        max_size: Optional[int] = typer.Option(None, "--max-size", help="Downscale frames so the long side is at most this."),
        strength: float = typer.Option(1.0, "--strength", help="Blend with the original: 1 = full style, 0 = original."),
        preserve_color: bool = flag("Keep the original colours (stylize luminance only).", "--preserve-color"),
        capture_size: Optional[str] = typer.Option(None, "--capture-size", help="Camera capture size, e.g. 1280x720."),
        capture_fps: Optional[float] = typer.Option(None, "--capture-fps", help="Camera capture frame rate."),
        temporal: bool = flag("Optical-flow temporal stabilization (less flicker).", "--temporal"),
        temporal_blend: Optional[float] = typer.Option(
            None, "--temporal-blend", help="Weight of the warped previous frame in the fine detail, 0-1 (colour and "
            "shading use 0.9). Implies --temporal."),
        crf: Optional[int] = typer.Option(None, "--crf", help="Recording quality (lower = better)."),
        x264_preset: Optional[str] = typer.Option(None, "--x264-preset", help="Recording encoder speed preset."),
        codec: Optional[str] = typer.Option(None, "--codec", help="Recording codec (default auto: by the file's container)."),
        overwrite: bool = flag("Replace an existing recording.", "--overwrite"),
        stats: Optional[str] = typer.Option(None, "--stats", help="Write the session stats JSON here (- = stdout, alone)."),
        json: bool = flag("Print the session summary as JSON on stdout.", "--json"),
        preset: Optional[str] = hidden(None, "--preset"),
    ) -> None:
        """Stylize a live source with the newest-frame policy; Ctrl-C ends the session (recording kept)."""
        from styleengine.engine.temporal import temporal_filter
        from styleengine.engine.video.live import stylize_live

        if preset is not None:
            deprecated("live --preset", "--x264-preset")
            x264_preset = x264_preset or preset
        if json and stats == "-":
            raise StyleEngineError("only one of --json and --stats - can use stdout")
        result = stylize_live(source, style, backend=backend, device=device, precision=precision, max_size=max_size,
                              strength=strength, preserve_color=preserve_color, output=output, preview=preview,
                              host=host, port=port, realtime=realtime, duration=duration, max_frames=frames,
                              crf=crf, x264_preset=x264_preset, codec=codec, overwrite=overwrite, stats=stats,
                              temporal=temporal_filter(temporal, temporal_blend), capture_size=capture_size,
                              capture_fps=capture_fps)
        if json:
            print_json(result.to_dict())
