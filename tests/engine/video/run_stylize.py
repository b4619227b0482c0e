"""Subprocess entry for the interrupt tests: `python -m tests.engine.video.run_stylize IN OUT DELAY`.

Runs the library through the CLI's own error handler (handle_errors) so exit codes are the CLI's.
"""

from __future__ import annotations

import sys

import typer

from styleengine.cli.common import handle_errors
from styleengine.engine.video.pipeline import stylize_video

from .helpers import InvertBackend, stylizer


def main() -> None:
    src, dst, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    run = handle_errors(lambda: stylize_video(src, dst, stylizer(InvertBackend(delay=delay))))
    try:
        run()
    except typer.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
