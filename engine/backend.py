"""The one Backend contract every runtime implements, and the registry that finds them.

A backend runs one style's network on uint8 RGB NHWC batches:

    with create_backend("onnxruntime", bundle, device="cpu") as be:   # __enter__ loads
        out = be.infer(batch)          # (N, H, W, 3) uint8 -> (N, H, W, 3) uint8, same H and W

As in Polygraphy's runners, the base class owns the guards (load once, load on first use, validate every input
against the declared limits, close once) and declares every capability with a default; a backend implements
`_load`, `_infer` and (optionally) `_close`, and overrides the capabilities it has. What a backend runs comes
from a loader (engine/loaders.py) handed to it: finding a file, quantizing or building a TensorRT plan happen
there, never in the backend.

Heavy imports (torch, onnxruntime, openvino, tensorrt, CUDA bindings) happen inside each backend module, so this
module and `styleengine --help` work where they are missing. `available()` answers without importing them.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable

import numpy as np

from styleengine.core.bundle import Bundle
from styleengine.core.errors import StyleEngineError
from styleengine.core.shapes import MIN_SIDE

from .loaders import Loader, model_loader


@dataclass(frozen=True)
class ShapeLimits:
    """Input sizes a loaded backend accepts. Smaller inputs are padded by the Stylizer; larger ones refused."""

    min_height: int = MIN_SIDE
    min_width: int = MIN_SIDE
    max_height: int | None = None
    max_width: int | None = None
    max_pixels: int | None = None  # per image, where only memory limits the size (GPU backends without profiles)

    def too_large(self, height: int, width: int) -> str | None:
        """A description of the limit `height` x `width` exceeds, or None."""
        if (self.max_height and height > self.max_height) or (self.max_width and width > self.max_width):
            return f"{self.max_width}x{self.max_height}"
        if self.max_pixels and height * width > self.max_pixels:
            return f"{self.max_pixels / 1e6:.0f} megapixels"
        return None


def device_kind(device: str | None) -> str:
    d = str(device or "cpu")
    if d == "cpu":
        return "cpu"
    if d == "cuda" or d.startswith("cuda:"):
        return "cuda"
    raise StyleEngineError(f"unknown device {device!r}; use cpu, cuda or cuda:N")


def device_index(device: str | None) -> int:
    d = str(device or "")
    if ":" not in d:
        return 0
    try:
        return int(d.split(":", 1)[1])
    except ValueError:
        raise StyleEngineError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None


class Backend(ABC):
    name: ClassVar[str]
    # Capabilities, declared per class: device kinds it runs on, and per device kind its precisions (the first
    # is the default). The base class checks requests against them before anything loads.
    devices: ClassVar[tuple[str, ...]] = ("cpu",)
    precisions: ClassVar[dict[str, tuple[str, ...]]] = {"cpu": ("fp32",)}
    default_device: ClassVar[str] = "cpu"

    def __init__(self, bundle: Bundle, *, device: str | None = None, precision: str | None = None,
                 model: Loader | None = None):
        self.bundle = bundle
        self.device = str(device or self.default_device)
        kind = device_kind(self.device)
        if kind not in self.devices:
            raise StyleEngineError(f"the {self.name} backend does not run on {self.device}; use --device "
                                   f"{' or '.join(self.devices)}, or another --backend")
        supported = self.precisions.get(kind, ())
        self.precision = precision if precision not in (None, "auto") else (supported or (None,))[0]
        if self.precision not in supported:
            raise StyleEngineError(f"the {self.name} backend does not run {self.precision} on {kind}; use "
                                   + ", or ".join(self._precision_fixes(kind, supported)))
        self.model = model if model is not None else model_loader(bundle, self.name, self.precision)
        self.loaded = False

    def _precision_fixes(self, kind: str, supported: tuple[str, ...]) -> list[str]:
        """What would run this precision instead: another precision here, another device, another backend."""
        fixes = [f"--precision {' or '.join(supported)}"] if supported else []
        fixes += [f"--device {k}" for k, p in self.precisions.items() if k != kind and self.precision in p][:1]
        others = [n for n in REGISTRY if n != self.name and
                  self.precision in get_backend(n).precisions.get(kind, ())]
        return fixes + [f"--backend {n}" for n in others][:1]

    # ---------------------------------------------------------------- what a backend implements
    @classmethod
    @abstractmethod
    def available(cls) -> tuple[bool, str]:
        """(usable here?, reason when not, with the fix). Cheap: no heavy import, no model load."""

    @classmethod
    def available_for(cls, **options: Any) -> tuple[bool, str]:
        """available() for one configuration (the options the backend would be created with)."""
        return cls.available()

    @abstractmethod
    def _load(self) -> None:
        """Load self.model() into sessions/engines/buffers."""

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 RGB (validated, within the limits) -> (N, H, W, 3) uint8 RGB."""

    def _close(self) -> None:
        """Release what _load() took."""

    # ---------------------------------------------------------------- capabilities (defaults)
    def shape_limits(self) -> ShapeLimits:
        return ShapeLimits()

    def max_batch_size(self) -> int | None:
        """Largest batch one infer() takes; None = no limit."""
        return None

    def last_timings(self) -> dict[str, float] | None:
        """Device-side stage times (ms: h2d, compute, d2h, gpu) of the last infer(), where measured."""
        return None

    def prepare(self, shapes: Iterable[tuple[int, ...]]) -> None:
        """Get ready for inputs of these (N, H, W, 3) shapes (capture graphs, bind buffers) before timed work."""
        self.load()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "device": self.device, "precision": self.precision,
                "model": getattr(self.model, "description", None)}

    # ---------------------------------------------------------------- the guards
    def load(self) -> "Backend":
        if not self.loaded:
            self._load()
            self.loaded = True
        return self

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if not self.loaded:
            self.load()
        batch = check_batch(batch)
        n, h, w = batch.shape[:3]
        limit = self.max_batch_size()
        if limit is not None and n > limit:
            raise StyleEngineError(f"batch of {n} exceeds the {self.name} backend's maximum of {limit}")
        lim = self.shape_limits()
        if h < lim.min_height or w < lim.min_width:
            raise StyleEngineError(f"image {w}x{h} is below the {self.name} backend's minimum "
                                   f"{lim.min_width}x{lim.min_height}")
        too_large = lim.too_large(h, w)
        if too_large:
            raise StyleEngineError(f"image {w}x{h} is larger than the {self.name} backend handles ({too_large}); "
                                   f"use --max-size to downscale it")
        out = self._infer(batch)
        if not isinstance(out, np.ndarray) or out.shape != batch.shape or out.dtype != np.uint8:
            raise StyleEngineError(f"the {self.name} backend returned {getattr(out, 'dtype', type(out).__name__)} "
                                   f"{getattr(out, 'shape', '')} for a {batch.shape} uint8 input")
        return out

    def close(self) -> None:
        if self.loaded:
            self._close()
            self.loaded = False

    def __enter__(self) -> "Backend":
        return self.load()

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
    "openvino": "styleengine.engine.backend_openvino:OpenVinoBackend",
    "torch": "styleengine.engine.backend_torch:TorchBackend",
}


def get_backend(name: str) -> type[Backend]:
    try:
        target = REGISTRY[name]
    except KeyError:
        raise StyleEngineError(f"unknown backend {name!r}; choose one of: auto, {', '.join(REGISTRY)}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def backend_options(cls: type[Backend]) -> list[str]:
    """The keyword options a backend class takes (beyond bundle)."""
    return [p.name for p in inspect.signature(cls.__init__).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY]


def create_backend(name: str, bundle: Bundle, **options: Any) -> Backend:
    """Construct backend `name` for `bundle`; an option it does not take is a one-line error, not ignored."""
    cls = get_backend(name)
    known = backend_options(cls)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise StyleEngineError(f"the {name} backend has no option {', '.join(map(repr, unknown))}; "
                               f"its options: {', '.join(known)}")
    return cls(bundle, **options)

