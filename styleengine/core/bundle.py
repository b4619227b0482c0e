"""The deployable bundle (`vangogh.engine/`): its layout and manifest, read without torch.

Layout (written by styleengine.export.build, atomically as a whole folder):

    vangogh.engine/
      manifest.json        BUNDLE_FORMAT, style metadata, preset/arch, source checkpoint sha256, I/O contract,
                           created_by, models {precision: file}, plans [sidecar file names],
                           files {name: {sha256, bytes}} for every model file
      model.pt             the source checkpoint, copied (the torch backend runs it)
      model_fp32.onnx      uint8 NHWC in -> uint8 NHWC out, dynamic batch/height/width
      model_fp16.onnx      same I/O; FP16 convs, FP32 InstanceNormalization
      plans/*.plan         TensorRT plans, each with a *.json sidecar (TRT version, GPU, profiles, ONNX hash)

I/O contract of every model: input "input" uint8 (N, H, W, 3) RGB; output "output" uint8 (N, H, W, 3).

Integrity: a model file is checked against the manifest's sha256 before anything runs it (Bundle.verify); the
result is remembered per process by size and modification time, so a file is hashed once.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import StyleEngineError
from .fsutil import sha256_file

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

    def expected_sha256(self, name: str) -> str | None:
        """The manifest's sha256 for bundle file `name` (relative path), or None where it records none."""
        files = self.manifest.get("files") or {}
        if name in files:
            return (files[name] or {}).get("sha256")
        for entry in (self.manifest.get("onnx") or {}).values():  # bundles written before "files" existed
            if isinstance(entry, dict) and entry.get("file") == name:
                return entry.get("sha256")
        return None

    def verify(self, path: Path) -> None:
        """Refuse a model file whose content differs from what the manifest recorded (one-line error)."""
        path = Path(path)
        try:
            name = path.relative_to(self.path).as_posix()
        except ValueError:
            return  # not a bundle file (e.g. a cached INT8 model): its own loader vouches for it
        expected = self.expected_sha256(name)
        if expected is None:
            return
        actual = _hash_once(path)
        if actual != expected:
            raise StyleEngineError(f"{path}: bundle file does not match its manifest (sha256 {actual[:12]}..., "
                                   f"manifest says {expected[:12]}...); the bundle was modified after it was "
                                   f"built: rebuild it with `styleengine build`")

    def verify_all(self) -> None:
        for name in list((self.manifest.get("files") or {})) or [e.get("file") for e in
                                                                  (self.manifest.get("onnx") or {}).values()
                                                                  if isinstance(e, dict) and e.get("file")]:
            path = self.path / name
            if not path.is_file():
                raise StyleEngineError(f"{self.path}: bundle file {name} is missing")
            self.verify(path)


_HASHES: dict[tuple[str, int, int], str] = {}
_HASH_LOCK = threading.Lock()


def _hash_once(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        cached = _HASHES.get(key)
    if cached is None:
        cached = sha256_file(path)
        with _HASH_LOCK:
            _HASHES[key] = cached
    return cached


def file_entries(folder: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """The manifest's "files" block for `names` (paths relative to `folder`)."""
    return {n: {"sha256": sha256_file(folder / n), "bytes": (folder / n).stat().st_size} for n in names}


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
