import json

from ..engine.test_import_without_heavy_deps import run_cli


def test_env_json_works_without_torch_onnxruntime_tensorrt_or_gpu():
    r = run_cli("env", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["python"] and info["cpu"]["logical_cores"] >= 1
    assert set(info["packages"]) >= {"torch", "onnxruntime", "tensorrt", "pycuda", "av (PyAV)"}
    for name in ("torch", "onnxruntime", "tensorrt"):
        assert info["backends"][name]["available"] is False and info["backends"][name]["reason"]
    assert isinstance(info["gpus"], list)


def test_env_text_lists_backends():
    r = run_cli("env")
    assert r.returncode == 0, r.stderr
    assert "Backends:" in r.stdout and "tensorrt" in r.stdout and "CPU:" in r.stdout
