"""The mixed-precision ONNX: FP16 convs/activations/adds, FP32 InstanceNormalization, uint8 I/O, deterministic."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from styleengine.core.errors import StyleEngineError
from styleengine.export.fp16 import convert_to_mixed_fp16, precision_summary


@pytest.fixture(scope="module")
def models(tiny_bundle):
    return onnx.load(str(tiny_bundle / "model_fp32.onnx")), onnx.load(str(tiny_bundle / "model_fp16.onnx"))


def test_precision_policy(models):
    _, m16 = models
    summary = precision_summary(m16)
    assert summary["Conv"] == {"fp16": 8, "fp32": 0}
    assert summary["InstanceNormalization"] == {"fp16": 0, "fp32": 7}
    for op in ("Relu", "Add", "Pad", "Resize", "Clip", "Round"):
        assert summary[op]["fp32"] == 0 and summary[op]["fp16"] > 0, op
    inits = {t.name: t.data_type for t in m16.graph.initializer}
    assert inits["net.conv1.conv2d.weight"] == TensorProto.FLOAT16 and inits["net.conv1.conv2d.bias"] == TensorProto.FLOAT16
    assert inits["net.in1.weight"] == TensorProto.FLOAT and inits["net.in1.bias"] == TensorProto.FLOAT  # same dtype as IN input
    resize = next(n for n in m16.graph.node if n.op_type == "Resize")
    assert inits[resize.input[2]] == TensorProto.FLOAT  # scales stay float32 (ONNX spec)


def test_io_is_uint8_and_input_cast_goes_straight_to_fp16(models):
    _, m16 = models
    assert m16.graph.input[0].type.tensor_type.elem_type == TensorProto.UINT8
    assert m16.graph.output[0].type.tensor_type.elem_type == TensorProto.UINT8
    (first,) = [n for n in m16.graph.node if "input" in n.input]
    assert first.op_type == "Cast" and onnx.helper.get_attribute_value(first.attribute[0]) == TensorProto.FLOAT16
    (last,) = [n for n in m16.graph.node if "output" in n.output]
    assert last.op_type == "Cast" and onnx.helper.get_attribute_value(last.attribute[0]) == TensorProto.UINT8


def test_conversion_is_deterministic(models):
    m32, m16 = models
    a, b = convert_to_mixed_fp16(m32), convert_to_mixed_fp16(m32)
    assert a.graph.SerializeToString() == b.graph.SerializeToString()
    assert [n.name for n in a.graph.node] == [n.name for n in m16.graph.node]


@pytest.mark.parametrize("shape", [(1, 33, 47, 3), (2, 16, 20, 3)])
def test_fp16_close_to_torch(tiny_bundle, tiny_checkpoint, shape):
    import onnxruntime as ort
    import torch

    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.export.onnx_export import uint8_model

    x = np.random.default_rng(5).integers(0, 256, shape, dtype=np.uint8)
    sess = ort.InferenceSession(str(tiny_bundle / "model_fp16.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x})[0].astype(int)
    with torch.no_grad():
        want = uint8_model(load_checkpoint(tiny_checkpoint))(torch.from_numpy(x)).numpy().astype(int)
    d = np.abs(got - want)
    assert d.max() <= 4 and d.mean() < 0.5


def test_weights_beyond_fp16_range_refused(models):
    from onnx import numpy_helper

    m32, _ = models
    bad = onnx.ModelProto()
    bad.CopyFrom(m32)
    for i, t in enumerate(bad.graph.initializer):
        if t.name == "net.conv1.conv2d.weight":
            arr = numpy_helper.to_array(t).copy()
            arr.flat[0] = 1e6
            bad.graph.initializer[i].CopyFrom(numpy_helper.from_array(arr, t.name))
    with pytest.raises(StyleEngineError, match="exceeds the FP16 range"):
        convert_to_mixed_fp16(bad)
