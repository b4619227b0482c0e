"""TensorRT builder logic against a fake `tensorrt` module (records calls), plus real-TRT tests (marked)."""

from __future__ import annotations

import enum
import importlib.util
import logging

import numpy as np
import pytest

from styleengine.core.errors import StyleEngineError
from styleengine.core.plan_sidecar import RuntimeInfo, check_plan, read_sidecar
from styleengine.core.shapes import DEFAULT_PROFILE, UHD_PROFILE
from styleengine.export import tensorrt_build as tb

RT = RuntimeInfo("10.13.3.9", "NVIDIA H100 80GB HBM3", "9.0")


def fake_trt(*, strongly_typed=True, fp16_flag=True, refit_flag=True, build_ok=True, parse_ok=True, opt_level=True):
    """A stand-in for the `tensorrt` module with the attribute names of the real bindings (pyCore.cpp)."""
    calls: dict = {"flags": [], "profiles": [], "cache_in": [], "weights": {}}

    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    class ILogger:
        def __init__(self):
            pass

    ILogger.Severity = Severity
    ndf_members = {"EXPLICIT_BATCH": 0, **({"STRONGLY_TYPED": 1} if strongly_typed else {})}
    NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", ndf_members)
    bf = {"TF32": 7, **({"FP16": 0} if fp16_flag else {}), **({"REFIT": 3} if refit_flag else {})}
    BuilderFlag = enum.IntEnum("BuilderFlag", bf)
    MemoryPoolType = enum.IntEnum("MemoryPoolType", {"WORKSPACE": 0})
    DataType = enum.IntEnum("DataType", {"FLOAT": 0, "HALF": 1, "UINT8": 5})

    class Tensor:
        def __init__(self, name):
            self.name = name

    class Network:
        def __init__(self, flags):
            calls["network_flags"] = flags
            self.inputs = []

        @property
        def num_inputs(self):
            return len(self.inputs)

        def get_input(self, i):
            return self.inputs[i]

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.logger = network, logger

        def parse_from_file(self, path):
            import onnx

            calls["parsed"] = path
            if not parse_ok:
                return False
            m = onnx.load(path)
            self.network.inputs = [Tensor(i.name) for i in m.graph.input]
            return True

        num_errors = 1

        def get_error(self, i):
            return "In node 3 (importConv): UNSUPPORTED_NODE: fake failure"

    class TimingCache:
        def __init__(self, data):
            self.data = bytes(data)

        def serialize(self):
            return self.data + b"+tuned"

    class Config:
        def __init__(self):
            self.cache = None
            calls["profiles"], calls["flags"] = [], []  # one config per build
            if opt_level:
                self.builder_optimization_level = 3

        def set_flag(self, f):
            calls["flags"].append(f.name)

        def set_memory_pool_limit(self, pool, size):
            calls["workspace"] = (pool.name, size)

        def add_optimization_profile(self, p):
            calls["profiles"].append(p.shapes)
            return len(calls["profiles"]) - 1

        def create_timing_cache(self, data):
            calls["cache_in"].append(bytes(data))
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

    class Profile:
        def set_shape(self, name, mn, opt, mx):
            self.shapes = (name, mn, opt, mx)

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags):
            return Network(flags)

        def create_builder_config(self):
            self.config = Config()
            calls["config"] = self.config
            return self.config

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            if not build_ok:
                self.logger.log(Severity.ERROR, "fake: out of workspace memory")
                return None
            return b"FAKEPLAN" + repr(sorted(calls["flags"])).encode()

    class Engine:
        def __init__(self, blob):
            self.blob = blob
            self.num_io_tensors = 2
            self.num_optimization_profiles = len(calls["profiles"])
            self.refittable = b"REFIT" in blob

        def get_tensor_name(self, i):
            return ["input", "output"][i]

        def get_tensor_dtype(self, name):
            return DataType.UINT8

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, blob):
            return Engine(bytes(blob))

    class Weights:
        def __init__(self, arr):
            self.arr = arr

    class Refitter:
        names = ["net.conv1.conv2d.weight", "net.in1.weight"]

        def __init__(self, engine, logger):
            self.pending = set(self.names)

        def get_all_weights(self):
            return list(self.names)

        def set_named_weights(self, name, w):
            calls["weights"][name] = w.arr
            self.pending.discard(name)
            return True

        def get_missing_weights(self):
            return sorted(self.pending)

        def refit_cuda_engine(self):
            return True

    import types

    mod = types.SimpleNamespace(__version__=RT.tensorrt_version, ILogger=ILogger,
                                NetworkDefinitionCreationFlag=NetworkDefinitionCreationFlag, BuilderFlag=BuilderFlag,
                                MemoryPoolType=MemoryPoolType, DataType=DataType, Builder=Builder,
                                OnnxParser=OnnxParser, Runtime=Runtime, Refitter=Refitter, Weights=Weights)
    return mod, calls


