"""Shared CLI plumbing: one-line errors with exit codes, --version on every command, flags shown as flags,
deprecated option aliases, JSON output."""

from __future__ import annotations

import functools
import inspect
import json
import sys
from typing import Any, Callable

import typer

from styleengine.core import __version__
from styleengine.core.errors import StyleEngineError


def err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def flag(help: str, *names: str) -> Any:
    """A boolean option shown as a flag (no `<bool>` in the help)."""
    return typer.Option(False, *names, metavar="", help=help)


def hidden(default: Any, *names: str, is_flag: bool = False) -> Any:
    """An old option name kept for one release (undocumented; the command warns when it is used)."""
    return typer.Option(default, *names, hidden=True, **({"metavar": ""} if is_flag else {}))


def deprecated(old: str, new: str) -> None:
    err(f"warning: {old} is deprecated and will be removed in the next release; use {new}")


def _print_version(ctx: Any, _param: Any, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        print(f"styleengine {__version__}")
        ctx.exit()


def handle_errors(fn: Callable) -> Callable:
    """Every command: StyleEngineError -> `error: ...` on stderr + its exit code (2); OSError (a file the
    library could not write) -> one line and 2; Ctrl-C -> 130. Never a traceback for these. Also adds
    --version to the command."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs.pop("version", None)
        try:
            return fn(*args, **kwargs)
        except StyleEngineError as exc:
            err(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            err(f"error: {where}{exc.strerror or exc}")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err("interrupted")
            raise typer.Exit(130) from None

    sig = inspect.signature(fn)
    version = inspect.Parameter("version", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
        False, "--version", metavar="", is_eager=True, callback=_print_version, help="Show the version and exit."))
    wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), version])  # type: ignore[attr-defined]
    return wrapper


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()
