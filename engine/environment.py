"""What this machine has and which backend can run here (`styleengine env`, benchmark environment blocks).

Works without torch, TensorRT, pycuda or a GPU: versions come from package metadata, GPUs from nvidia-smi.
"""

from __future__ import annotations

import platform
import sys
from typing import Any

from styleengine.core import __version__
from styleengine.core.hostinfo import PACKAGES, cpu_info, gpu_info, package_version

from .backend import REGISTRY, get_backend


def backend_status() -> dict[str, dict[str, Any]]:
    status = {}
    for name in REGISTRY:
        ok, reason = get_backend(name).available()
        status[name] = {"available": ok, "reason": reason}
    return status


def environment() -> dict[str, Any]:
    return {
        "styleengine": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {k: package_version(v) for k, v in PACKAGES.items()},
        "cpu": cpu_info(),
        "gpus": gpu_info(),
        "backends": backend_status(),
    }
