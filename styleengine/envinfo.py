"""What this machine has: package versions, CPU, GPUs, and which backend can run where.

Works without torch, TensorRT, pycuda or a GPU: versions come from package metadata, GPUs from nvidia-smi.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from typing import Any

from styleengine import __version__

PACKAGES = {
    "torch": ["torch"],
    "onnx": ["onnx"],
    "onnxruntime": ["onnxruntime-gpu", "onnxruntime"],
    "tensorrt": ["tensorrt", "tensorrt-cu13", "tensorrt-cu12"],
    "pycuda": ["pycuda"],
    "av (PyAV)": ["av"],
    "numpy": ["numpy"],
    "pillow": ["pillow"],
    "opencv": ["opencv-python-headless", "opencv-python", "opencv-contrib-python"],
}


def package_version(dists: list[str]) -> str | None:
    for dist in dists:
        try:
            return f"{importlib.metadata.version(dist)}" + ("" if dist == dists[0] else f" ({dist})")
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def cpu_info() -> dict[str, Any]:
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"name": name, "logical_cores": os.cpu_count(), "usable_cores": usable, "machine": platform.machine()}


def gpu_info() -> list[dict[str, Any]]:
    """GPUs as nvidia-smi reports them; [] where there is no NVIDIA driver."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    fields = "index,name,compute_cap,driver_version,memory.total,clocks.max.sm"
    try:
        out = subprocess.run([smi, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 6:
            gpus.append(dict(zip(["index", "name", "compute_capability", "driver", "memory_mib", "max_sm_clock_mhz"], parts)))
    return gpus


def backend_status() -> dict[str, dict[str, Any]]:
    from styleengine.engine.backend import REGISTRY, get_backend

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
