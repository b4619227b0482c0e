"""`styleengine live SOURCE --style STYLE`: webcam, capture device, URL, or a file at real pace; MJPEG preview."""

from __future__ import annotations

from typing import Optional

import typer

from .common import handle_errors, print_json


def register(app: typer.Typer) -> None:
    @app.command("live")
    @handle_errors
    def live(
        source: str = typer.Argument(..., help="Webcam index (0), device path (/dev/video0), rtsp://... or http://... URL, or a video file."),
        style: str = typer.Option(..., "--style", "-s", help="Bundle folder, .pt/.pth checkpoint, or built-in style name."),
        output: Optional[str] = typer.Option(None, "-o", "--output", help="Also record the stylized video to this file (video only)."),
        preview: bool = typer.Option(True, "--preview/--no-preview", help="Serve an MJPEG preview page over HTTP."),
        host: str = typer.Option("127.0.0.1", "--host", help="Preview address (0.0.0.0 exposes it to the network)."),
        port: int = typer.Option(8765, "--port", help="Preview port (0 = any free port)."),
        realtime: bool = typer.Option(False, "--realtime", help="Play a file source at its real pace (drops frames when behind, like a camera)."),
        duration: Optional[float] = typer.Option(None, "--duration", help="Stop after this many seconds."),
        max_frames: Optional[int] = typer.Option(None, "--frames", help="Stop after this many stylized frames."),
        backend: str = typer.Option("auto", "--backend", help="auto | tensorrt | onnxruntime | torch."),
        device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: best available)."),
        precision: str = typer.Option("auto", "--precision", help="auto | fp32 | fp16 | int8."),
        max_size: Optional[int] = typer.Option(None, "--max-size", help="Downscale frames so the long side is at most this."),
        capture_size: Optional[str] = typer.Option(None, "--capture-size", help="Camera capture size, e.g. 1280x720."),
        capture_fps: Optional[float] = typer.Option(None, "--capture-fps", help="Camera capture frame rate."),
        temporal: bool = typer.Option(False, "--temporal", help="Optical-flow temporal stabilization (less flicker)."),
        crf: Optional[int] = typer.Option(None, "--crf", help="Recording quality (lower = better)."),
        preset: Optional[str] = typer.Option(None, "--preset", help="Recording encoder speed preset."),
        codec: Optional[str] = typer.Option(None, "--codec", help="Recording codec (default: auto)."),
        overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing recording."),
        stats: Optional[str] = typer.Option(None, "--stats", help="Write the session stats JSON here (- = stdout)."),
        json: bool = typer.Option(False, "--json", help="Print the session summary as JSON on stdout."),
    ) -> None:
        """Stylize a live source with the newest-frame policy; Ctrl-C ends the session (recording kept)."""
        from styleengine.engine.select import open_backend
        from styleengine.engine.styles import resolve_style
        from styleengine.engine.video import live as run
        from styleengine.engine.video.live import check_live_args

        check_live_args(source, output, overwrite)
        bundle = resolve_style(style)
        with open_backend(bundle, backend, device=device, precision=precision) as be:
            result = run(source, be, output=output, preview=preview, host=host, port=port, realtime=realtime,
                         duration=duration, max_frames=max_frames, crf=crf, preset=preset, codec=codec,
                         temporal=temporal or None, stats=stats, max_size=max_size, overwrite=overwrite,
                         capture_size=capture_size, capture_fps=capture_fps)
        if json:
            print_json(result.to_dict())
