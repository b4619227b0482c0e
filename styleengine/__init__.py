"""styleengine: fast neural style transfer, from training to real-time TensorRT inference.

`from styleengine import Stylizer` is the Python API; it imports no torch unless a torch backend is used.
"""

from __future__ import annotations

from styleengine.core import __version__

__all__ = ["Stylizer", "__version__"]


def __getattr__(name: str):
    # Lazy so that `import styleengine` (and the CLI's --help) stays light.
    if name == "Stylizer":
        from styleengine.engine.stylizer import Stylizer

        return Stylizer
    raise AttributeError(name)
