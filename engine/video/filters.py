"""The per-stream state hook between inference and encode (temporal smoothing plugs in here).

A FrameFilter instance serves exactly one stream (one video, one live session). The pipeline calls, always in
frame order:

    start(info)                       once, before the first frame
    analyze(source, meta) -> context  per frame, on the INPUT side, before/while the frame is stylized
                                      (e.g. optical flow on small grey input frames; overlaps inference in
                                      file mode because it runs on the decode thread)
    apply(source, stylized, meta)     per frame, after inference; meta.context holds analyze()'s result;
                                      returns the (H, W, 3) uint8 frame to encode
    reset()                           at discontinuities (a live source reconnects)
    close()                           at the end, even after errors

analyze() and apply() may run on different threads, concurrently for different frames: keep input-side state
(previous grey frame, flow) and output-side state (previous output) separate. In live mode frames can be dropped
before inference; meta.gap counts the source frames skipped since the previous processed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from styleengine.core.errors import StyleEngineError


@dataclass
class StreamInfo:
    width: int
    height: int
    time_base: Fraction
    rate: Fraction | None
    live: bool = False


@dataclass
class FrameMeta:
    index: int                 # source frame index (0-based, counts dropped live frames too)
    seconds: float             # presentation time in seconds
    gap: int = 0               # source frames dropped right before this one (live mode)
    context: Any = None        # what analyze() returned for this frame


class FrameFilter:
    """Base class: identity. Override analyze()/apply(); keep all per-stream state on the instance."""

    def start(self, info: StreamInfo) -> None:
        pass

    def analyze(self, source: np.ndarray, meta: FrameMeta) -> Any:
        return None

    def apply(self, source: np.ndarray, stylized: np.ndarray, meta: FrameMeta) -> np.ndarray:
        return stylized

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


class ProcessFilter(FrameFilter):
    """Adapts any per-stream object with `process(source, stylized) -> frame` (and optionally reset/close)."""

    def __init__(self, inner: Any):
        self.inner = inner

    def apply(self, source: np.ndarray, stylized: np.ndarray, meta: FrameMeta) -> np.ndarray:
        return self.inner.process(source, stylized)

    def reset(self) -> None:
        if hasattr(self.inner, "reset"):
            self.inner.reset()

    def close(self) -> None:
        if hasattr(self.inner, "close"):
            self.inner.close()

    def stats(self) -> dict[str, Any] | None:
        st = getattr(self.inner, "stats", None)
        return st.to_dict() if hasattr(st, "to_dict") else None


def as_filter(obj: Any) -> FrameFilter:
    if isinstance(obj, FrameFilter):
        return obj
    if callable(getattr(obj, "process", None)):
        return ProcessFilter(obj)
    raise StyleEngineError(f"{type(obj).__name__} is not a FrameFilter (needs apply() or process(frame, stylized))")


TemporalArg = Any  # FrameFilter | object with process() | zero-argument factory | None/False


def resolve_filters(temporal: TemporalArg = None, filters: Sequence[Any] | None = None) -> list[FrameFilter]:
    """The filter chain for one stream: `filters` as given, then the temporal filter if one is given (the
    callers turn `temporal=True` into engine.temporal's stabilizer first)."""
    chain = [as_filter(f) for f in (filters or [])]
    if temporal is None or temporal is False:
        return chain
    if not isinstance(temporal, type) and (isinstance(temporal, FrameFilter)
                                           or callable(getattr(temporal, "process", None))):
        chain.append(as_filter(temporal))
    elif callable(temporal) and not isinstance(temporal, bool):  # a class or factory: one instance per stream
        chain.append(as_filter(temporal()))
    else:
        raise StyleEngineError(f"temporal must be a FrameFilter or a factory; got {type(temporal).__name__}")
    return chain
