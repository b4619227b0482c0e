"""The `styleengine` command line: a typer app whose commands are thin adapters over library functions.

Each command lives in a module `cmd_<name>.py` of this package exposing `register(app)`; they are discovered
here so that no shared file needs editing to add one. The library speaks through its logger and progress hooks;
console.configure() sends both to stderr before any command runs.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

from . import console
from .common import Group, apply_conventions, flag, version_option

app = typer.Typer(
    cls=Group,
    name="styleengine",
    help="Fast neural style transfer: train, build (ONNX/TensorRT), stylize images and video, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _main(
    version: bool = version_option(),
    quiet: bool = flag("Only warnings and errors on stderr (no progress).", "--quiet", "-q"),
) -> None:
    console.configure(quiet=quiet)


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"{__name__}.{info.name}").register(app)
    apply_conventions(app)


_register_all()


def main() -> None:
    app()
