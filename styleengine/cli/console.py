"""Where the library's voice goes in the CLI: log records and progress reports, on stderr.

On a terminal progress is a rich bar (count, rate, ETA); otherwise (a pipe, a log file, CI) it is a plain line
at most every PLAIN_INTERVAL seconds and whenever the reporter attaches a status text, so a long job piped to a
file still shows it is alive.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from styleengine.core.log import log, set_progress_factory

PLAIN_INTERVAL = 10.0


class _Handler(logging.Handler):
    """Messages as they are (they are written for people), warnings and errors prefixed like the CLI's own."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            if record.levelno >= logging.ERROR and not msg.startswith("error:"):
                msg = f"error: {msg}"
            print(msg, file=sys.stderr, flush=True)
        except Exception:  # never let logging break a run
            self.handleError(record)


class PlainProgress:
    """Progress as plain stderr lines: 'build: 3/4 step (75%)  1.2 step/s  ETA 1 s  info'."""

    def __init__(self, description: str, total: float | None, unit: str, interval: float = PLAIN_INTERVAL):
        self.description, self.total, self.unit, self.interval = description, total, unit, interval
        self.completed = 0.0
        self.t0 = time.perf_counter()
        self.last = self.t0
        self.info: str | None = None
        self.shown: tuple | None = None  # what the last printed line said

    def line(self) -> str:
        el = time.perf_counter() - self.t0
        unit = f" {self.unit}" if self.unit else ""
        count = f"{self.completed:g}" + (f"/{self.total:g}" if self.total else "") + unit
        parts = [f"{self.description}: {count}"]
        if self.total:
            parts[0] += f" ({100 * self.completed / self.total:.0f}%)"
        if el > 0 and self.completed:
            rate = self.completed / el
            parts.append(f"{rate:.3g}{unit}/s")
            if self.total and self.completed < self.total:
                parts.append(f"ETA {(self.total - self.completed) / rate:.0f} s")
        if self.info:
            parts.append(self.info)
        return "  ".join(parts)

    def update(self, completed: float | None = None, *, advance: float = 0.0, total: float | None = None,
               info: str | None = None) -> None:
        if total is not None:
            self.total = total
        self.completed = self.completed + advance if completed is None else completed
        now = time.perf_counter()
        if info is not None:
            self.info = info
        if info is not None or now - self.last >= self.interval:
            self.show()

    def show(self) -> None:
        self.last = time.perf_counter()
        self.shown = (self.completed, self.total, self.info)
        print(self.line(), file=sys.stderr, flush=True)

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.completed and self.shown != (self.completed, self.total, self.info):
            self.show()


class RichProgress:
    """A rich progress bar on stderr (a spinner when the total is unknown)."""

    def __init__(self, description: str, total: float | None, unit: str):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns: list[Any] = [SpinnerColumn(), TextColumn(f"[bold]{description}"), BarColumn()]
        columns += [MofNCompleteColumn()] if total else [TextColumn("{task.completed:g}")]
        columns += [TextColumn(unit), TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}")]
        self.p = Progress(*columns, console=Console(stderr=True), transient=False)
        self.task = self.p.add_task(description, total=total, info="")

    def update(self, completed: float | None = None, *, advance: float = 0.0, total: float | None = None,
               info: str | None = None) -> None:
        kwargs: dict[str, Any] = {"advance": advance} if completed is None else {"completed": completed}
        if total is not None:
            kwargs["total"] = total
        if info is not None:
            kwargs["info"] = info
        self.p.update(self.task, **kwargs)

    def __enter__(self) -> "RichProgress":
        self.p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.p.stop()


def configure(*, quiet: bool = False) -> None:
    """Route the library's logger and progress reports to stderr (once per process)."""
    if not any(isinstance(h, _Handler) for h in log.handlers):
        log.addHandler(_Handler())
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False
    if quiet:
        set_progress_factory(None)
    elif sys.stderr.isatty():
        set_progress_factory(RichProgress)
    else:
        set_progress_factory(PlainProgress)
