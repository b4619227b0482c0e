"""Shared CLI plumbing: one-line errors with exit codes, --version on every command, flags shown as flags,
deprecated option aliases, JSON output.

Conventions every command follows (tests/styleengine/test_cli_conventions.py checks them): an option string
means one thing everywhere (the same python parameter name in every command), `-h`/`--help` and `--version`
work on every command and group, booleans are flags (no `<bool>` in the help), renamed options stay one release
as hidden aliases that warn, and when stdout carries a document (--json, -o -, --stats -) nothing else goes
there.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from typing import Any, Callable

import typer
from typer.core import TyperCommand, TyperGroup

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


def _flags_shown_as_flags(params: list) -> list:
    """Boolean options (the help option, --x/--no-x pairs included) get an empty metavar: no `<bool>`."""
    for p in params:
        if getattr(p, "is_flag", False) and getattr(p, "metavar", None) is None:
            p.metavar = ""
    return params


class Command(TyperCommand):
    def get_params(self, ctx: Any) -> list:
        return _flags_shown_as_flags(super().get_params(ctx))


class Group(TyperGroup):
    def get_params(self, ctx: Any) -> list:
        return _flags_shown_as_flags(super().get_params(ctx))


def apply_conventions(app: typer.Typer) -> None:
    """Use Command/Group for every command and group registered under `app` (recursively)."""
    if app.info.cls in (None, TyperGroup):
        app.info.cls = Group
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = Command
    for group in app.registered_groups:
        if group.typer_instance is not None:
            apply_conventions(group.typer_instance)


def version_option() -> Any:
    """--version for a group's callback (commands get it from handle_errors)."""
    return typer.Option(False, "--version", metavar="", is_eager=True, callback=_print_version,
                        help="Show the version and exit.")


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
    version = inspect.Parameter("version", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=version_option())
    wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), version])  # type: ignore[attr-defined]
    return wrapper


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")
    sys.stdout.flush()
