"""`styleengine env`: versions, CPU, GPUs and usable backends."""

from __future__ import annotations

import typer

from .common import flag, handle_errors, print_json


def register(app: typer.Typer) -> None:
    @app.command("env")
    @handle_errors
    def env(json: bool = flag("Print machine-readable JSON.", "--json")) -> None:
        """Show versions of Python, torch, ONNX Runtime, TensorRT, pycuda, PyAV; the CPU; GPUs; usable backends."""
        from styleengine.engine.environment import environment

        info = environment()
        if json:
            print_json(info)
            return
        print(f"styleengine {info['styleengine']}  python {info['python']}  {info['platform']}")
        for name, version in info["packages"].items():
            print(f"  {name:<14} {version or 'not installed'}")
        cpu = info["cpu"]
        print(f"CPU: {cpu['name']} ({cpu['usable_cores']} usable of {cpu['logical_cores']} logical cores; "
              f"ISA {' '.join(cpu['isa']) or 'baseline'})")
        if info["gpus"]:
            for g in info["gpus"]:
                print(f"GPU {g['index']}: {g['name']} (sm {g['compute_capability']}, {g['memory_mib']} MiB, driver {g['driver']})")
        else:
            print("GPU: none found (no nvidia-smi or no NVIDIA GPU)")
        print("Backends:")
        for name, st in info["backends"].items():
            print(f"  {name:<12} {'yes' if st['available'] else 'no'}  {st['reason']}")
