"""FP32 ONNX -> mixed-precision ONNX: convs, activations, pads, resizes and adds in FP16; InstanceNormalization in FP32.

Why our own pass rather than a generic caster: the result must be exactly what strongly typed TensorRT (10.12+
opt-in, always in 11.x) wants, and identical in structure and names for every style of one preset (refit):
  * the uint8 input Cast is retargeted to FLOAT16 (no FP32 island at the input; generic casters leave
    Cast(to=FLOAT) in place and some wire FP32 straight into FP16 convs, which TensorRT rejects);
  * InstanceNormalization gets Cast(fp16->fp32) before and Cast(fp32->fp16) after, with its scale/bias left
    FP32: its mean/variance reductions over 0-255-scale activations can overflow FP16 (x^2 > 65504 for
    |x| > 256), and TensorRT's parser needs input, scale and bias of one dtype;
  * Resize's scales stay FP32 (the ONNX spec requires it); integer shape arithmetic is untouched;
  * names are derived from the FP32 graph's names only, never from data (no data-driven splits).
"""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any

from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_path

from .onnx_export import read_metadata, set_metadata

# Ops computed in FP16 (all their float inputs/outputs become FP16, except the positions in _KEEP_FP32_INPUTS).
FP16_OPS = frozenset({"Conv", "Relu", "Add", "Sub", "Mul", "Pad", "Resize", "Transpose", "Slice", "Clip", "Round",
                      "Reshape", "Concat", "Identity", "Squeeze", "Unsqueeze", "Max", "Min"})
# Ops kept in FP32: reductions whose statistics overflow FP16 on 0-255-scale activations.
FP32_OPS = frozenset({"InstanceNormalization", "BatchNormalization", "LayerNormalization", "GroupNormalization",
                      "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceL2", "Pow", "Sqrt", "Softmax"})
# Ops that only read a tensor's shape: any dtype is fine, nothing to cast.
SHAPE_OPS = frozenset({"Shape", "Size"})
# Input positions that carry parameters, not data, and must stay FP32 (Resize roi/scales).
_KEEP_FP32_INPUTS = {"Resize": {1, 2}}
_FP16_MAX = 65504.0


def _fp32_positions(node) -> set[int]:
    return _KEEP_FP32_INPUTS.get(node.op_type, set())