def test_select_build_by_feature_not_version():
    strong, _ = fake_trt(strongly_typed=True, fp16_flag=True)   # TRT 10.x: both exist -> strong, no FP16 flag
    p = tb.select_build(strong)
    assert p.typing == "strong" and p.network_flags == 1 << 1 and "FP16" not in p.builder_flags
    trt11, _ = fake_trt(strongly_typed=True, fp16_flag=False)   # TRT 11.x: FP16 flag gone
    assert tb.select_build(trt11, refit=True).builder_flags == ("REFIT",)
    weak, _ = fake_trt(strongly_typed=False, fp16_flag=True)    # no strong typing: FP16 flag
    p = tb.select_build(weak)
    assert p.typing == "weak" and p.network_flags == 0 and p.builder_flags == ("FP16",)
    neither, _ = fake_trt(strongly_typed=False, fp16_flag=False)
    with pytest.raises(StyleEngineError, match="refusing to build an FP32 plan"):
        tb.select_build(neither)
    norefit, _ = fake_trt(refit_flag=False)
    with pytest.raises(StyleEngineError, match="REFIT"):
        tb.select_build(norefit, refit=True)


def test_trt_log_routed_to_python_logging(caplog):
    trt, _ = fake_trt()
    logger = tb.make_logger(trt)
    with caplog.at_level(logging.DEBUG, logger="styleengine.tensorrt"):
        logger.log(trt.ILogger.Severity.WARNING, "weights cast")
        logger.log(trt.ILogger.Severity.ERROR, "boom")
        logger.log(trt.ILogger.Severity.VERBOSE, "tactic")
    levels = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert levels == [(logging.WARNING, "weights cast"), (logging.ERROR, "boom"), (logging.DEBUG, "tactic")]
    assert logger.errors == ["boom"]


def test_build_plans_with_fake_trt(tiny_bundle, tmp_path):
    trt, calls = fake_trt()
    cache = tmp_path / "cache" / "timing.cache"
    onnx = tiny_bundle / "model_fp16.onnx"
    built = tb.build_plans(onnx, tmp_path / "plans", profiles=[DEFAULT_PROFILE, UHD_PROFILE], refit=True,
                           workspace=1024, opt_level=5, timing_cache=cache, trt=trt, runtime=RT)
    (bp,) = built
    assert calls["network_flags"] == 1 << 1 and calls["flags"] == ["REFIT"]  # strong typing: no FP16 flag
    assert calls["workspace"] == ("WORKSPACE", 1024 << 20)
    assert calls["config"].builder_optimization_level == 5
    assert calls["profiles"] == [("input", (1, 64, 64, 3), (1, 1080, 1920, 3), (1, 1920, 1920, 3)),
                                 ("input", (1, 1080, 1080, 3), (1, 2160, 3840, 3), (1, 3840, 3840, 3))]
    assert cache.read_bytes() == b"+tuned" and calls["cache_in"] == [b""]
    assert bp.plan.read_bytes().startswith(b"FAKEPLAN") and bp.plan.name.startswith("fp16-sm90-trt10.13.3.9-refit-")
    sc = read_sidecar(bp.sidecar)
    assert sc["gpu"] == {"name": RT.gpu_name, "compute_capability": "9.0"} and sc["tensorrt_version"] == "10.13.3.9"
    assert sc["typing"] == "strong" and sc["refit"] is True and sc["precision"] == "fp16"
    assert len(sc["profiles"]) == 2 and sc["source_onnx"] == "model_fp16.onnx"
    from styleengine.core.fsutil import sha256_file

    assert check_plan(bp.plan, RT, onnx_sha256=sha256_file(onnx)).ok
    # The persistent timing cache is read back by the next build (any style of the preset).
    tb.build_plans(onnx, tmp_path / "plans2", profiles=[DEFAULT_PROFILE], timing_cache=cache, trt=trt, runtime=RT)
    assert calls["cache_in"][-1] == b"+tuned"


def test_build_plans_identifies_the_gpu_it_builds_for(tiny_bundle, tmp_path, monkeypatch):
    """Without a RuntimeInfo, the plan is named and its sidecar written for CUDA device `device_index`."""
    trt, _ = fake_trt()
    asked = []
    gpus = {0: ("NVIDIA H100 80GB HBM3", "9.0"), 1: ("NVIDIA A100-SXM4-80GB", "8.0")}
    monkeypatch.setattr(tb, "current_gpu", lambda device=0: asked.append(device) or gpus.get(device))
    (bp,) = tb.build_plans(tiny_bundle / "model_fp16.onnx", tmp_path / "plans", profiles=[DEFAULT_PROFILE],
                           timing_cache=tmp_path / "t.cache", trt=trt, device_index=1)
    assert asked == [1] and bp.plan.name.startswith("fp16-sm80-")
    assert read_sidecar(bp.sidecar)["gpu"] == {"name": "NVIDIA A100-SXM4-80GB", "compute_capability": "8.0"}
    with pytest.raises(StyleEngineError, match="no NVIDIA GPU"):
        tb.build_plans(tiny_bundle / "model_fp16.onnx", tmp_path / "plans", profiles=[DEFAULT_PROFILE],
                       timing_cache=tmp_path / "t.cache", trt=trt, device_index=2)


