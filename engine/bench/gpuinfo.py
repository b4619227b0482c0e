"""GPU clocks, power and temperature from nvidia-smi (read-only queries; never changes the card's settings)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

CLOCK_FIELDS = ("index", "clocks.sm", "clocks.mem", "clocks.max.sm", "clocks.max.mem", "power.draw", "power.limit",
                "temperature.gpu", "pstate")


def gpu_clocks() -> list[dict[str, Any]] | None:
    """One dict per GPU; None where nvidia-smi is missing or fails."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return None
    try:
        out = subprocess.run([smi, f"--query-gpu={','.join(CLOCK_FIELDS)}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == len(CLOCK_FIELDS):
            rows.append({k.replace(".", "_"): v for k, v in zip(CLOCK_FIELDS, parts)})
    return rows or None


def sm_clock_mhz(device: str) -> str | None:
    """Current SM clock of the benchmarked GPU (read right after a timed loop, so it reflects the load clock)."""
    clocks = gpu_clocks()
    if not clocks:
        return None
    index = device.split(":")[1] if ":" in device else "0"
    for c in clocks:
        if c.get("index") == index:
            return c.get("clocks_sm")
    return clocks[0].get("clocks_sm")
