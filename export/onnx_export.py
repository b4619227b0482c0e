"""Checkpoint -> the deployable FP32 ONNX graph: uint8 RGB NHWC in, uint8 RGB NHWC out, dynamic batch/H/W.

All pixel handling lives inside the graph so every backend behaves the same and hosts only copy bytes:
    input (N,H,W,3) uint8 -> Cast(float) -> Transpose(NCHW) -> TransformerNet -> Clip(0,255) -> Round
    -> Transpose(NHWC) -> Cast(uint8) -> output
The Casts touch the graph I/O directly because TensorRT allows uint8 only on network inputs/outputs (no
Transpose of uint8), and Clip+Round come before the final Cast because float->uint8 truncates.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from styleengine.core.bundle import INPUT_NAME, OUTPUT_NAME
from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_path
from styleengine.core.log import log

from .manifest import model_metadata

DEFAULT_OPSET = 20  # 17-20 is what TensorRT 10.x/11.x and ONNX Runtime all accept
EXPORTERS = ("dynamo", "torchscript")
METADATA_KEY = "styleengine.manifest"
# Size of the dummy input used to trace (any size works; the graph has dynamic batch/H/W).
_TRACE_SHAPE = (1, 64, 64, 3)


def _uint8_wrapper(net):
    import torch
    from torch import nn

    class UInt8RGBNHWC(nn.Module):
        def __init__(self, net: nn.Module):
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.net(x.float().permute(0, 3, 1, 2))
            return y.clamp(0.0, 255.0).round().permute(0, 2, 3, 1).to(torch.uint8)

    return UInt8RGBNHWC(net).eval()


def uint8_model(ckpt):
    """The torch module whose behaviour the ONNX graph reproduces (the parity reference)."""
    return _uint8_wrapper(ckpt.build_model("cpu"))


def expected_op_counts(arch) -> dict[str, int]:
    """Ops the TransformerNet must export to; used to catch exporter decompositions (e.g. IN -> BatchNorm)."""
    convs = 3 + 2 * arch.blocks + 3
    return {"Conv": convs, "InstanceNormalization": convs - 1, "Resize": 2, "BatchNormalization": 0}


def check_graph(model, arch) -> None:
    """Structural checks on an exported (or converted) graph; raises StyleEngineError."""
    import onnx

    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise StyleEngineError(f"exported ONNX failed onnx.checker: {str(exc).splitlines()[0]}") from None
    counts = collections.Counter(n.op_type for n in model.graph.node)
    for op, want in expected_op_counts(arch).items():
        if counts.get(op, 0) != want:
            raise StyleEngineError(f"exported ONNX has {counts.get(op, 0)} {op} nodes, expected {want}")
    pads = [n for n in model.graph.node if n.op_type == "Pad"]
    if any(onnx.helper.get_attribute_value(a) != b"reflect" for n in pads for a in n.attribute if a.name == "mode"):
        raise StyleEngineError("exported ONNX has a non-reflect Pad")
    (inp,), (out,) = model.graph.input, model.graph.output
    if inp.name != INPUT_NAME or out.name != OUTPUT_NAME:
        raise StyleEngineError(f"exported ONNX I/O names are {inp.name!r}/{out.name!r}, expected {INPUT_NAME!r}/{OUTPUT_NAME!r}")
    for vi in (inp, out):
        if vi.type.tensor_type.elem_type != onnx.TensorProto.UINT8:
            raise StyleEngineError(f"exported ONNX {vi.name} is not uint8")
    first = [n for n in model.graph.node if INPUT_NAME in n.input and n.op_type != "Shape"]
    last = [n for n in model.graph.node if OUTPUT_NAME in n.output]
    if [n.op_type for n in first] != ["Cast"] or [n.op_type for n in last] != ["Cast"]:
        raise StyleEngineError("exported ONNX must read its input and write its output through one Cast each")


def _normalize_io(model) -> None:
    """Name the output dims like the input's and keep Shape ops off the uint8 input.

    The exporter writes the output's H/W as symbolic expressions of the padding; they equal the input's.
    TensorRT only lets a Cast consume a uint8 network input, so Shape nodes read the Cast's output instead
    (same shape).
    """
    inp, out = model.graph.input[0], model.graph.output[0]
    for d_in, d_out in zip(inp.type.tensor_type.shape.dim, out.type.tensor_type.shape.dim):
        d_out.CopyFrom(d_in)
    for n in (inp, out):
        del n.metadata_props[:]
    nodes = model.graph.node
    i = next(i for i, n in enumerate(nodes) if n.op_type == "Cast" and INPUT_NAME in n.input)
    cast = onnx_node_copy(nodes[i])
    del nodes[i]
    nodes.insert(0, cast)  # it only reads the graph input, so it may go first (keeps topological order)
    for n in nodes:
        if n.op_type == "Shape" and n.input[0] == INPUT_NAME:
            n.input[0] = cast.output[0]
    # Drop exporter-internal value_info so onnx shape inference recomputes it consistently.
    del model.graph.value_info[:]


def onnx_node_copy(node):
    import onnx

    c = onnx.NodeProto()
    c.CopyFrom(node)
    return c


def set_metadata(model, metadata: dict[str, Any]) -> None:
    """metadata_props: the whole manifest as JSON under one key, plus a few flat keys for quick inspection."""
    flat = {METADATA_KEY: json.dumps(metadata, sort_keys=True, default=str)}
    for key in ("format", "preset", "source_sha256", "created_by", "precision"):
        if metadata.get(key) is not None:
            flat[f"styleengine.{key}"] = str(metadata[key])
    style = metadata.get("style") or {}
    if style.get("name"):
        flat["styleengine.style"] = str(style["name"])
    del model.metadata_props[:]
    for k, v in flat.items():
        model.metadata_props.add(key=k, value=v)


def read_metadata(path_or_model) -> dict[str, Any]:
    import onnx

    model = onnx.load(str(path_or_model), load_external_data=False) if isinstance(path_or_model, (str, os.PathLike)) else path_or_model
    props = {p.key: p.value for p in model.metadata_props}
    return json.loads(props[METADATA_KEY]) if METADATA_KEY in props else {}


def _export_dynamo(wrapped, x, opset: int):
    import torch

    dims = ({0: torch.export.Dim("batch", min=1, max=1024), 1: torch.export.Dim("height", min=8, max=16384),
             2: torch.export.Dim("width", min=8, max=16384)},)
    prog = torch.onnx.export(wrapped, (x,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                             dynamic_shapes=dims, opset_version=opset, dynamo=True, optimize=True, verbose=False)
    return prog.model_proto


def _export_torchscript(wrapped, x, opset: int, tmp: Path):
    import onnx
    import torch

    axes = {0: "batch", 1: "height", 2: "width"}
    torch.onnx.export(wrapped, (x,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: axes}, opset_version=min(opset, 20),
                      dynamo=False, do_constant_folding=True)
    return onnx.load(str(tmp))


@contextlib.contextmanager
def _quiet_loggers(*names: str):
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, lvl in zip(loggers, levels):
            lg.setLevel(lvl)


def simplify(model, arch) -> tuple[Any, dict[str, Any]]:
    """onnxslim, kept only if the result passes the graph checks and gives the same uint8 output (ORT CPU,
    max diff <= 1 level) on odd-sized frames; otherwise the original graph is returned. Returns (model, info)."""
    import numpy as np

    try:
        import onnxslim
    except ImportError:
        return model, {"tool": None, "kept": False, "reason": "onnxslim not installed"}
    info: dict[str, Any] = {"tool": f"onnxslim {getattr(onnxslim, '__version__', '?')}", "nodes_before": len(model.graph.node)}
    try:
        slim = onnxslim.slim(model)
        _normalize_io(slim)
        check_graph(slim, arch)
        import onnxruntime as ort

        rng = np.random.default_rng(0)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        sessions = [ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"]) for m in (model, slim)]
        for shape in ((1, 19, 30, 3), (2, 16, 12, 3)):
            x = rng.integers(0, 256, shape, dtype=np.uint8)
            a, b = (s.run(None, {INPUT_NAME: x})[0].astype(np.int16) for s in sessions)
            if a.shape != b.shape or np.abs(a - b).max() > 1:
                return model, {**info, "kept": False, "reason": "output changed after simplification"}
    except Exception as exc:  # a simplifier failure must never fail the export: keep the checked graph
        return model, {**info, "kept": False, "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"}
    return slim, {**info, "kept": True, "nodes_after": len(slim.graph.node)}


def export_model_proto(ckpt, *, opset: int = DEFAULT_OPSET, exporter: str = "dynamo"):
    """Export to an in-memory onnx.ModelProto (checked). Returns (model, exporter actually used)."""
    import tempfile

    import torch

    if exporter not in EXPORTERS:
        raise StyleEngineError(f"unknown exporter {exporter!r}; choose one of: {', '.join(EXPORTERS)}")
    if not 17 <= opset <= 20:
        raise StyleEngineError(f"opset {opset} not supported; use 17-20 (what TensorRT 10/11 and ONNX Runtime accept)")
    wrapped = uint8_model(ckpt)
    x = torch.zeros(_TRACE_SHAPE, dtype=torch.uint8)
    with warnings.catch_warnings(), torch.no_grad(), _quiet_loggers("onnx_ir", "onnxscript", "torch.onnx"):
        warnings.simplefilter("ignore")  # exporter chatter (deprecations, pass logs) is not for users
        if exporter == "dynamo":
            try:
                model = _export_dynamo(wrapped, x, opset)
                _normalize_io(model)
                check_graph(model, ckpt.arch)
                return model, "dynamo"
            except Exception as exc:  # the exporter's own failures are many types; fall back, say why
                log.warning("dynamo ONNX export failed (%s); falling back to the TorchScript exporter",
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        with tempfile.TemporaryDirectory() as d:
            model = _export_torchscript(wrapped, x, opset, Path(d) / "m.onnx")
        _normalize_io(model)
        check_graph(model, ckpt.arch)
        return model, "torchscript"


def export_onnx(ckpt, path: str | os.PathLike, *, opset: int = DEFAULT_OPSET, exporter: str = "dynamo",
                metadata: dict[str, Any] | None = None, overwrite: bool = True, simplify_graph: bool = True) -> Path:
    """Write the uint8-NHWC FP32 ONNX of `ckpt` (a Checkpoint or a checkpoint path) atomically to `path`.

    `metadata` (default: the checkpoint's metadata) is stored in metadata_props. Parity with torch is
    checked by styleengine.export.parity (build_bundle does it for every build).
    """
    import onnx

    ckpt = _as_checkpoint(ckpt)
    model, used = export_model_proto(ckpt, opset=opset, exporter=exporter)
    simplified = None
    if simplify_graph:
        model, simplified = simplify(model, ckpt.arch)
    meta = dict(metadata) if metadata is not None else model_metadata(ckpt)
    if simplified is not None:
        meta["simplify"] = simplified
    meta.setdefault("precision", "fp32")
    meta.setdefault("exporter", used)
    meta.setdefault("opset", opset)
    set_metadata(model, meta)
    model.producer_name = "styleengine"
    model.doc_string = f"fast neural style ({ckpt.style_name}, {ckpt.arch.preset}): uint8 RGB NHWC -> uint8 RGB NHWC"
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        onnx.save(model, str(tmp))
    log.debug("wrote %s (%s exporter, opset %d)", path, used, opset)
    return path


def _as_checkpoint(ckpt):
    from styleengine.core.checkpoint import Checkpoint, load_checkpoint

    return ckpt if isinstance(ckpt, Checkpoint) else load_checkpoint(ckpt)
