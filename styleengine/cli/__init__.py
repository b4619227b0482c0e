"""The `styleengine` command line: a typer app whose commands are thin adapters over library functions.

Each command lives in a module `cmd_<name>.py` of this package exposing `register(app)`; they are discovered
here so that no shared file needs editing to add one. Heavy imports stay inside the command functions.
"""

from __future__ import annotations

import importlib
import pkgutil

import typer

app = typer.Typer(
    name="styleengine",
    help="Fast neural style transfer: train, build (ONNX/TensorRT), stylize images and video, benchmark.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_all() -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("cmd_"):
            importlib.import_module(f"{__name__}.{info.name}").register(app)


_register_all()


def main() -> None:
    app()
