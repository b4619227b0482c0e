"""Where things live: the user cache folder and the package's own assets (found the same way in editable and
wheel installs)."""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from .errors import StyleEngineError


def cache_root() -> Path:
    """$STYLEENGINE_CACHE, else $XDG_CACHE_HOME/styleengine, else ~/.cache/styleengine."""
    env = os.environ.get("STYLEENGINE_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "styleengine"


class CacheError(StyleEngineError):
    """The cache folder cannot be used. It concerns the whole run, never one input file: callers that report
    failures per file (stylize over a folder) let it abort the run with this one line."""


def cache_dir(*parts: str) -> Path:
    """A folder under the cache root, created on demand; an unusable cache is a one-line CacheError."""
    folder = cache_root().joinpath(*parts)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"cannot use the cache folder {folder} ({exc.strerror or exc}); set "
                         f"STYLEENGINE_CACHE to a writable folder") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise CacheError(f"cache folder {folder} is not writable; set STYLEENGINE_CACHE to a writable folder")
    return folder


def assets_dir(*parts: str) -> Path:
    """A path inside styleengine/assets (installed as package data)."""
    return Path(str(files("styleengine"))).joinpath("assets", *parts)
