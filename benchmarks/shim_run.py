"""Run Python with `styleengine` imported from this copy of the repository (installed or not).

    python benchmarks/shim_run.py -m pytest -q -m "gpu or tensorrt"
    python benchmarks/shim_run.py -m styleengine bench johnson --device cuda
    python benchmarks/shim_run.py benchmarks/gpu_stream.py --out $OUT/x.json
    python benchmarks/shim_run.py -c "import styleengine.engine; print(styleengine.engine.__file__)"

Puts benchmarks/shim/ first on PYTHONPATH (its sitecustomize maps styleengine, styleengine.train/.export/.engine
to this copy's folders, in this process's children too) and replaces itself with `python ARGS...`.
benchmarks/gpu.sh sets the same PYTHONPATH once for all its steps.
"""

from __future__ import annotations

import os
import sys

SHIM = os.path.join(os.path.dirname(os.path.realpath(__file__)), "shim")


def shim_env(env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if env is None else env)
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.realpath(p) != SHIM]
    env["PYTHONPATH"] = os.pathsep.join([SHIM, *rest])
    return env


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv else 2)
    os.execve(sys.executable, [sys.executable, *argv], shim_env())


if __name__ == "__main__":
    main(sys.argv[1:])
