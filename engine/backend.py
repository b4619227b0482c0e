"""The one Backend contract every runtime implements, and the registry that finds them.

A backend runs one style's network on uint8 RGB NHWC batches:

    with get_backend("onnxruntime")(bundle, device="cpu") as be:   # __enter__ calls load()
        out = be.infer(batch)          # (N, H, W, 3) uint8 -> (N, H, W, 3) uint8, same H and W

Heavy imports (torch, onnxruntime, tensorrt, pycuda) happen inside each backend module, so this module and
`styleengine --help` work where they are missing. `available()` answers without importing them.
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from styleengine.errors import StyleEngineError

from .bundle import Bundle


class Backend(ABC):
    name: ClassVar[str]

    def __init__(self, bundle: Bundle, *, device: str | None = None, precision: str | None = None, **options: Any):
        self.bundle = bundle
        self.device = device
        self.precision = precision
        self.options = options
        self.loaded = False

    @classmethod
    @abstractmethod
    def available(cls) -> tuple[bool, str]:
        """(usable here?, reason when not). Cheap: no heavy import, no model load."""

    @abstractmethod
    def load(self) -> "Backend":
        """Prepare sessions/engines/buffers. Idempotent."""

    @abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB -> (N, H, W, 3) uint8 RGB."""

    def close(self) -> None:
        self.loaded = False

    def _ready(self, batch: np.ndarray) -> np.ndarray:
        """Every infer() starts here: load on first use, then validate the contract's input."""
        if not self.loaded:
            self.load()
        return check_batch(batch)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device": self.device, "precision": self.precision}

    def __enter__(self) -> "Backend":
        if not self.loaded:
            self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_batch(batch: np.ndarray) -> np.ndarray:
    """Validate the contract's input; returns a C-contiguous uint8 array."""
    if not isinstance(batch, np.ndarray) or batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
        shape = getattr(batch, "shape", None)
        dtype = getattr(batch, "dtype", None)
        raise StyleEngineError(f"backend input must be uint8 (N, H, W, 3); got {dtype} {shape}")
    return np.ascontiguousarray(batch)


def module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# name -> "module:Class" (modules are imported only when the backend is used)
REGISTRY: dict[str, str] = {
    "tensorrt": "styleengine.engine.backend_tensorrt:TensorRTBackend",
    "onnxruntime": "styleengine.engine.backend_onnxruntime:OnnxRuntimeBackend",
    "torch": "styleengine.engine.backend_torch:TorchBackend",
}


def get_backend(name: str) -> type[Backend]:
    try:
        target = REGISTRY[name]
    except KeyError:
        raise StyleEngineError(f"unknown backend {name!r}; choose one of: auto, {', '.join(REGISTRY)}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)