def convert_to_mixed_fp16(model):
    """Return a new onnx.ModelProto; see the module docstring for the rules."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    g = model.graph
    dtype: dict[str, int] = {}
    for vi in list(g.input) + list(g.value_info) + list(g.output):
        dtype[vi.name] = vi.type.tensor_type.elem_type
    inits = {t.name: t for t in g.initializer}
    for name, t in inits.items():
        dtype[name] = t.data_type

    # Which float32 initializers are read at an FP16 position, which at an FP32 position.
    uses: dict[str, set[str]] = collections.defaultdict(set)
    for n in g.node:
        for i, name in enumerate(n.input):
            if name in inits and inits[name].data_type == FLOAT:
                uses[name].add("fp16" if n.op_type in FP16_OPS and i not in _fp32_positions(n) else "fp32")

    new_inits: list[Any] = []
    half_init: dict[str, str] = {}
    for name, t in inits.items():
        if "fp16" not in uses.get(name, ()):
            new_inits.append(t)
            continue
        arr = numpy_helper.to_array(t)
        if np.abs(arr).max(initial=0.0) > _FP16_MAX:
            raise StyleEngineError(f"weight {name} exceeds the FP16 range (|w| max {np.abs(arr).max():.3g}); cannot build FP16")
        hname = name if uses[name] == {"fp16"} else f"{name}__fp16"
        new_inits.append(numpy_helper.from_array(arr.astype(np.float16), hname))
        if hname != name:
            new_inits.append(t)
        half_init[name] = hname
        dtype[hname] = HALF

    nodes: list[Any] = []
    casts: dict[tuple[str, int], str] = {}

    def cast(name: str, to: int) -> str:
        """Name of `name` converted to dtype `to` (one Cast node per tensor and target)."""
        if dtype.get(name) == to:
            return name
        key = (name, to)
        if key not in casts:
            out = f"{name}__{'fp16' if to == HALF else 'fp32'}"
            nodes.append(helper.make_node("Cast", [name], [out], name=f"{out}_cast", to=to))
            dtype[out] = to
            casts[key] = out
        return casts[key]

    for n in g.node:
        n2 = onnx.NodeProto()
        n2.CopyFrom(n)
        op = n.op_type
        if op == "Cast":
            to = next(a.i for a in n.attribute if a.name == "to")
            if to == FLOAT and dtype.get(n.input[0]) in (TensorProto.UINT8, HALF):
                # The input-side uint8->float Cast becomes uint8->fp16 directly.
                for a in n2.attribute:
                    if a.name == "to":
                        a.i = HALF
                to = HALF
            dtype[n.output[0]] = to
            nodes.append(n2)
        elif op in SHAPE_OPS:
            nodes.append(n2)
        elif op in FP16_OPS:
            for i, name in enumerate(n.input):
                if not name:
                    continue
                if i in _fp32_positions(n):
                    n2.input[i] = cast(name, FLOAT) if dtype.get(name) == HALF else name
                elif name in half_init:
                    n2.input[i] = half_init[name]
                elif dtype.get(name) == FLOAT:
                    n2.input[i] = cast(name, HALF)
            for o in n.output:
                if dtype.get(o) == FLOAT:
                    dtype[o] = HALF
            nodes.append(n2)
        else:
            # FP32_OPS and anything unknown: compute in FP32, hand FP16 back to FP16 consumers.
            for i, name in enumerate(n.input):
                if name and dtype.get(name) == HALF:
                    n2.input[i] = cast(name, FLOAT)
            float_outs = [o for o in n.output if dtype.get(o) == FLOAT]
            for j, o in enumerate(n.output):
                if o in float_outs:
                    n2.output[j] = f"{o}__fp32"
            nodes.append(n2)
            for o in float_outs:
                nodes.append(helper.make_node("Cast", [f"{o}__fp32"], [o], name=f"{o}_cast", to=HALF))
                dtype[o] = HALF

    for o in g.output:
        if dtype.get(o.name) not in (o.type.tensor_type.elem_type,):
            raise StyleEngineError(f"FP16 conversion changed the type of output {o.name}")
    del g.node[:]
    g.node.extend(nodes)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    del g.value_info[:]
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def precision_summary(model) -> dict[str, dict[str, int]]:
    """{op_type: {"fp16": n, "fp32": n}} by the dtype of each node's first float input (for reports/tests)."""
    import onnx
    from onnx import TensorProto

    model = onnx.shape_inference.infer_shapes(model)
    dt = {vi.name: vi.type.tensor_type.elem_type for vi in list(model.graph.input) + list(model.graph.value_info)}
    dt.update({t.name: t.data_type for t in model.graph.initializer})
    out: dict[str, dict[str, int]] = collections.defaultdict(lambda: {"fp16": 0, "fp32": 0})
    for n in model.graph.node:
        if n.op_type == "Cast" or not n.input:
            continue
        t = dt.get(n.input[0])
        if t == TensorProto.FLOAT16:
            out[n.op_type]["fp16"] += 1
        elif t == TensorProto.FLOAT:
            out[n.op_type]["fp32"] += 1
    return {k: dict(v) for k, v in out.items()}


def export_fp16(fp32_onnx: str | os.PathLike, path: str | os.PathLike, *, overwrite: bool = True,
                metadata: dict[str, Any] | None = None) -> Path:
    """Convert the FP32 bundle ONNX at `fp32_onnx` to the mixed-precision model at `path` (atomic write)."""
    import onnx

    src = onnx.load(str(fp32_onnx))
    meta = dict(metadata) if metadata is not None else read_metadata(src)
    half = convert_to_mixed_fp16(src)
    meta["precision"] = "fp16"
    meta["fp16_policy"] = "convs/activations/pads/resizes/adds FP16; InstanceNormalization FP32; uint8 I/O"
    set_metadata(half, meta)
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        onnx.save(half, str(tmp))
    return path
