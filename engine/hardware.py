"""Cheap hardware facts for backend selection: NVIDIA GPUs (via the driver, no torch/pycuda) and CPU cores."""

from __future__ import annotations

import ctypes
import functools
import os


@functools.lru_cache(maxsize=1)
def cuda_device_count() -> int:
    """GPUs the CUDA driver sees; 0 without a driver. Asks libcuda directly so no heavy package is imported."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return 0
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll", "libcuda.dylib"):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        return 0
    try:
        if lib.cuInit(0) != 0:
            return 0
        count = ctypes.c_int(0)
        if lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return int(count.value)
    except (AttributeError, OSError):
        return 0


def usable_cpus() -> list[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


@functools.lru_cache(maxsize=1)
def physical_cores() -> int:
    """Physical cores among the CPUs this process may use: SMT siblings share execution units, so running one
    compute thread per core (not per hyperthread) is what ONNX Runtime recommends for intra-op threads."""
    cpus = usable_cpus()
    seen: set[tuple[str, str]] = set()
    for cpu in cpus:
        base = f"/sys/devices/system/cpu/cpu{cpu}/topology"
        try:
            with open(f"{base}/physical_package_id") as f:
                pkg = f.read().strip()
            with open(f"{base}/core_id") as f:
                core = f.read().strip()
        except OSError:
            return max(1, len(cpus))
        seen.add((pkg, core))
    return max(1, len(seen) or len(cpus))
