"""FP16 ONNX -> TensorRT plans (TensorRT 10.x and 11.x Python API), each with a JSON sidecar.

TensorRT cannot be installed on our CI machines: the TensorRT calls here are kept thin and every decision
around them (flags, profiles, sidecar, compatibility) lives in pure functions tested with a fake module.
"""

from __future__ import annotations

import importlib.util
import logging

from styleengine.errors import StyleEngineError

log = logging.getLogger(__name__)


def probe() -> tuple[bool, str]:
    """(can build plans here?, reason). Checks the package, then a GPU, then that TensorRT imports."""
    if importlib.util.find_spec("tensorrt") is None:
        return False, "TensorRT is not installed (pip install 'styleengine[tensorrt]' on a machine with an NVIDIA GPU)"
    from styleengine.envinfo import gpu_info

    if not gpu_info():
        return False, "no NVIDIA GPU found (nvidia-smi reports none)"
    try:
        import tensorrt as trt
    except Exception as exc:  # broken CUDA/driver installs raise many types at import
        return False, f"TensorRT failed to import ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    return True, f"TensorRT {getattr(trt, '__version__', '?')}"


def validate_options(*, workspace: int | None = None, opt_level: int | None = None) -> None:
    if workspace is not None and not (16 <= int(workspace) <= 1 << 20):
        raise StyleEngineError(f"--workspace {workspace} MiB out of range (16..1048576)")
    if opt_level is not None and not (0 <= int(opt_level) <= 5):
        raise StyleEngineError(f"--opt-level {opt_level} out of range (0..5)")
