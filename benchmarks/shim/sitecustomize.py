"""Import shim: `styleengine` from THIS copy of the repository, installed or not.

pyproject.toml installs the top-level folders train/, export/ and engine/ as styleengine.train, .export and
.engine (setuptools `package-dir`). An uninstalled copy has no such mapping: `python -c`/`python -m` from its
root even find its bare styleengine/ folder first, and `import styleengine.engine` fails. With this folder
on PYTHONPATH, Python imports this file at start-up (site.py's `sitecustomize` hook), in every process of
the run, subprocesses too, and it puts a finder FIRST on sys.meta_path that maps each package-dir entry to
this copy's folder. So the copy's code runs even where another styleengine is installed (editable or not).

    PYTHONPATH=benchmarks/shim python -m pytest ...     (or: python benchmarks/shim_run.py -m pytest ...)

With STYLEENGINE_SHIM_RECORD=FILE set, each process that imported styleengine appends one JSON line to FILE
at exit: where every styleengine module it loaded came from (so a run can prove which code ran).
A sitecustomize that this file shadows (one later on sys.path) still runs after it.
"""

from __future__ import annotations

import atexit
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
HERE = os.path.dirname(os.path.realpath(__file__))
FALLBACK_PACKAGE_DIRS = {"styleengine": "styleengine", "styleengine.train": "train",
                         "styleengine.export": "export", "styleengine.engine": "engine"}


def package_dirs(repo: str = REPO) -> dict[str, str]:
    """pyproject's [tool.setuptools] package-dir, as absolute folders of `repo`."""
    mapping = FALLBACK_PACKAGE_DIRS
    try:
        import tomllib  # Python >= 3.11

        with open(os.path.join(repo, "pyproject.toml"), "rb") as f:
            mapping = tomllib.load(f)["tool"]["setuptools"]["package-dir"] or mapping
    except Exception:  # Python 3.10 or no readable pyproject: the layout this repository has
        pass
    return {name: os.path.join(repo, folder) for name, folder in mapping.items()}


class RepoFinder(importlib.abc.MetaPathFinder):
    """Finds the package-dir packages in the repository; their submodules follow through __path__."""

    def __init__(self, dirs: dict[str, str]):
        self.dirs = dirs

    def find_spec(self, fullname, path=None, target=None):
        folder = self.dirs.get(fullname)
        if folder is None:
            return None
        init = os.path.join(folder, "__init__.py")
        if not os.path.isfile(init):
            return None
        return importlib.util.spec_from_file_location(fullname, init, submodule_search_locations=[folder])


def install(repo: str = REPO) -> RepoFinder:
    for f in list(sys.meta_path):
        if isinstance(f, RepoFinder) or type(f).__name__ == "RepoFinder":
            sys.meta_path.remove(f)
    finder = RepoFinder(package_dirs(repo))
    sys.meta_path.insert(0, finder)
    return finder


def loaded_from() -> dict[str, str]:
    """styleengine module name -> the file it was loaded from, for the modules this process imported."""
    out = {}
    for name, mod in list(sys.modules.items()):
        if name == "styleengine" or name.startswith("styleengine."):
            f = getattr(mod, "__file__", None)
            if f:
                out[name] = os.path.realpath(f)
    return out


def _record() -> None:
    target = os.environ.get("STYLEENGINE_SHIM_RECORD")
    files = loaded_from()
    if not target or not files:
        return
    repo = os.path.realpath(REPO) + os.sep
    line = {"pid": os.getpid(), "argv": sys.argv[:4], "repo": REPO, "modules": len(files),
            "outside_repo": sorted(f for f in files.values() if not f.startswith(repo)),
            "roots": sorted({os.path.relpath(f, REPO).split(os.sep)[0] for f in files.values() if f.startswith(repo)})}
    try:
        with open(target, "a") as fh:
            fh.write(json.dumps(line) + "\n")
    except OSError:
        pass


def _chain() -> None:
    """Run the sitecustomize this file shadows, if any (an image's own start-up hook)."""
    rest = [p for p in sys.path if os.path.realpath(p or os.curdir) != HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None or os.path.realpath(spec.origin or "") == os.path.realpath(__file__):
        return
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # as site.py does: a broken hook is reported, not fatal
        print(f"Error in the shadowed sitecustomize {spec.origin}: {exc!r}", file=sys.stderr)


install()
atexit.register(_record)
_chain()