def test_weak_typing_sets_fp16_flag(tiny_bundle, tmp_path):
    trt, calls = fake_trt(strongly_typed=False)
    tb.build_plans(tiny_bundle / "model_fp16.onnx", tmp_path, profiles=[DEFAULT_PROFILE],
                   timing_cache=tmp_path / "t.cache", trt=trt, runtime=RT)
    assert calls["flags"] == ["FP16"] and calls["network_flags"] == 0


@pytest.mark.parametrize("kind,msg", [("build", "TensorRT build failed: fake: out of workspace memory"),
                                      ("parse", "could not parse model_fp16.onnx: In node 3")])
def test_failures_are_one_line_and_write_nothing(tiny_bundle, tmp_path, kind, msg):
    trt, _ = fake_trt(build_ok=kind != "build", parse_ok=kind != "parse")
    with pytest.raises(StyleEngineError, match=msg):
        tb.build_plans(tiny_bundle / "model_fp16.onnx", tmp_path / "plans", profiles=[DEFAULT_PROFILE],
                       timing_cache=tmp_path / "t.cache", trt=trt, runtime=RT)
    assert not (tmp_path / "plans").exists() or not any((tmp_path / "plans").iterdir())


def test_options_validated():
    with pytest.raises(StyleEngineError, match="opt-level"):
        tb.validate_options(opt_level=9)
    with pytest.raises(StyleEngineError, match="workspace"):
        tb.validate_options(workspace=1)


def test_default_timing_cache_is_per_trt_and_gpu(monkeypatch, tmp_path):
    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path))
    p = tb.default_timing_cache(RT)
    assert p.parent == tmp_path / "tensorrt" and "10.13.3.9" in p.name and "sm90" in p.name


def test_refit_sets_every_named_weight_from_the_new_style(tiny_bundle):
    import onnx
    from onnx import numpy_helper

    trt, calls = fake_trt()
    engine = trt.Runtime(None).deserialize_cuda_engine(b"FAKEPLAN['REFIT']")
    n = tb.refit_engine(engine, tiny_bundle / "model_fp16.onnx", trt=trt)
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(tiny_bundle / "model_fp16.onnx")).graph.initializer}
    assert n == 2 and set(calls["weights"]) == {"net.conv1.conv2d.weight", "net.in1.weight"}
    w = calls["weights"]["net.conv1.conv2d.weight"]
    assert w.dtype == np.float16 and np.array_equal(w, inits["net.conv1.conv2d.weight"])  # FP16 layer, FP16 weights
    assert calls["weights"]["net.in1.weight"].dtype == np.float32  # InstanceNormalization stays FP32
    with pytest.raises(StyleEngineError, match="not built refittable"):
        tb.refit_engine(trt.Runtime(None).deserialize_cuda_engine(b"FAKEPLAN[]"), tiny_bundle / "model_fp16.onnx", trt=trt)


def test_refit_weights_reports_missing():
    with pytest.raises(StyleEngineError, match="lacks 1 weights"):
        tb.refit_weights(["a", "b"], {"a": np.zeros(1)})


def test_refit_compatible(tiny_bundle, second_style_fp16):
    fp16 = tiny_bundle / "model_fp16.onnx"
    assert tb.refit_compatible(fp16, second_style_fp16) == (True, "")
    ok, why = tb.refit_compatible(fp16, tiny_bundle / "model_fp32.onnx")
    assert not ok and "graphs differ" in why


