"""`styleengine build`: checkpoint -> deployable bundle (ONNX FP32/FP16, TensorRT plans where possible)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import err, flag, handle_errors, print_json


def register(app: typer.Typer) -> None:
    @app.command("build")
    @handle_errors
    def build(
        checkpoint: Path = typer.Argument(..., help="Model file (.pt/.pth): styleengine or pytorch/examples format."),
        output: Optional[Path] = typer.Option(None, "-o", "--output", help="Bundle folder (default: ./NAME.engine)."),
        shapes: Optional[List[str]] = typer.Option(None, "--shape", help="TensorRT profile: HxW, NxHxW, MIN:OPT:MAX, "
                                                  "'default' (360p-1080p) or '4k'. Repeat for several."),
        refit: bool = flag("Refittable plan: switch styles of this preset without rebuilding.", "--refit"),
        workspace: Optional[int] = typer.Option(None, "--workspace", help="TensorRT workspace limit in MiB (default 4096)."),
        opt_level: Optional[int] = typer.Option(None, "--opt-level", help="TensorRT builder optimization level 0-5."),
        timing_cache: Optional[Path] = typer.Option(None, "--timing-cache", help="TensorRT timing cache file."),
        tensorrt: str = typer.Option("auto", "--tensorrt", help="auto | off | require."),
        overwrite: bool = flag("Replace an existing bundle.", "--overwrite"),
        json: bool = flag("Print the manifest as JSON.", "--json"),
    ) -> None:
        """Export a checkpoint to a validated bundle: FP32 + FP16 ONNX (uint8 NHWC) and TensorRT plans."""
        from styleengine.export.build import build_bundle

        result = build_bundle(checkpoint, output, shapes=shapes or None, tensorrt=tensorrt, refit=refit,
                              overwrite=overwrite, workspace=workspace, opt_level=opt_level, timing_cache=timing_cache)
        if result.tensorrt_note:
            err(result.tensorrt_note)
        if json:
            print_json({"path": str(result.path), "plans": [str(p) for p in result.plans], **result.manifest})
        else:
            print(result.path)
