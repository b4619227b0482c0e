"""Facts about this machine, cheap and without heavy packages: CPU model and ISA flags, cores, NVIDIA GPUs (via
the driver and nvidia-smi; no torch/pycuda), and installed package versions (from package metadata)."""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import os
import platform
import shutil
import subprocess
from typing import Any


@functools.lru_cache(maxsize=1)
def _libcuda():
    """The CUDA driver library, initialized, or None (no driver, or CUDA_VISIBLE_DEVICES hides every GPU)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return None
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll", "libcuda.dylib"):
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        return None
    try:
        return lib if lib.cuInit(0) == 0 else None
    except (AttributeError, OSError):
        return None


@functools.lru_cache(maxsize=1)
def cuda_device_count() -> int:
    """GPUs the CUDA driver sees; 0 without a driver. Asks libcuda directly so no heavy package is imported."""
    lib = _libcuda()
    if lib is None:
        return 0
    count = ctypes.c_int(0)
    try:
        return int(count.value) if lib.cuDeviceGetCount(ctypes.byref(count)) == 0 else 0
    except (AttributeError, OSError):
        return 0


_CC_MAJOR, _CC_MINOR = 75, 76  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR


def cuda_device(index: int = 0) -> tuple[str, str] | None:
    """(name, compute capability "M.m") of CUDA device `index` as the driver numbers it (after
    CUDA_VISIBLE_DEVICES), or None."""
    lib = _libcuda()
    if lib is None:
        return None
    dev, major, minor = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(0)
    name = ctypes.create_string_buffer(256)
    try:
        if (lib.cuDeviceGet(ctypes.byref(dev), int(index)) != 0 or lib.cuDeviceGetName(name, 256, dev) != 0
                or lib.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, dev) != 0
                or lib.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, dev) != 0):
            return None
    except (AttributeError, OSError):
        return None
    return name.value.decode(errors="replace"), f"{major.value}.{minor.value}"


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


PACKAGES = {
    "torch": ["torch"],
    "onnx": ["onnx"],
    "onnxruntime": ["onnxruntime-gpu", "onnxruntime"],
    "openvino": ["openvino"],
    "cuda-python": ["cuda-python", "cuda-bindings"],
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


# ISA extensions that decide which CPU kernels run (oneDNN/MLAS/OpenVINO pick by these).
ISA_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16",
             "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve", "bf16", "i8mm")


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset[str]]:
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and name in ("", platform.processor() or platform.machine()):
                    name = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return name, frozenset(flags)


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as the kernel reports them (empty where /proc/cpuinfo is missing)."""
    return _cpuinfo()[1]


def cpu_info() -> dict[str, Any]:
    name, flags = _cpuinfo()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"name": name, "logical_cores": os.cpu_count(), "usable_cores": usable, "physical_cores": physical_cores(),
            "machine": platform.machine(), "isa": [f for f in ISA_FLAGS if f in flags]}


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
