"""The exported FP32 graph: uint8 NHWC I/O, dynamic dims, InstanceNormalization kept, metadata, parity."""

from __future__ import annotations

import collections

import numpy as np
import pytest


@pytest.fixture(scope="module")
def fp32_model(tiny_bundle):
    import onnx

    return onnx.load(str(tiny_bundle / "model_fp32.onnx"))


def test_graph_io_contract(fp32_model):
    import onnx

    onnx.checker.check_model(fp32_model, full_check=True)
    (inp,), (out,) = fp32_model.graph.input, fp32_model.graph.output
    for vi in (inp, out):
        t = vi.type.tensor_type
        assert t.elem_type == onnx.TensorProto.UINT8
        dims = [d.dim_param or d.dim_value for d in t.shape.dim]
        assert dims == ["batch", "height", "width", 3]
    assert (inp.name, out.name) == ("input", "output")
    nodes = fp32_model.graph.node
    readers = [n.op_type for n in nodes if "input" in n.input]
    assert readers == ["Cast"]  # TensorRT: only a Cast may consume a uint8 network input
    assert [n.op_type for n in nodes if "output" in n.output] == ["Cast"]
    ops = [n.op_type for n in nodes]
    assert ops.index("Clip") < ops.index("Round") < len(ops) - 1  # clamp + round before the final Cast
    assert 17 <= max(o.version for o in fp32_model.opset_import if o.domain in ("", "ai.onnx")) <= 20


def test_instance_norm_kept_and_op_counts(fp32_model):
    counts = collections.Counter(n.op_type for n in fp32_model.graph.node)
    # tiny arch: 3 down convs + 2*1 residual convs + 3 up convs
    assert counts["Conv"] == 8 and counts["InstanceNormalization"] == 7
    assert counts["BatchNormalization"] == 0 and counts["Resize"] == 2


def test_metadata_props_carry_manifest(fp32_model, tiny_checkpoint):
    from styleengine.core.fsutil import sha256_file
    from styleengine.export.onnx_export import read_metadata

    meta = read_metadata(fp32_model)
    assert meta["style"]["name"] == "tiny" and meta["precision"] == "fp32"
    assert meta["source_sha256"] == sha256_file(tiny_checkpoint)
    assert meta["io"]["output"]["layout"] == "NHWC"
    props = {p.key: p.value for p in fp32_model.metadata_props}
    assert props["styleengine.style"] == "tiny"


@pytest.mark.parametrize("shape", [(1, 37, 53, 3), (3, 8, 8, 3), (1, 9, 130, 3), (2, 64, 64, 3)])
def test_fp32_parity_with_torch(tiny_bundle, tiny_checkpoint, shape):
    import onnxruntime as ort
    import torch

    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.export.onnx_export import uint8_model

    x = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    sess = ort.InferenceSession(str(tiny_bundle / "model_fp32.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0]
    with torch.no_grad():
        want = uint8_model(load_checkpoint(tiny_checkpoint))(torch.from_numpy(x)).numpy()
    assert got.shape == x.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert want.std() > 5  # the tiny net does something non-trivial to the picture


def test_simplified_only_when_outputs_hold(fp32_model):
    from styleengine.core.network import ArchConfig
    from styleengine.export.onnx_export import read_metadata, simplify

    meta = read_metadata(fp32_model)["simplify"]
    assert meta["tool"].startswith("onnxslim") and meta["kept"] is True
    arch = ArchConfig("custom", (4, 8, 16), 1)
    # A graph the checks reject after "simplification" is never kept: feed one with a wrong architecture.
    model, info = simplify(fp32_model, ArchConfig("custom", (4, 8, 16), 2))
    assert model is fp32_model and info["kept"] is False and "Conv" in info["reason"]
    model, info = simplify(fp32_model, arch)
    assert info["kept"] is True and info["nodes_after"] <= info["nodes_before"]


def test_torchscript_fallback_when_dynamo_fails(tiny_checkpoint, tmp_path, monkeypatch, caplog):
    import onnxruntime as ort
    import torch

    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.export import onnx_export

    def broken(*a, **k):
        raise RuntimeError("simulated dynamo failure")

    monkeypatch.setattr(onnx_export, "_export_dynamo", broken)
    path = onnx_export.export_onnx(tiny_checkpoint, tmp_path / "ts.onnx")
    assert onnx_export.read_metadata(path)["exporter"] == "torchscript"
    assert "falling back to the TorchScript exporter" in caplog.text
    x = np.random.default_rng(2).integers(0, 256, (2, 23, 41, 3), dtype=np.uint8)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    with torch.no_grad():
        want = onnx_export.uint8_model(load_checkpoint(tiny_checkpoint))(torch.from_numpy(x)).numpy()
    assert np.abs(got.astype(int) - want).max() <= 1


def test_bad_export_options(tiny_checkpoint, tmp_path):
    from styleengine.core.errors import StyleEngineError
    from styleengine.export.onnx_export import export_onnx

    with pytest.raises(StyleEngineError, match="opset 13 not supported"):
        export_onnx(tiny_checkpoint, tmp_path / "a.onnx", opset=13)
    with pytest.raises(StyleEngineError, match="unknown exporter"):
        export_onnx(tiny_checkpoint, tmp_path / "a.onnx", exporter="magic")
    assert list(tmp_path.iterdir()) == []
