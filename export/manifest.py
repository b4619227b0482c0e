"""What every exported artifact says about itself: the ONNX metadata and the bundle manifest."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from styleengine.core import __version__
from styleengine.core.bundle import BUNDLE_FORMAT, IO_CONTRACT


def model_metadata(ckpt) -> dict[str, Any]:
    """Checkpoint description + I/O contract + producer: stored in ONNX metadata_props and the manifest."""
    meta = dict(ckpt.metadata())
    meta["style"] = dict(meta.get("style") or {})
    meta["style"].setdefault("name", ckpt.style_name)
    meta["io"] = IO_CONTRACT
    meta["created_by"] = f"styleengine {__version__}"
    return meta


def bundle_manifest(ckpt, *, models: dict[str, str], onnx: dict[str, dict[str, Any]], plans: list[str],
                    validation: dict[str, Any], tensorrt: dict[str, Any],
                    files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """manifest.json of a bundle (format core.bundle.BUNDLE_FORMAT)."""
    manifest = {"format": BUNDLE_FORMAT}
    manifest.update(model_metadata(ckpt))
    manifest.update({
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "models": dict(models),      # precision -> file name (core.bundle.Bundle.onnx reads it)
        "onnx": onnx,                # precision -> {file, sha256, opset, exporter, ...}
        "plans": list(plans),        # sidecar file names under plans/
        "validation": validation,    # parity vs torch measured at build time
        "tensorrt": tensorrt,        # {"built": bool, "reason": str}
        "files": files,              # every model file: {sha256, bytes}, checked when the bundle is used
    })
    return manifest