@pytest.fixture(scope="module")
def second_style_fp16(tmp_path_factory):
    """Another style (different weights) of the same tiny architecture, through the same pipeline."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from conftest import make_tiny_model

    from styleengine.core.checkpoint import save_model
    from styleengine.export.fp16 import export_fp16
    from styleengine.export.onnx_export import export_onnx

    d = tmp_path_factory.mktemp("style2")
    save_model(d / "b.pt", make_tiny_model(seed=7), style={"name": "b"})
    return export_fp16(export_onnx(d / "b.pt", d / "b32.onnx"), d / "b16.onnx")


@pytest.mark.tensorrt
@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="needs TensorRT")
def test_real_tensorrt_build_refit_and_sidecar(tiny_bundle, tmp_path, second_style_fp16):
    # (skipped before the fixtures run: they export two ONNX models, which costs minutes on 2 cores)
    trt = pytest.importorskip("tensorrt")
    from styleengine.core.plan_sidecar import current_runtime

    runtime = current_runtime(trt)
    if runtime is None:
        pytest.skip("no GPU")
    from styleengine.core.shapes import parse_shape

    built = tb.build_plans(tiny_bundle / "model_fp16.onnx", tmp_path, profiles=[parse_shape("1x8x8:1x64x64:2x128x128")],
                           refit=True, timing_cache=tmp_path / "t.cache", trt=trt, runtime=runtime)
    plan = built[0].plan
    assert check_plan(plan, runtime).ok and (tmp_path / "t.cache").stat().st_size > 0
    _rt, engine = tb.deserialize(trt, plan.read_bytes())
    tb.check_engine(trt, engine, profiles=[parse_shape("1x8x8:1x64x64:2x128x128")], refit=True)
    assert tb.refit_engine(engine, second_style_fp16, trt=trt) > 0


def test_preflight_accepts_our_graphs_and_flags_violations(tiny_bundle):
    import onnx

    for name in ("model_fp32.onnx", "model_fp16.onnx"):
        assert tb.preflight(onnx.load(str(tiny_bundle / name))) == [], name
    m = onnx.load(str(tiny_bundle / "model_fp16.onnx"))
    # Feed the uint8 input straight into the Transpose (what a naive wrapper exports): TensorRT rejects that.
    cast = next(n for n in m.graph.node if n.op_type == "Cast" and "input" in n.input)
    tr = next(n for n in m.graph.node if n.op_type == "Transpose" and cast.output[0] in n.input)
    tr.input[0] = "input"
    inorm = next(n for n in m.graph.node if n.op_type == "InstanceNormalization")
    inorm.input[1] = next(t.name for t in m.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16)
    problems = tb.preflight(m)
    assert any("uint8 tensor 'input'" in p for p in problems)
    assert any("dtypes differ" in p for p in problems)


def test_build_bundle_with_fake_trt_puts_plans_in_bundle(tiny_checkpoint, tmp_path, monkeypatch):
    import functools

    from styleengine.core.bundle import load_bundle
    from styleengine.core.plan_sidecar import find_compatible_plan
    from styleengine.export.build import build_bundle

    trt, calls = fake_trt()
    monkeypatch.setattr(tb, "probe", lambda: (True, "TensorRT (fake)"))
    monkeypatch.setattr(tb, "build_plans", functools.partial(tb.build_plans, trt=trt, runtime=RT))
    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path / "cache"))  # default timing cache lands here
    res = build_bundle(tiny_checkpoint, tmp_path / "t.engine", shapes=["1x64x64:2x720x1280:4x1080x1920"],
                       refit=True, tensorrt="require", validate=False)
    assert res.tensorrt_note is None and len(res.plans) == 1 and res.plans[0].is_file()
    b = load_bundle(res.path)
    assert b.manifest["tensorrt"]["built"] is True and b.manifest["plans"] == [f"plans/{res.plans[0].stem}.json"]
    assert calls["profiles"] == [("input", (1, 64, 64, 3), (2, 720, 1280, 3), (4, 1080, 1920, 3))]
    plan, _ = find_compatible_plan(b.plans_dir, RT, onnx_sha256=b.manifest["onnx"]["fp16"]["sha256"], height=720, width=1280)
    assert plan == res.plans[0]
    assert list((tmp_path / "cache" / "tensorrt").glob("timing-*.cache"))


def test_refit_without_python_onnx_uses_tensorrt_parser_refitter(tiny_bundle, monkeypatch):
    import importlib.util

    trt, calls = fake_trt()

    class OnnxParserRefitter:
        num_errors = 0

        def __init__(self, refitter, logger):
            self.refitter = refitter

        def refit_from_file(self, path):
            calls["refit_file"] = path
            for n in self.refitter.get_all_weights():
                self.refitter.set_named_weights(n, trt.Weights(np.zeros(1)))
            return True

    trt.OnnxParserRefitter = OnnxParserRefitter
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    engine = trt.Runtime(None).deserialize_cuda_engine(b"FAKEPLAN['REFIT']")
    assert tb.refit_engine(engine, tiny_bundle / "model_fp16.onnx", trt=trt) == 2
    assert calls["refit_file"] == str(tiny_bundle / "model_fp16.onnx")


def test_tensorrt_build_imports_without_torch_or_onnx():
    import subprocess
    import sys

    code = ("import sys; import styleengine.export.tensorrt_build, styleengine.core.shapes; "
            "bad = [m for m in ('torch', 'onnx', 'tensorrt') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
