"""FP16 ONNX -> TensorRT plans (TensorRT 10.x and 11.x Python API), each with a JSON sidecar; refit.

TensorRT cannot be installed on our CI machines. The TensorRT calls are kept thin and go through a `trt`
module object passed around explicitly, so every decision (network/builder flags, profiles, timing cache,
error handling, sidecar) is tested here with a fake module (tests/export/test_tensorrt_build.py).
Features are detected (hasattr / enum members), never inferred from version numbers:
  * STRONGLY_TYPED network flag present (10.x opt-in, 11.x always): precision comes from the FP16 ONNX graph
    (FP16 convs, FP32 InstanceNormalization, explicit Casts); BuilderFlag.FP16 must NOT be set (10.12+
    rejects it with strong typing; 11.x removed it).
  * otherwise (weak typing): BuilderFlag.FP16; when even that is missing we refuse rather than silently
    building FP32.
Names below were checked against NVIDIA/TensorRT python/src/infer/pyCore.cpp and python/src/parsers/pyOnnx.cpp
(release/10.16 and main 11.x).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.util
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from styleengine.core import __version__
from styleengine.core.bundle import INPUT_NAME, OUTPUT_NAME
from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_path, sha256_file
from styleengine.core.hostinfo import gpu_info
from styleengine.core.log import log
from styleengine.core.paths import cache_root
from styleengine.core.plan_sidecar import (
    RuntimeInfo,
    check_sidecar,
    current_gpu,
    sidecar_path,
    write_sidecar,
)
from styleengine.core.shapes import Profile

trt_log = log.getChild("tensorrt")  # TensorRT's own messages, at their severity

DEFAULT_WORKSPACE_MIB = 4096


# ----------------------------------------------------------------------------------------------- probing
def probe() -> tuple[bool, str]:
    """(can build plans here?, reason). Checks the package, then a GPU, then that TensorRT imports."""
    if importlib.util.find_spec("tensorrt") is None:
        return False, "TensorRT is not installed (pip install 'styleengine[gpu]' on a machine with an NVIDIA GPU)"
    if not gpu_info():
        return False, "no NVIDIA GPU found (nvidia-smi reports none)"
    try:
        import tensorrt as trt  # noqa: F401
    except Exception as exc:  # broken CUDA/driver installs raise many types at import
        return False, f"TensorRT failed to import ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    return True, f"TensorRT {getattr(trt, '__version__', '?')}"


def validate_options(*, workspace: int | None = None, opt_level: int | None = None) -> None:
    if workspace is not None and not (16 <= int(workspace) <= 1 << 20):
        raise StyleEngineError(f"--workspace {workspace} MiB out of range (16..1048576)")
    if opt_level is not None and not (0 <= int(opt_level) <= 5):
        raise StyleEngineError(f"--opt-level {opt_level} out of range (0..5)")


# ---------------------------------------------------------------------------------- ONNX preflight
# Ops in our graphs with the onnx-tensorrt parser's support (docs/operators.md, 8.5+ / 10.x).
TRT_SUPPORTED_OPS = frozenset({"Cast", "Transpose", "Pad", "Conv", "InstanceNormalization", "Relu", "Add", "Resize",
                               "Slice", "Clip", "Round", "Shape", "Squeeze", "Unsqueeze", "Mod", "Sub", "Mul", "Div",
                               "Reshape", "Concat", "Identity", "Constant", "Gather"})


def preflight(model) -> list[str]:
    """Problems TensorRT's ONNX parser would hit, checked without TensorRT (empty list = none found).

    Restrictions from onnx-tensorrt docs/operators.md and the reference notes: uint8 only as network I/O and
    only through a Cast; InstanceNormalization scale/bias initializers of the input's dtype; Slice/Squeeze axes and
    Pad axes as initializers; Resize nearest/linear only.
    """
    import onnx
    from onnx import TensorProto

    problems: list[str] = []
    inits = {t.name: t for t in model.graph.initializer}
    inferred = onnx.shape_inference.infer_shapes(model)
    dtype = {vi.name: vi.type.tensor_type.elem_type for vi in
             list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output)}
    dtype.update({n: t.data_type for n, t in inits.items()})
    io = {i.name for i in model.graph.input} | {o.name for o in model.graph.output}
    for n in model.graph.node:
        if n.op_type not in TRT_SUPPORTED_OPS:
            problems.append(f"{n.name or n.op_type}: op {n.op_type} not in the supported set")
        for t in list(n.input) + list(n.output):
            if t and dtype.get(t) == TensorProto.UINT8 and (t not in io or n.op_type not in ("Cast", "Shape")):
                problems.append(f"{n.name or n.op_type}: uint8 tensor {t!r} away from the network I/O Cast")
        if n.op_type == "InstanceNormalization":
            x, scale, bias = n.input[:3]
            if scale not in inits or bias not in inits:
                problems.append(f"{n.name}: InstanceNormalization scale/bias must be initializers")
            elif not (dtype.get(x) == inits[scale].data_type == inits[bias].data_type):
                problems.append(f"{n.name}: InstanceNormalization input/scale/bias dtypes differ")
        if n.op_type in ("Slice", "Squeeze", "Pad"):
            axes_idx = {"Slice": 3, "Squeeze": 1, "Pad": 3}[n.op_type]
            if len(n.input) > axes_idx and n.input[axes_idx] and n.input[axes_idx] not in inits:
                problems.append(f"{n.name}: {n.op_type} axes must be an initializer")
        if n.op_type == "Resize":
            mode = next((onnx.helper.get_attribute_value(a) for a in n.attribute if a.name == "mode"), b"nearest")
            if mode not in (b"nearest", b"linear"):
                problems.append(f"{n.name}: Resize mode {mode!r} unsupported")
    return problems


# ------------------------------------------------------------------------------------- pure decisions
@dataclass(frozen=True)
class BuildPlan:
    """What we will ask TensorRT for, decided from the module's features only."""

    network_flags: int
    typing: str  # "strong" | "weak"
    builder_flags: tuple[str, ...]  # BuilderFlag member names to set


