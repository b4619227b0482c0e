"""Peak memory per benchmark row: host RSS high-water (Linux, reset per row) and device memory.

Host: Linux keeps the resident-set high-water mark in /proc/self/status (VmHWM); writing "5" to
/proc/self/clear_refs resets it to the current RSS (Linux >= 4.0), so each row gets its own peak without psutil.
Where that is refused the process-lifetime peak from getrusage is reported, labelled as such.
Device: torch's caching allocator peak for torch-run rows (exact). Other backends (ONNX Runtime, TensorRT)
allocate outside torch: for them a background thread samples NVML's used memory every SAMPLE_MS during the
row (prepare + warm-up + timed loop) and the row reports the largest sample, labelled "sampled every N ms"
(an allocation that lives shorter than the interval can be missed, so it is a lower bound of the true peak).
"""

from __future__ import annotations

import os
import resource
import sys
import threading
import weakref
from typing import Any, Callable

SAMPLE_MS = 20
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
    """Device memory for one row (see the module doc): start() before the row's work, sample() right after
    its timed loop, stop() for the figures. A row that fails between start() and stop() leaves no thread
    running: the sampler ends when this object is collected."""

    _floor: dict[str, int | None] = {}

    def __init__(self, device: str, *, torch_allocator: bool, interval_ms: float = SAMPLE_MS):
        self.device = device
        self.torch_allocator = torch_allocator and device.startswith("cuda")
        self.interval_ms = interval_ms
        self._sampler: _Sampler | None = None
        self._result: tuple[int, str] | None = None

    @classmethod
    def record_floor(cls, device: str) -> None:
        """Call once before any backend loads: device-wide used memory that is not ours."""
        if device.startswith("cuda"):
            handle = _nvml_handle(device)
            cls._floor[device] = _nvml_used(handle) if handle is not None else None

    def start(self) -> None:
        if not self.device.startswith("cuda"):
            return
        if self.torch_allocator:
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        read = _reader(self.device, self._floor.get(self.device))
        if read is not None:
            self._sampler = _Sampler(read[0], read[1], self.interval_ms)
            weakref.finalize(self, self._sampler.stop_event.set)

    def sample(self) -> None:
        """Call right after the timed loop: ends the sampling (one last sample while the buffers are live)."""
        if self._sampler is not None and self._result is None:
            self._result = self._sampler.stop()

    def stop(self) -> dict[str, Any]:
        if not self.device.startswith("cuda"):
            return {"device_peak_mib": None, "device_mem_scope": None}
        if self.torch_allocator:
            import torch

            return {"device_peak_mib": round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1),
                    "device_mem_scope": "torch allocator peak"}
        self.sample()
        if self._result is None:
            return {"device_peak_mib": None, "device_mem_scope": "unreadable (no NVML)"}
        return {"device_peak_mib": round(self._result[0] / 2**20, 1), "device_mem_scope": self._result[1]}


class _Sampler:
    """A daemon thread calling `read()` every `interval_ms` until stop(); keeps the largest value."""

    def __init__(self, read: Callable[[], int | None], what: str, interval_ms: float):
        self.read, self.what, self.interval = read, what, interval_ms / 1000.0
        self.stop_event = threading.Event()
        self.peak: int | None = None
        self.samples = 0
        self._take()
        self.thread = threading.Thread(target=self._loop, name="styleengine-nvml-sampler", daemon=True)
        self.thread.start()

    def _take(self) -> None:
        v = self.read()
        if v is not None:
            self.samples += 1
            self.peak = v if self.peak is None else max(self.peak, v)

    def _loop(self) -> None:
        while not self.stop_event.wait(self.interval):
            self._take()

    def stop(self) -> tuple[int, str] | None:
        self.stop_event.set()
        self.thread.join(timeout=5)
        self._take()
        if self.peak is None:
            return None
        ms = f"{self.interval * 1000:g}"
        return self.peak, (f"device memory peak, sampled every {ms} ms during the row ({self.samples} samples; "
                           f"{self.what}; shorter-lived allocations can be missed)")


def _reader(device: str, floor: int | None) -> tuple[Callable[[], int | None], str] | None:
    """What the sampler reads: NVML's figure for this process, or where the driver hides per-process figures
    (containers) device-wide used memory minus what was used at benchmark start."""
    handle = _nvml_handle(device)
    if handle is None:
        return None
    if _nvml_process_used(handle) is not None:
        return (lambda: _nvml_process_used(handle)), "NVML used memory of this process"
    if floor is not None and _nvml_used(handle) is not None:
        def device_wide() -> int | None:
            used = _nvml_used(handle)
            return None if used is None else max(used - floor, 0)

        return device_wide, "NVML device-wide used memory minus that at benchmark start"
    return None


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
