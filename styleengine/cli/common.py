"""Shared CLI plumbing: one-line errors with exit codes, stderr console, JSON output."""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Callable

import typer

from styleengine.errors import StyleEngineError


def err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def handle_errors(fn: Callable) -> Callable:
    """Turn StyleEngineError into `error: ...` on stderr + its exit code (2), Ctrl-C into 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StyleEngineError as exc:
            err(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()
