"""Triton model repository: configs parse with Triton's own protobuf schema (tritonclient model_config_pb2)."""

from __future__ import annotations

import shutil

import pytest

from styleengine.core.bundle import load_bundle
from styleengine.core.errors import StyleEngineError
from styleengine.core.plan_sidecar import write_sidecar
from styleengine.export.triton import write_triton_repository


def parse_config(path):
    model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    from google.protobuf import text_format

    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


@pytest.fixture
def bundle_with_plans(tiny_bundle, tmp_path):
    """A copy of the tiny bundle with two (fake-content) plans for two GPU architectures."""
    b = tmp_path / "b.engine"
    shutil.copytree(tiny_bundle, b)
    (b / "plans").mkdir(exist_ok=True)
    for cc, name in (("8.0", "fp16-sm80.plan"), ("9.0", "fp16-sm90.plan")):
        plan = b / "plans" / name
        plan.write_bytes(b"plan-" + cc.encode())
        write_sidecar(plan, {"plan": name, "tensorrt_version": "10.13.3.9", "plan_bytes": plan.stat().st_size,
                             "gpu": {"name": "x", "compute_capability": cc}, "created_at": "2026-11-26T00:00:00",
                             "profiles": [{"min": [1, 64, 64], "opt": [4, 720, 1280], "max": [4, 1080, 1920]}]})
    return load_bundle(b)


def test_onnx_model_config(tiny_bundle, tmp_path):
    from tritonclient.grpc import model_config_pb2 as mc

    repo = tmp_path / "repo"
    res = write_triton_repository(load_bundle(tiny_bundle), repo, max_batch_size=4, instances=2)
    assert [m.name for m in res.models] == ["tiny_onnx"]
    assert any("no TensorRT plan" in n for n in res.notes)
    assert (repo / "tiny_onnx" / "1" / "model.onnx").read_bytes() == (tiny_bundle / "model_fp16.onnx").read_bytes()
    cfg = parse_config(repo / "tiny_onnx" / "config.pbtxt")
    assert cfg.name == "tiny_onnx" and cfg.platform == "onnxruntime_onnx" and cfg.max_batch_size == 4
    (inp,), (out,) = cfg.input, cfg.output
    assert (inp.name, inp.data_type, list(inp.dims)) == ("input", mc.TYPE_UINT8, [-1, -1, 3])
    assert (out.name, out.data_type, list(out.dims)) == ("output", mc.TYPE_UINT8, [-1, -1, 3])
    assert cfg.WhichOneof("scheduling_choice") == "dynamic_batching"
    assert list(cfg.dynamic_batching.preferred_batch_size) == [2, 4]
    (ig,) = cfg.instance_group
    assert ig.count == 2 and ig.kind == mc.ModelInstanceGroup.KIND_GPU
    (acc,) = cfg.optimization.execution_accelerators.gpu_execution_accelerator
    assert acc.name == "tensorrt" and acc.parameters["precision_mode"] == "FP16"
    assert acc.parameters["trt_profile_min_shapes"] == "input:1x64x64x3"
    assert acc.parameters["trt_profile_max_shapes"] == "input:4x1920x1920x3"  # batch up to max_batch_size
    assert list(cfg.model_warmup[0].inputs["input"].dims) == [720, 1280, 3]


def test_plan_model_config_picks_plan_per_compute_capability(bundle_with_plans, tmp_path):
    from tritonclient.grpc import model_config_pb2 as mc

    repo = tmp_path / "repo"
    res = write_triton_repository(bundle_with_plans, repo, name="Van Gogh!", max_batch_size=8)
    assert [m.name for m in res.models] == ["van_gogh_onnx", "van_gogh_trt"]
    cfg = parse_config(repo / "van_gogh_trt" / "config.pbtxt")
    assert cfg.platform == "tensorrt_plan"
    assert cfg.max_batch_size == 4  # limited by the plans' profile max batch
    assert dict(cfg.cc_model_filenames) == {"8.0": "fp16-sm80.plan", "9.0": "fp16-sm90.plan"}
    for f in cfg.cc_model_filenames.values():
        assert (repo / "van_gogh_trt" / "1" / f).is_file()
    assert list(cfg.input[0].dims) == [-1, -1, 3] and cfg.input[0].data_type == mc.TYPE_UINT8
    assert cfg.HasField("dynamic_batching") and cfg.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert any("TensorRT 10.13.3.9" in n for n in res.notes)


def test_repository_keeps_other_models_and_refuses_foreign_folders(tiny_bundle, tmp_path):
    repo = tmp_path / "repo"
    (repo / "other_model" / "1").mkdir(parents=True)
    (repo / "other_model" / "config.pbtxt").write_text('name: "other_model"\n')
    b = load_bundle(tiny_bundle)
    write_triton_repository(b, repo)
    assert (repo / "other_model" / "config.pbtxt").read_text() == 'name: "other_model"\n'
    with pytest.raises(StyleEngineError, match="use --overwrite"):
        write_triton_repository(b, repo)
    write_triton_repository(b, repo, overwrite=True, max_batch_size=2)  # ours: replaced
    assert "max_batch_size: 2" in (repo / "tiny_onnx" / "config.pbtxt").read_text()
    (repo / "theirs_onnx").mkdir()
    (repo / "theirs_onnx" / "config.pbtxt").write_text('name: "theirs_onnx"\n')
    with pytest.raises(StyleEngineError, match="not a Triton model written by styleengine"):
        write_triton_repository(b, repo, name="theirs", overwrite=True)
    assert (repo / "theirs_onnx" / "config.pbtxt").read_text() == 'name: "theirs_onnx"\n'
    with pytest.raises(StyleEngineError, match="max-batch-size"):
        write_triton_repository(b, tmp_path / "r2", max_batch_size=0)
    assert sorted(p.name for p in repo.iterdir()) == ["other_model", "theirs_onnx", "tiny_onnx"]
