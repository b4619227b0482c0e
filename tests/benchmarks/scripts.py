"""Loading a benchmarks/ script as a module (they are scripts, not a package, and import their neighbours)."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@contextlib.contextmanager
def script(name: str) -> Iterator[ModuleType]:
    """benchmarks/NAME.py as a module, with benchmarks/ on the import path while it is open (for scripts that
    import their neighbours when called)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))


def load_script(name: str) -> ModuleType:
    """benchmarks/NAME.py as a module; its imports of scripts beside it resolve while it loads."""
    with script(name) as module:
        return module