def select_build(trt: Any, *, refit: bool = False, precision: str = "fp16") -> BuildPlan:
    """Network creation flags and builder flags for this TensorRT module (feature detection only)."""
    ndf = getattr(trt, "NetworkDefinitionCreationFlag", None)
    bf = trt.BuilderFlag
    flags: list[str] = []
    if ndf is not None and hasattr(ndf, "STRONGLY_TYPED"):
        network_flags, typing = 1 << int(ndf.STRONGLY_TYPED), "strong"
    else:
        network_flags, typing = 0, "weak"
        if precision == "fp16":
            if not hasattr(bf, "FP16"):
                raise StyleEngineError("this TensorRT has neither strongly typed networks nor BuilderFlag.FP16; "
                                       "refusing to build an FP32 plan when FP16 was asked")
            flags.append("FP16")
    if refit:
        if not hasattr(bf, "REFIT"):
            raise StyleEngineError("this TensorRT has no BuilderFlag.REFIT; cannot build a refittable plan")
        flags.append("REFIT")
    return BuildPlan(network_flags, typing, tuple(flags))


_SEVERITY_LEVELS = {"INTERNAL_ERROR": logging.CRITICAL, "ERROR": logging.ERROR, "WARNING": logging.WARNING,
                    "INFO": logging.INFO, "VERBOSE": logging.DEBUG}


def log_level(severity: Any) -> int:
    """Python logging level for a trt.ILogger.Severity value (matched by member name)."""
    name = getattr(severity, "name", None) or str(severity).rsplit(".", 1)[-1]
    return _SEVERITY_LEVELS.get(str(name).upper(), logging.INFO)


def default_timing_cache(runtime: RuntimeInfo) -> Path:
    """One cache per TensorRT build and GPU architecture, shared by every style (weights do not matter)."""
    root = cache_root()
    safe = "".join(c if c.isalnum() or c in ".-" else "_" for c in runtime.tensorrt_version)
    return root / "tensorrt" / f"timing-trt{safe}-sm{runtime.compute_capability.replace('.', '')}.cache"


