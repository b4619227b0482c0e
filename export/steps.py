"""`styleengine export`: the build steps one at a time (FP32 ONNX, FP16 ONNX, Triton repository).

The source is a checkpoint (.pt/.pth) or a bundle folder. From a bundle, the already validated models are
copied; from a checkpoint they are exported and checked against torch (ONNX Runtime CPU) before being written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from styleengine.core.bundle import load_bundle
from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_path

from .build import build_bundle, check_preset, load_source_checkpoint
from .fp16 import export_fp16
from .onnx_export import DEFAULT_OPSET, export_onnx
from .parity import onnx_parity
from .triton import write_triton_repository


@dataclass
class ExportResult:
    written: dict[str, str] = field(default_factory=dict)  # step -> path
    validation: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _check_file_target(path: Path, overwrite: bool, what: str) -> None:
    if path.exists() and not overwrite:
        raise StyleEngineError(f"output exists (use --overwrite): {path}")
    if path.exists() and path.is_dir():
        raise StyleEngineError(f"{what} output is a folder: {path}")
    if not path.parent.is_dir():
        raise StyleEngineError(f"output folder does not exist: {path.parent}")


def export(source: str | os.PathLike, *, onnx: str | os.PathLike | None = None, fp16: str | os.PathLike | None = None,
           triton: str | os.PathLike | None = None, overwrite: bool = False, opset: int | None = None,
           exporter: str = "dynamo", max_batch_size: int = 8, instances: int = 1, name: str | None = None,
           validate: bool = True) -> ExportResult:
    """Write the requested artifacts; nothing is written for a step whose validation fails, and a bundle whose
    files do not match its manifest is refused."""
    if onnx is None and fp16 is None and triton is None:
        raise StyleEngineError("nothing to export: give --onnx FILE, --fp16 FILE and/or --triton DIR")
    src = Path(source)
    targets = [(k, Path(v)) for k, v in (("onnx", onnx), ("fp16", fp16)) if v is not None]
    for what, p in targets:
        _check_file_target(p, overwrite, what)
    result = ExportResult()

    if src.is_dir():
        bundle = load_bundle(src)
        bundle.verify_all()
        for what, p in targets:
            model = bundle.onnx("fp32" if what == "onnx" else "fp16")
            if model is None:
                raise StyleEngineError(f"{src}: bundle has no {'fp32' if what == 'onnx' else 'fp16'} ONNX model")
            with atomic_path(p, overwrite=overwrite) as tmp:
                shutil.copyfile(model, tmp)
            result.written[what] = str(p)
        if triton is not None:
            tr = _triton(bundle, triton, name, max_batch_size, instances, overwrite)
            result.written["triton"] = str(tr.repository)
            result.notes += tr.notes
        return result

    ckpt = load_source_checkpoint(src)
    check_preset(ckpt)
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if targets:
        with tempfile.TemporaryDirectory(prefix=".styleengine-export-") as d:
            fp32_tmp = export_onnx(ckpt, Path(d) / "model_fp32.onnx", opset=opset, exporter=exporter)
            staged = {"onnx": fp32_tmp}
            if fp16 is not None:
                staged["fp16"] = export_fp16(fp32_tmp, Path(d) / "model_fp16.onnx")
            for what, p in targets:
                precision = "fp32" if what == "onnx" else "fp16"
                if validate:
                    res = onnx_parity(staged[what], ckpt, precision=precision)
                    result.validation[precision] = res
                    if not res["ok"]:
                        raise StyleEngineError(f"{precision} ONNX does not match torch (max diff {res['max_abs_diff']} "
                                               f"> {res['tolerance']} uint8 levels); nothing written")
            for what, p in targets:
                with atomic_path(p, overwrite=overwrite) as tmp:
                    shutil.copyfile(staged[what], tmp)
                result.written[what] = str(p)
    if triton is not None:
        with tempfile.TemporaryDirectory(prefix=".styleengine-export-") as d:
            built = build_bundle(src, Path(d) / f"{src.stem}.engine", opset=opset, exporter=exporter, validate=validate)
            if built.tensorrt_note:
                result.notes.append(built.tensorrt_note)
            tr = _triton(load_bundle(built.path), triton, name, max_batch_size, instances, overwrite)
        result.written["triton"] = str(tr.repository)
        result.notes += tr.notes
    return result


def _triton(bundle, repo, name, max_batch_size, instances, overwrite):
    return write_triton_repository(bundle, repo, name=name, max_batch_size=max_batch_size, instances=instances,
                                   overwrite=overwrite)
