"""`styleengine eval flicker VIDEO --style STYLE`: temporal flicker (warping error) next to style strength."""

from __future__ import annotations

from typing import List, Optional

import typer

from .common import Group, flag, handle_errors, print_json, version_option

eval_app = typer.Typer(cls=Group, help="Quality measurements.", no_args_is_help=True,
                       context_settings={"help_option_names": ["-h", "--help"]})


@eval_app.callback()
def _eval(version: bool = version_option()) -> None:
    """Quality measurements."""


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")


@eval_app.command("flicker")
@handle_errors
def flicker(
    video: str = typer.Argument(..., help="Input video file."),
    style: str = typer.Option(..., "--style", "-s", help="Bundle folder, .pt/.pth checkpoint, or built-in style name."),
    frames: int = typer.Option(48, "--frames", help="Measure the first N frames."),
    backend: str = typer.Option("auto", "--backend", help="auto | tensorrt | onnxruntime | torch."),
    precision: Optional[str] = typer.Option(None, "--precision", help="auto | fp32 | fp16 | int8 (default: the backend's)."),
    blends: Optional[List[float]] = typer.Option(None, "--blend", help="Temporal blend values to test (repeat; default 0.3 0.5 0.7)."),
    max_size: Optional[int] = typer.Option(640, "--max-size", help="Downscale frames so the long side is at most this (0 = native)."),
    style_image: Optional[str] = typer.Option(None, "--style-image", help="Style image for the style distance (built-ins: bundled)."),
    json: bool = flag("Print machine-readable JSON.", "--json"),
) -> None:
    """Warping error (Lai et al. 2018) of the input (floor), per-frame stylization and --temporal variants."""
    from styleengine.engine.evaluate import DEFAULT_BLENDS, evaluate_flicker

    report = evaluate_flicker(video, style, frames=frames, backend=backend, precision=precision, blends=tuple(blends or DEFAULT_BLENDS),
                              max_size=max_size or None, style_image=style_image)
    if json:
        print_json(report.to_dict())
    else:
        print(report.table())