def plan_name(runtime: RuntimeInfo, *, precision: str, profiles: Sequence[Profile], refit: bool,
              onnx_sha256: str) -> str:
    """Stable, self-explaining file stem: one bundle may hold plans for several GPUs/TensorRT builds."""
    key = hashlib.sha256(repr((precision, [p.to_dict() for p in profiles], refit, onnx_sha256,
                               runtime.tensorrt_version, runtime.compute_capability)).encode()).hexdigest()[:10]
    safe = "".join(c if c.isalnum() or c == "." else "_" for c in runtime.tensorrt_version)
    return f"{precision}-sm{runtime.compute_capability.replace('.', '')}-trt{safe}{'-refit' if refit else ''}-{key}"


def sidecar_data(*, plan: Path, runtime: RuntimeInfo, build: BuildPlan, precision: str,
                 profiles: Sequence[Profile], refit: bool, onnx_path: Path, onnx_sha256: str,
                 workspace_mib: int, opt_level: int | None, seconds: float) -> dict[str, Any]:
    return {
        "plan": plan.name,
        "plan_sha256": sha256_file(plan),
        "plan_bytes": plan.stat().st_size,
        "tensorrt_version": runtime.tensorrt_version,
        "gpu": {"name": runtime.gpu_name, "compute_capability": runtime.compute_capability},
        "precision": precision,
        "typing": build.typing,
        "builder_flags": list(build.builder_flags),
        "refit": refit,
        "profiles": [p.to_dict() for p in profiles],
        "io": {"input": INPUT_NAME, "output": OUTPUT_NAME, "dtype": "uint8", "layout": "NHWC"},
        "hardware_compatibility": "none",
        "version_compatible": False,
        "source_onnx": onnx_path.name,
        "source_onnx_sha256": onnx_sha256,
        "builder": {"workspace_mib": workspace_mib, "optimization_level": opt_level, "build_seconds": round(seconds, 1)},
        "created_by": f"styleengine {__version__}",
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------------------- thin TRT layer
def make_logger(trt: Any):
    """A trt.ILogger that routes TensorRT's messages to Python logging ("styleengine.tensorrt") and keeps the
    last errors for our one-line messages."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):  # noqa: D401 - TensorRT callback
            level = log_level(severity)
            if level >= logging.ERROR:
                self.errors.append(str(msg).strip())
            trt_log.log(level, "%s", msg)

    return _Logger()


def _last_error(logger: Any, default: str) -> str:
    errs = getattr(logger, "errors", None) or []
    return (errs[-1].splitlines()[0] if errs else default)[:300]


def _load_timing_cache(trt: Any, config: Any, path: Path | None):
    data = b""
    if path is not None and path.is_file():
        try:
            data = path.read_bytes()
        except OSError as exc:
            log.warning("cannot read TensorRT timing cache %s (%s); starting empty", path, exc)
    cache = config.create_timing_cache(data)
    if cache is None and data:
        log.warning("TensorRT rejected timing cache %s; starting empty", path)
        cache = config.create_timing_cache(b"")
    if cache is None:
        raise StyleEngineError("TensorRT could not create a timing cache")
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        if not data:
            raise StyleEngineError("TensorRT refused an empty timing cache")
        # A cache from another device/CUDA/TensorRT: start fresh rather than failing the build.
        log.warning("timing cache %s does not match this GPU/TensorRT; starting empty", path)
        cache = config.create_timing_cache(b"")
        if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
            raise StyleEngineError("TensorRT refused an empty timing cache")
    return cache


def _save_timing_cache(config: Any, path: Path | None) -> None:
    if path is None:
        return
    cache = config.get_timing_cache()
    if cache is None:
        log.warning("TensorRT returned no timing cache to save")
        return
    blob = cache.serialize()
    if blob is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_bytes(bytes(memoryview(blob)))
    except (OSError, StyleEngineError) as exc:
        log.warning("could not save TensorRT timing cache %s (%s)", path, exc)


def build_serialized(trt: Any, onnx_path: Path, *, profiles: Sequence[Profile], refit: bool = False,
                     workspace_mib: int = DEFAULT_WORKSPACE_MIB, opt_level: int | None = None,
                     timing_cache: Path | None = None, logger: Any = None) -> tuple[bytes, BuildPlan]:
    """Parse `onnx_path`, build a serialized plan; every TensorRT return value is checked."""
    if not profiles:
        raise StyleEngineError("at least one optimization profile is needed")
    logger = logger or make_logger(trt)
    build = select_build(trt, refit=refit)
    problems = []
    if importlib.util.find_spec("onnx") is not None:  # the deployment install has no `onnx`: TRT's parser decides
        import onnx

        problems = preflight(onnx.load(str(onnx_path), load_external_data=False))
    if problems:
        raise StyleEngineError(f"{onnx_path.name} is not TensorRT-ready: {problems[0]}"
                               + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""))
    builder = trt.Builder(logger)
    if builder is None:
        raise StyleEngineError(f"TensorRT could not create a builder: {_last_error(logger, 'no CUDA device?')}")
    network = builder.create_network(build.network_flags)
    if network is None:
        raise StyleEngineError(f"TensorRT could not create a network: {_last_error(logger, 'unknown error')}")
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errs = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise StyleEngineError(f"TensorRT could not parse {onnx_path.name}: {(errs or ['unknown error'])[0].splitlines()[0]}")
    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    if [t.name for t in inputs] != [INPUT_NAME]:
        raise StyleEngineError(f"{onnx_path.name}: expected one input {INPUT_NAME!r}, TensorRT sees {[t.name for t in inputs]}")

    config = builder.create_builder_config()
    if config is None:
        raise StyleEngineError("TensorRT could not create a builder config")
    for name in build.builder_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    if opt_level is not None:
        if not hasattr(config, "builder_optimization_level"):
            raise StyleEngineError("this TensorRT has no builder optimization level setting")
        config.builder_optimization_level = int(opt_level)
    for prof in profiles:
        p = builder.create_optimization_profile()
        if p is None:
            raise StyleEngineError("TensorRT could not create an optimization profile")
        mn, opt, mx = prof.input_shapes()
        try:  # the binding raises RuntimeError when min/opt/max are inconsistent
            p.set_shape(INPUT_NAME, mn, opt, mx)
        except RuntimeError as exc:
            raise StyleEngineError(f"TensorRT rejected profile {prof.spec()}: {exc}") from None
        if config.add_optimization_profile(p) < 0:
            raise StyleEngineError(f"TensorRT rejected profile {prof.spec()}: {_last_error(logger, 'invalid shapes')}")
    cache = _load_timing_cache(trt, config, timing_cache)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise StyleEngineError(f"TensorRT build failed: {_last_error(logger, 'see the log above')}")
    _save_timing_cache(config, timing_cache)
    del cache
    return bytes(memoryview(serialized)), build


def deserialize(trt: Any, plan: bytes, logger: Any = None):
    logger = logger or make_logger(trt)
    runtime = trt.Runtime(logger)
    if runtime is None:
        raise StyleEngineError("TensorRT could not create a runtime")
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise StyleEngineError(f"TensorRT could not deserialize the plan: {_last_error(logger, 'incompatible plan')}")
    return runtime, engine


def check_engine(trt: Any, engine: Any, *, profiles: Sequence[Profile], refit: bool) -> None:
    """The built engine honours the bundle's I/O contract and what was asked."""
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    if sorted(names) != sorted([INPUT_NAME, OUTPUT_NAME]):
        raise StyleEngineError(f"TensorRT engine has I/O {names}, expected {INPUT_NAME!r} and {OUTPUT_NAME!r}")
    for n in names:
        if engine.get_tensor_dtype(n) != trt.DataType.UINT8:
            raise StyleEngineError(f"TensorRT engine tensor {n!r} is {engine.get_tensor_dtype(n)}, expected uint8")
    if engine.num_optimization_profiles != len(profiles):
        raise StyleEngineError(f"TensorRT engine has {engine.num_optimization_profiles} profiles, expected {len(profiles)}")
    if refit and not engine.refittable:
        raise StyleEngineError("TensorRT engine is not refittable although REFIT was requested")


@dataclass
class BuiltPlan:
    plan: Path
    sidecar: Path
    data: dict[str, Any]


def build_plans(onnx_path: str | os.PathLike, plans_dir: str | os.PathLike, *, profiles: Sequence[Profile],
                refit: bool = False, workspace: int | None = None, opt_level: int | None = None,
                timing_cache: str | os.PathLike | None = None, precision: str = "fp16",
                trt: Any = None, runtime: RuntimeInfo | None = None, device_index: int = 0) -> list[BuiltPlan]:
    """Build one plan (all `profiles` in it) from the FP16 ONNX into `plans_dir`, with its sidecar, for CUDA
    device `device_index` (the caller makes it current). Also what the engine's TensorRTPlan loader calls to
    build a plan on first use on a GPU machine.
    """
    if trt is None:
        import tensorrt as trt  # noqa: PLC0415
    validate_options(workspace=workspace, opt_level=opt_level)
    onnx_path = Path(onnx_path)
    if runtime is None:
        gpu = current_gpu(device_index)
        if gpu is None:
            raise StyleEngineError("no NVIDIA GPU found to build a TensorRT plan on")
        runtime = RuntimeInfo(str(trt.__version__), gpu[0], gpu[1])
    cache_path = Path(timing_cache) if timing_cache else default_timing_cache(runtime)
    onnx_sha = sha256_file(onnx_path)
    workspace_mib = int(workspace or DEFAULT_WORKSPACE_MIB)
    logger = make_logger(trt)
    log.info("building TensorRT %s plan (%s) for %s, profiles %s", precision, runtime.tensorrt_version,
             runtime.gpu_name, ", ".join(p.spec() for p in profiles))
    t0 = time.perf_counter()
    blob, build = build_serialized(trt, onnx_path, profiles=profiles, refit=refit, workspace_mib=workspace_mib,
                                   opt_level=opt_level, timing_cache=cache_path, logger=logger)
    seconds = time.perf_counter() - t0
    _rt, engine = deserialize(trt, blob, logger)
    check_engine(trt, engine, profiles=profiles, refit=refit)
    del engine, _rt

    plans_dir = Path(plans_dir)
    plans_dir.mkdir(parents=True, exist_ok=True)
    plan = plans_dir / f"{plan_name(runtime, precision=precision, profiles=profiles, refit=refit, onnx_sha256=onnx_sha)}.plan"
    with atomic_path(plan) as tmp:
        tmp.write_bytes(blob)
    data = sidecar_data(plan=plan, runtime=runtime, build=build, precision=precision, profiles=profiles, refit=refit,
                        onnx_path=onnx_path, onnx_sha256=onnx_sha, workspace_mib=workspace_mib, opt_level=opt_level,
                        seconds=seconds)
    sc = write_sidecar(plan, data)
    sanity = check_sidecar({"format": "styleengine.plan/1", **data}, runtime, onnx_sha256=onnx_sha, plan_file=plan)
    if not sanity.ok:  # our own sidecar must accept our own plan
        raise StyleEngineError(f"internal: fresh plan fails its sidecar check ({sanity.reason})")
    log.info("TensorRT plan %s built in %.1f s", plan.name, seconds)
    return [BuiltPlan(plan, sc, data)]


# ---------------------------------------------------------------------------------------------- refit
def refit_weights(all_weight_names: Sequence[str], initializers: dict[str, Any]) -> dict[str, Any]:
    """Arrays to hand to Refitter.set_named_weights: every refittable weight must come from the new style's ONNX."""
    missing = [n for n in all_weight_names if n not in initializers]
    if missing:
        raise StyleEngineError(f"refit: the new style's ONNX lacks {len(missing)} weights the engine needs "
                               f"(e.g. {missing[0]!r}); it is not the same preset/export pipeline")
    return {n: initializers[n] for n in all_weight_names}


def onnx_initializers(onnx_path: str | os.PathLike) -> dict[str, Any]:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(onnx_path))
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def refit_engine(engine: Any, onnx_path: str | os.PathLike, *, trt: Any = None, logger: Any = None) -> int:
    """Swap the weights of a refittable engine for those of another style's FP16 ONNX (same preset).

    Call with no inference in flight on this engine (synchronize its streams first); contexts stay valid.
    Returns the number of weights set.
    """
    import numpy as np

    if trt is None:
        import tensorrt as trt  # noqa: PLC0415
    logger = logger or make_logger(trt)
    if not getattr(engine, "refittable", False):
        raise StyleEngineError("this TensorRT engine was not built refittable (build with --refit)")
    refitter = trt.Refitter(engine, logger)
    if refitter is None:
        raise StyleEngineError("TensorRT could not create a refitter")
    names = list(refitter.get_all_weights())
    keep = []  # TensorRT reads host memory at refit time: keep the arrays alive until then
    if hasattr(trt, "OnnxParserRefitter") and importlib.util.find_spec("onnx") is None:
        # No Python onnx here (deployment install): let TensorRT's parser read the weights by initializer name.
        parser_refitter = trt.OnnxParserRefitter(refitter, logger)
        if not parser_refitter.refit_from_file(str(onnx_path)):
            errs = [str(parser_refitter.get_error(i)) for i in range(parser_refitter.num_errors)]
            raise StyleEngineError(f"refit from {Path(onnx_path).name} failed: {(errs or ['unknown error'])[0].splitlines()[0]}")
    else:
        weights = refit_weights(names, onnx_initializers(onnx_path))
        for name, arr in weights.items():
            arr = np.ascontiguousarray(arr)
            keep.append(arr)
            if not refitter.set_named_weights(name, trt.Weights(arr)):
                raise StyleEngineError(f"refit: TensorRT rejected weights {name!r} ({arr.dtype}, {arr.shape}): "
                                       f"{_last_error(logger, 'wrong size or dtype')}")
    missing = list(refitter.get_missing_weights())
    if missing:
        raise StyleEngineError(f"refit: {len(missing)} weights still missing (e.g. {missing[0]!r})")
    if not refitter.refit_cuda_engine():
        raise StyleEngineError(f"refit failed (engine may be partially refitted; reload it): "
                               f"{_last_error(logger, 'unknown error')}")
    del keep
    return len(names)


def refit_compatible(onnx_a: str | os.PathLike, onnx_b: str | os.PathLike) -> tuple[bool, str]:
    """Can an engine built from `onnx_a` be refitted with `onnx_b`'s weights? Same graph structure and the
    same initializer names, dtypes and shapes (pure ONNX check, no TensorRT)."""
    import onnx

    a, b = onnx.load(str(onnx_a)), onnx.load(str(onnx_b))
    ops_a = [(n.op_type, tuple(n.input), tuple(n.output)) for n in a.graph.node]
    ops_b = [(n.op_type, tuple(n.input), tuple(n.output)) for n in b.graph.node]
    if ops_a != ops_b:
        return False, "graphs differ (different preset, exporter or conversion)"
    sig_a = {t.name: (t.data_type, tuple(t.dims)) for t in a.graph.initializer}
    sig_b = {t.name: (t.data_type, tuple(t.dims)) for t in b.graph.initializer}
    if sig_a != sig_b:
        diff = sorted(set(sig_a.items()) ^ set(sig_b.items()))
        return False, f"weights differ in name/dtype/shape (e.g. {diff[0][0]!r})"
    return True, ""


def plan_sidecar_path(plan: str | os.PathLike) -> Path:
    return sidecar_path(plan)
