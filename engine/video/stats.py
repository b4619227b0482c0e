"""Pipeline measurements: busy time per stage, queue waits, end-to-end FPS, latency percentiles, drops.

Each stage is timed by the one thread that runs it, so no locks are needed for the counters; the report is
read after the threads have stopped (or as a snapshot for live progress).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(q / 100.0 * len(s)) - 1))
    return s[k]


@dataclass
class StageStat:
    seconds: float = 0.0
    calls: int = 0
    items: int = 0

    def add(self, seconds: float, items: int = 1) -> None:
        self.seconds += seconds
        self.calls += 1
        self.items += items


class _Timer:
    __slots__ = ("stat", "items", "t0")

    def __init__(self, stat: StageStat, items: int):
        self.stat, self.items = stat, items

    def __enter__(self) -> "_Timer":
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stat.add(time.perf_counter() - self.t0, self.items)


@dataclass
class Stats:
    mode: str = "file"
    stages: dict[str, StageStat] = field(default_factory=dict)
    queues: dict[str, dict[str, float]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)   # seconds, per output frame
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    timestamp_fixes: int = 0
    t_start: float = field(default_factory=time.perf_counter)
    t_end: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def stage(self, name: str, items: int = 1) -> _Timer:
        return _Timer(self.stages.setdefault(name, StageStat()), items)

    def finish(self) -> None:
        if self.t_end is None:
            self.t_end = time.perf_counter()

    @property
    def wall(self) -> float:
        return (self.t_end or time.perf_counter()) - self.t_start

    def fps(self) -> float:
        w = self.wall
        return self.frames_out / w if w > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        ms = lambda v: None if v is None else round(v * 1000.0, 2)  # noqa: E731
        stages = {}
        for name, st in self.stages.items():
            stages[name] = {
                "seconds": round(st.seconds, 4), "calls": st.calls, "items": st.items,
                "ms_per_item": round(st.seconds * 1000.0 / st.items, 3) if st.items else None,
                "busy_fraction": round(st.seconds / self.wall, 3) if self.wall > 0 else None,
            }
        return {
            "mode": self.mode,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "dropped": self.dropped,
            "timestamp_fixes": self.timestamp_fixes,
            "wall_seconds": round(self.wall, 4),
            "fps": round(self.fps(), 3),
            "latency_ms": {"p50": ms(percentile(self.latencies, 50)), "p95": ms(percentile(self.latencies, 95)),
                           "max": ms(max(self.latencies) if self.latencies else None)},
            "stages": stages,
            "queues": {k: {kk: (round(vv, 4) if isinstance(vv, float) else vv) for kk, vv in v.items()}
                       for k, v in self.queues.items()},
            **self.extra,
        }
