"""Peak memory per benchmark row: host RSS high-water (Linux, reset per row) and device memory.

Host: Linux keeps the resident-set high-water mark in /proc/self/status (VmHWM); writing "5" to
/proc/self/clear_refs resets it to the current RSS (Linux >= 4.0), so each row gets its own peak without psutil.
Where that is refused the process-lifetime peak from getrusage is reported, labelled as such.
Device: torch's caching allocator peak for torch-run rows; otherwise NVML's device-wide used-memory growth.
"""

from __future__ import annotations

import os
import resource
import sys
from typing import Any

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _vm_kib(field: str) -> int | None:
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


class HostPeak:
    """Measure the peak resident set between start() and stop(), in MiB."""

    def __init__(self) -> None:
        self.scope = "row"

    def start(self) -> None:
        try:
            with open(_CLEAR_REFS, "w") as f:
                f.write("5")
            self.scope = "row" if _vm_kib("VmHWM") is not None else "process"
        except OSError:
            self.scope = "process"

    def stop(self) -> dict[str, Any]:
        kib = _vm_kib("VmHWM") if self.scope == "row" else None
        if kib is None:
            self.scope = "process"
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            kib = peak // 1024 if sys.platform == "darwin" else peak  # macOS reports bytes, Linux KiB
        return {"host_peak_mib": round(kib / 1024, 1), "host_peak_scope": self.scope}


class DevicePeak:
    """Device memory for one row.

    torch-run rows: the caching allocator's peak (reset per row). Other backends (ONNX Runtime, TensorRT):
    NVML's figure for this process right after the timed loop, or, where the driver hides per-process figures
    (containers), device-wide used memory minus what was used when the benchmark started. Not a peak.
    """

    _floor: dict[str, int | None] = {}

    def __init__(self, device: str, *, torch_allocator: bool):
        self.device = device
        self.torch_allocator = torch_allocator and device.startswith("cuda")
        self._after: tuple[int, str] | None = None

    @classmethod
    def record_floor(cls, device: str) -> None:
        """Call once before any backend loads: device-wide used memory that is not ours."""
        if device.startswith("cuda"):
            handle = _nvml_handle(device)
            cls._floor[device] = _nvml_used(handle) if handle is not None else None

    def start(self) -> None:
        if self.torch_allocator:
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def sample(self) -> None:
        """Call right after the timed loop, while the backend's buffers are live."""
        if not self.device.startswith("cuda") or self.torch_allocator:
            return
        handle = _nvml_handle(self.device)
        if handle is None:
            return
        mine = _nvml_process_used(handle)
        if mine is not None:
            self._after = (mine, "NVML, this process, after the timed loop")
            return
        used, floor = _nvml_used(handle), self._floor.get(self.device)
        if used is not None and floor is not None:
            self._after = (max(used - floor, 0), "NVML, device-wide used minus at benchmark start")

    def stop(self) -> dict[str, Any]:
        if not self.device.startswith("cuda"):
            return {"device_peak_mib": None, "device_mem_scope": None}
        if self.torch_allocator:
            import torch

            return {"device_peak_mib": round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1),
                    "device_mem_scope": "torch allocator peak"}
        if self._after is None:
            return {"device_peak_mib": None, "device_mem_scope": "unreadable (no NVML)"}
        return {"device_peak_mib": round(self._after[0] / 2**20, 1), "device_mem_scope": self._after[1]}


def _nvml_handle(device: str):
    try:
        import pynvml  # nvidia-ml-py; optional

        pynvml.nvmlInit()
        index = int(device.split(":")[1]) if ":" in device else 0
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible:
            index = int(visible.split(",")[index])
        return pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:  # no NVML library or driver, or CUDA_VISIBLE_DEVICES holds UUIDs
        return None


def _nvml_used(handle) -> int | None:
    try:
        import pynvml

        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
    except Exception:
        return None


def _nvml_process_used(handle) -> int | None:
    try:
        import pynvml

        for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
            if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                return int(proc.usedGpuMemory)
    except Exception:
        return None
    return None
