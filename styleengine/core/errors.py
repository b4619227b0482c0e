"""User-facing errors: one line, no traceback; the CLI maps them to exit code 2."""


class StyleEngineError(Exception):
    """Bad input or an impossible request, explained in one line."""

    exit_code = 2


class Interrupted(StyleEngineError):
    """Ctrl-C / SIGTERM: partial work cleaned up or finalized; exit code 130."""

    exit_code = 130
