"""`import styleengine.engine`, the backend registry and `styleengine --help` work with torch, onnxruntime,
TensorRT and pycuda all missing (a subprocess whose meta path refuses to import them)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKER = textwrap.dedent("""
    import sys
    BLOCKED = ("torch", "onnxruntime", "tensorrt", "pycuda", "onnx", "onnxscript", "cv2", "av")

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked for this test: {name}")
            return None

    sys.meta_path.insert(0, Block())
""")


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """`styleengine ARGS...` in a subprocess where the heavy packages cannot be imported."""
    return run(f"""
        sys.argv = ["styleengine", *{list(args)!r}]
        from styleengine.cli import main
        try:
            main()
        except SystemExit as e:
            assert e.code in (0, None), e.code
    """)


def test_engine_and_registry_import_without_heavy_packages():
    r = run("""
        import styleengine.engine
        from styleengine.engine import backend, images, loaders, postprocess, select, styles, stylizer, stylize_images
        from styleengine.core import bundle, shapes, plan_sidecar, hostinfo
        from styleengine.engine.backend import REGISTRY, get_backend
        for name in REGISTRY:
            cls = get_backend(name)           # imports the backend module itself
            ok, why = cls.available()
            print(name, ok, why)
        from styleengine import Stylizer
        import styleengine.engine.backend_tensorrt as bt
        assert callable(bt.choose_profile)
        assert not any(m.split(".")[0] in ("torch", "onnxruntime", "tensorrt", "pycuda") for m in sys.modules)
        print("OK")
    """)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == "OK"
    # find_spec is blocked too, so every backend reports itself unavailable with a reason
    assert any(line.startswith("torch False") for line in lines), r.stdout
    assert any(line.startswith("onnxruntime False") for line in lines), r.stdout


def test_cli_help_without_heavy_packages():
    r = run_cli("--help")
    assert r.returncode == 0, r.stderr
    assert "stylize" in r.stdout
    r = run_cli("stylize", "--help")
    assert r.returncode == 0, r.stderr
    assert "--preserve-color" in r.stdout and "--max-size" in r.stdout


def test_module_available_respects_blocked_imports():
    r = run("""
        from styleengine.engine.backend import module_available
        print(module_available("torch"), module_available("numpy"))
    """)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "True"]
