"""Plan sidecars and the pre-deserialization compatibility check (pure Python, no TensorRT)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from styleengine.core.fsutil import sha256_file
from styleengine.core.plan_sidecar import (
    PLAN_FORMAT,
    RuntimeInfo,
    check_plan,
    check_sidecar,
    find_compatible_plan,
    profiles_cover,
    read_sidecar,
    write_sidecar,
)

H100 = RuntimeInfo("10.13.3.9", "NVIDIA H100 80GB HBM3", "9.0")


def _plan(tmp_path, name="fp16-sm90.plan", data=b"PLANBYTES", **over):
    plan = tmp_path / name
    plan.write_bytes(data)
    sc = {"plan": plan.name, "plan_sha256": sha256_file(plan), "plan_bytes": plan.stat().st_size,
          "tensorrt_version": "10.13.3.9", "gpu": {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"},
          "precision": "fp16", "refit": False, "source_onnx_sha256": "abc",
          "profiles": [{"min": [1, 64, 64], "opt": [1, 1080, 1920], "max": [1, 1920, 1920]}]}
    sc.update(over)
    write_sidecar(plan, sc)
    return plan


def test_sidecar_roundtrip_and_ok(tmp_path):
    plan = _plan(tmp_path)
    data = read_sidecar(plan.with_suffix(".json"))
    assert data["format"] == PLAN_FORMAT and data["gpu"]["compute_capability"] == "9.0"
    res = check_plan(plan, H100, onnx_sha256="abc")
    assert res.ok and res.reason == ""


def test_other_tensorrt_build_rejected_before_loading(tmp_path):
    plan = _plan(tmp_path)
    res = check_plan(plan, RuntimeInfo("11.1.0.106", "NVIDIA H100 80GB HBM3", "9.0"))
    assert not res.ok and "TensorRT 10.13.3.9" in res.reason and "11.1.0.106" in res.reason
    vc = _plan(tmp_path, "vc.plan", version_compatible=True)
    assert check_plan(vc, RuntimeInfo("10.14.1", "NVIDIA H100 80GB HBM3", "9.0")).ok


def test_other_gpu_architecture_rejected_same_arch_warns(tmp_path):
    plan = _plan(tmp_path)
    res = check_plan(plan, RuntimeInfo("10.13.3.9", "NVIDIA A100-SXM4-80GB", "8.0"))
    assert not res.ok and "sm 9.0" in res.reason and "A100" in res.reason
    same_arch = check_plan(plan, RuntimeInfo("10.13.3.9", "NVIDIA H100 PCIe", "9.0"))
    assert same_arch.ok and "may be slower" in same_arch.reason
    hc = _plan(tmp_path, "hc.plan", hardware_compatibility="ampere_plus")
    assert check_plan(hc, RuntimeInfo("10.13.3.9", "NVIDIA A100-SXM4-80GB", "8.0")).ok
    assert not check_plan(hc, RuntimeInfo("10.13.3.9", "Tesla T4", "7.5")).ok


def test_stale_corrupt_missing(tmp_path):
    plan = _plan(tmp_path)
    assert "different ONNX" in check_plan(plan, H100, onnx_sha256="other").reason
    plan.write_bytes(b"PLANBYTEX")  # same size, other content
    assert "hash" in check_plan(plan, H100).reason
    plan.write_bytes(b"PLAN")
    assert "truncated" in check_plan(plan, H100).reason
    plan.unlink()
    assert "missing" in check_plan(plan, H100).reason
    orphan = tmp_path / "orphan.plan"
    orphan.write_bytes(b"x")
    assert "no readable sidecar" in check_plan(orphan, H100).reason
    (tmp_path / "bad.json").write_text("{not json")
    assert read_sidecar(tmp_path / "bad.json") is None
    assert not check_sidecar({"format": "other/9"}, H100).ok


def test_find_compatible_plan_skips_and_explains(tmp_path):
    _plan(tmp_path, "a-old.plan", tensorrt_version="10.0.1")
    good = _plan(tmp_path, "b-good.plan")
    plan, rejected = find_compatible_plan(tmp_path, H100, onnx_sha256="abc", height=1080, width=1920)
    assert plan == good and len(rejected) == 1 and "a-old.plan" in rejected[0]
    plan, rejected = find_compatible_plan(tmp_path, H100, onnx_sha256="abc", height=2160, width=3840)
    assert plan is None and any("no profile covers" in r for r in rejected)
    assert find_compatible_plan(tmp_path / "none", H100) == (None, [])


def test_profiles_cover():
    profs = [{"min": [1, 64, 64], "opt": [1, 720, 1280], "max": [2, 1080, 1920]}]
    assert profiles_cover(profs, 2, 1080, 1920) and not profiles_cover(profs, 3, 64, 64)
    assert not profiles_cover([{"bogus": 1}], 1, 64, 64)


def test_current_gpu_asks_the_cuda_driver_first(monkeypatch):
    import styleengine.core.plan_sidecar as ps

    asked = []
    monkeypatch.setattr(ps, "cuda_device", lambda index=0: asked.append(index) or ("NVIDIA L4", "8.9"))
    monkeypatch.setattr(ps, "gpu_info", lambda: pytest.fail("nvidia-smi asked although the driver answered"))
    assert ps.current_gpu(1) == ("NVIDIA L4", "8.9") and asked == [1]


def test_current_gpu_falls_back_to_nvidia_smi_through_cuda_visible_devices(monkeypatch):
    import styleengine.core.plan_sidecar as ps

    rows = [{"index": "0", "name": "Tesla T4", "compute_capability": "7.5"},
            {"index": "2", "name": "NVIDIA A10", "compute_capability": "8.6"}]
    monkeypatch.setattr(ps, "cuda_device", lambda index=0: None)
    monkeypatch.setattr(ps, "gpu_info", lambda: rows)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert ps.current_gpu(0) == ("Tesla T4", "7.5") and ps.current_gpu(1) is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")  # CUDA's device 0 is nvidia-smi's GPU 2
    assert ps.current_gpu(0) == ("NVIDIA A10", "8.6") and ps.current_gpu(1) == ("Tesla T4", "7.5")
    assert ps.current_gpu(2) is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1234abcd")  # a UUID: only resolvable with one GPU
    assert ps.current_gpu(0) is None
    monkeypatch.setattr(ps, "gpu_info", lambda: rows[:1])
    assert ps.current_gpu(0) == ("Tesla T4", "7.5")


def test_current_runtime_identifies_the_asked_device(monkeypatch):
    import types

    import styleengine.core.plan_sidecar as ps

    monkeypatch.setattr(ps, "current_gpu", lambda device=0: {1: ("NVIDIA A100-SXM4-80GB", "8.0")}.get(device))
    trt = types.SimpleNamespace(__version__="10.13.3.9")
    assert ps.current_runtime(trt, 1) == RuntimeInfo("10.13.3.9", "NVIDIA A100-SXM4-80GB", "8.0")
    assert ps.current_runtime(trt, 0) is None


def test_importable_without_torch_or_tensorrt():
    code = ("import sys; import styleengine.core.plan_sidecar as m; "
            "assert 'torch' not in sys.modules and 'tensorrt' not in sys.modules and 'onnx' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
