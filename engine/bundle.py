"""The deployable bundle (`vangogh.engine/`): its layout and manifest, read without torch.

Layout (written by styleengine.export.build, atomically as a whole folder):

    vangogh.engine/
      manifest.json        BUNDLE_FORMAT, style metadata, preset/arch, source checkpoint sha256, I/O contract,
                           created_by, models {precision: file}, plans [sidecar file names]
      model.pt             the source checkpoint, copied (the torch backend runs it)
      model_fp32.onnx      uint8 NHWC in -> uint8 NHWC out, dynamic batch/height/width
      model_fp16.onnx      same I/O; FP16 convs, FP32 InstanceNormalization
      plans/*.plan         TensorRT plans, each with a *.json sidecar (TRT version, GPU, profiles, ONNX hash)

I/O contract of every model: input "input" uint8 (N, H, W, 3) RGB; output "output" uint8 (N, H, W, 3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from styleengine.errors import StyleEngineError

BUNDLE_FORMAT = "styleengine.bundle/1"
MANIFEST = "manifest.json"
CHECKPOINT = "model.pt"
ONNX_FILES = {"fp32": "model_fp32.onnx", "fp16": "model_fp16.onnx"}
PLANS_DIR = "plans"
INPUT_NAME = "input"
OUTPUT_NAME = "output"
IO_CONTRACT = {
    "input": {"name": INPUT_NAME, "dtype": "uint8", "layout": "NHWC", "channels": "RGB", "shape": ["batch", "height", "width", 3]},
    "output": {"name": OUTPUT_NAME, "dtype": "uint8", "layout": "NHWC", "channels": "RGB", "shape": ["batch", "height", "width", 3]},
}


@dataclass
class Bundle:
    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def style_name(self) -> str:
        return str((self.manifest.get("style") or {}).get("name") or self.path.stem)

    @property
    def preset(self) -> str:
        return str(self.manifest.get("preset", "custom"))

    @property
    def checkpoint(self) -> Path | None:
        p = self.path / CHECKPOINT
        return p if p.is_file() else None

    def onnx(self, precision: str) -> Path | None:
        name = (self.manifest.get("models") or {}).get(precision) or ONNX_FILES.get(precision)
        if not name:
            return None
        p = self.path / name
        return p if p.is_file() else None

    @property
    def plans_dir(self) -> Path:
        return self.path / PLANS_DIR


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def load_bundle(path: str | Path) -> Bundle:
    path = Path(path)
    mf = path / MANIFEST
    if not mf.is_file():
        raise StyleEngineError(f"not a styleengine bundle (no {MANIFEST}): {path}")
    try:
        manifest = json.loads(mf.read_text())
    except (OSError, ValueError) as exc:
        raise StyleEngineError(f"{mf}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise StyleEngineError(f"{mf}: unknown bundle format {manifest.get('format') if isinstance(manifest, dict) else None!r}")
    return Bundle(path, manifest)
