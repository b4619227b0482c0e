"""The library's one voice: the `styleengine` logger, and progress reports the front end renders.

Library code never prints. Messages go to `log` (a standard logging.Logger, silent until someone configures
logging: the CLI does, a Python user may). Long steps report progress through `progress()`, which does nothing
until a front end installs a renderer with `set_progress_factory` (the CLI draws a bar on a terminal and
prints plain lines otherwise):

    with progress("build", total=4, unit="step") as p:
        ...
        p.update(advance=1, info="fp16 ONNX")
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Protocol

log = logging.getLogger("styleengine")


class Progress(Protocol):
    def update(self, completed: float | None = None, *, advance: float = 0.0, total: float | None = None,
               info: str | None = None) -> None:
        """Set the count (or advance it), optionally change the total, attach a short status text."""

    def __enter__(self) -> "Progress": ...

    def __exit__(self, *exc: object) -> None: ...


class NullProgress:
    """What progress() hands out when no front end listens."""

    def update(self, completed: float | None = None, *, advance: float = 0.0, total: float | None = None,
               info: str | None = None) -> None:
        return None

    def __enter__(self) -> "NullProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        return None


ProgressFactory = Callable[[str, "float | None", str], Progress]
_factory: ProgressFactory | None = None
_lock = threading.Lock()


def set_progress_factory(factory: ProgressFactory | None) -> ProgressFactory | None:
    """Install the renderer for progress() (None: silent). Returns the previous one."""
    global _factory
    with _lock:
        old, _factory = _factory, factory
    return old


def progress(description: str, total: float | None = None, *, unit: str = "") -> Progress:
    """A progress report for one long step; `total` None when the length is unknown."""
    factory = _factory
    return factory(description, total, unit) if factory is not None else NullProgress()
