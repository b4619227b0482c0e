"""`styleengine export`: the build steps separately (FP32 ONNX, FP16 ONNX, Triton model repository)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import err, flag, handle_errors, print_json


def register(app: typer.Typer) -> None:
    @app.command("export")
    @handle_errors
    def export(
        source: Path = typer.Argument(..., help="Checkpoint (.pt/.pth) or bundle folder."),
        onnx: Optional[Path] = typer.Option(None, "--onnx", help="Write the FP32 ONNX (uint8 NHWC) here."),
        fp16: Optional[Path] = typer.Option(None, "--fp16", help="Write the FP16 ONNX (FP32 InstanceNorm) here."),
        triton: Optional[Path] = typer.Option(None, "--triton", help="Add models to this Triton model repository."),
        name: Optional[str] = typer.Option(None, "--name", help="Triton model name prefix (default: the style name)."),
        max_batch_size: int = typer.Option(8, "--max-batch-size", help="Triton max_batch_size."),
        instances: int = typer.Option(1, "--instances", help="Triton instances per GPU."),
        opset: Optional[int] = typer.Option(None, "--opset", help="ONNX opset 17-20 (default 20)."),
        overwrite: bool = flag("Replace existing outputs.", "--overwrite"),
        json: bool = flag("Print what was written as JSON.", "--json"),
    ) -> None:
        """Export single artifacts: --onnx FILE, --fp16 FILE, --triton DIR (from a checkpoint or a bundle)."""
        from styleengine.export.steps import export as run_export

        result = run_export(source, onnx=onnx, fp16=fp16, triton=triton, overwrite=overwrite, opset=opset,
                            max_batch_size=max_batch_size, instances=instances, name=name)
        for note in result.notes:
            err(note)
        if json:
            print_json({"written": result.written, "validation": result.validation})
        else:
            for path in result.written.values():
                print(path)
