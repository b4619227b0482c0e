"""`--backend auto` on a CPU: choose the runtime by measuring it, per machine, style and size class.

CPUs differ too much for a fixed order (an Intel Xeon with AMX runs OpenVINO's bf16 ~9x eager torch; an AMD
EPYC without it favours other kernels). So on the first frame of a size class, every available CPU candidate
(OpenVINO at its default precision, OpenVINO fp32, ONNX Runtime fp32, ONNX Runtime INT8, torch fp32) is

  1. run on that frame (scaled to at most PROXY_PIXELS) and compared with the FP32 reference (ONNX Runtime or
     OpenVINO FP32 on the same ONNX, which the build validated against torch to 1 level): a candidate below
     MIN_PSNR_DB is rejected, whatever its speed -- so a lossy INT8 model is never chosen;
  2. timed after that warm-up, round-robin (one call of each per round, so load drift hits all alike), as many
     rounds as the budget allows (TIME_BUDGET_S for all candidates together); the median counts;

the fastest candidate that passed wins. The decision (with every candidate's numbers) is cached in
<cache>/auto-cpu.json, keyed by CPU model + ISA + threads + runtime versions, the style's FP32 ONNX and the
size class, so later runs skip the measurement; the choice and why is logged either way.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_path
from styleengine.core.hostinfo import PACKAGES, cpu_info, package_version, physical_cores
from styleengine.core.log import log
from styleengine.core.paths import cache_dir

from .backend import Backend, ShapeLimits, create_backend, get_backend
from .backend_openvino import best_precision

MIN_PSNR_DB = 40.0
TIME_BUDGET_S = 3.0
PROXY_PIXELS = 768 * 432  # frames up to this size are measured as they are; larger ones scaled down to it
DECISIONS_FILE = "auto-cpu.json"
# Megapixel bounds of the size classes a decision holds for.
SIZE_CLASSES = ((0.3, "up to 0.3 MP"), (1.0, "up to 1 MP"), (4.0, "up to 4 MP"), (math.inf, "over 4 MP"))

CandidateSpec = tuple[str, dict[str, Any]]


def cpu_candidates() -> list[CandidateSpec]:
    """What auto may pick on a CPU, in the order they are tried (the reference comes first)."""
    out: list[CandidateSpec] = [("onnxruntime", {"precision": "fp32"})]
    best = best_precision()
    out.append(("openvino", {"precision": best}))
    if best != "fp32":
        out.append(("openvino", {"precision": "fp32"}))
    out.append(("onnxruntime", {"precision": "int8"}))
    # torch on the CPU is eager FP32 (the baseline everything else is measured against): only a fallback
    # where neither ONNX Runtime nor OpenVINO is installed.
    if not any(get_backend(n).available()[0] for n in ("onnxruntime", "openvino")):
        out.append(("torch", {"precision": "fp32"}))
    return out


def label(spec: CandidateSpec) -> str:
    return f"{spec[0]} {spec[1].get('precision', '')}".strip()


def size_class(height: int, width: int) -> str:
    mp = height * width / 1e6
    return next(name for bound, name in SIZE_CLASSES if mp <= bound)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def proxy_frame(frame: np.ndarray, pixels: int = PROXY_PIXELS) -> np.ndarray:
    """The frame scaled (area filter) to at most `pixels`, for timing and fidelity."""
    h, w = frame.shape[:2]
    if h * w <= pixels:
        return frame
    from PIL import Image

    s = math.sqrt(pixels / (h * w))
    size = (max(16, int(w * s)), max(16, int(h * s)))
    return np.asarray(Image.fromarray(frame).resize(size, Image.BOX))


@dataclass
class Trial:
    candidate: str
    ms: float | None = None
    psnr_db: float | None = None
    status: str = "ok"  # ok | rejected | unavailable | not timed
    reason: str = ""


@dataclass
class Decision:
    choice: str
    options: dict[str, Any]
    size_class: str
    trials: list[Trial] = field(default_factory=list)
    measured_at: str = ""
    cached: bool = False

    def summary(self) -> str:
        parts = []
        for t in self.trials:
            if t.status == "ok":
                parts.append(f"{t.candidate} {t.ms:.1f} ms" + (f" ({t.psnr_db:.0f} dB)" if t.psnr_db else ""))
            else:
                parts.append(f"{t.candidate}: {t.status}" + (f" ({t.reason})" if t.reason else ""))
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"choice": self.choice, "options": self.options, "size_class": self.size_class,
                "trials": [asdict(t) for t in self.trials], "measured_at": self.measured_at}


def machine_key(threads: int | None) -> str:
    cpu = cpu_info()
    versions = {k: package_version(PACKAGES[k]) for k in ("onnxruntime", "openvino", "torch")}
    return json.dumps({"cpu": cpu["name"], "isa": cpu["isa"], "threads": threads or physical_cores(),
                       "versions": versions}, sort_keys=True)


def choose(trials: list[Trial]) -> Trial | None:
    """The fastest candidate that ran and passed the fidelity rule."""
    ok = [t for t in trials if t.status == "ok" and t.ms is not None]
    return min(ok, key=lambda t: t.ms) if ok else None


def measure(frame: np.ndarray, candidates: list[CandidateSpec], make: Callable[[CandidateSpec], Backend], *,
            budget_s: float = TIME_BUDGET_S, min_psnr: float = MIN_PSNR_DB, max_rounds: int = 20,
            clock: Callable[[], float] = time.perf_counter) -> tuple[list[Trial], dict[str, Backend]]:
    """Run, check and time every candidate on `frame` ((1, H, W, 3)). The first candidate that runs is the
    FP32 reference. The candidates that pass are timed round-robin, one call each per round, until the budget
    is spent: a machine whose load drifts (another process, turbo clocks) then slows them alike instead of
    whichever happened to be timed during the busy second. Returns the trials and the candidates that loaded
    (label -> backend), for reuse."""
    trials: list[Trial] = []
    loaded: dict[str, Backend] = {}
    timing: list[tuple[Trial, Backend]] = []
    reference = None
    for spec in candidates:
        name = label(spec)
        trial = Trial(name)
        trials.append(trial)
        try:
            be = make(spec)
            be.load()
            out = be.infer(frame)  # warm-up, and the fidelity sample
        except StyleEngineError as exc:
            trial.status, trial.reason = "unavailable", str(exc)
            continue
        except Exception as exc:  # a broken runtime install must not stop the choice
            trial.status, trial.reason = "unavailable", f"{type(exc).__name__}: {str(exc)[:120]}"
            continue
        loaded[name] = be
        if reference is None:
            reference = out
        else:
            trial.psnr_db = round(psnr(out, reference), 2)
            if trial.psnr_db < min_psnr:
                trial.status, trial.reason = "rejected", f"{trial.psnr_db:.1f} dB < {min_psnr:.0f} dB vs fp32"
                continue
        timing.append((trial, be))
    runs: dict[str, list[float]] = {t.candidate: [] for t, _ in timing}
    timed_s = 0.0
    for _ in range(max_rounds):
        for trial, be in timing:
            if timed_s >= budget_s:
                break
            t0 = clock()
            be.infer(frame)
            runs[trial.candidate].append(clock() - t0)
            timed_s += runs[trial.candidate][-1]
        if timed_s >= budget_s:
            break
    for trial, _ in timing:
        if runs[trial.candidate]:
            trial.ms = round(1000 * float(np.median(runs[trial.candidate])), 3)
        else:
            trial.status, trial.reason = "not timed", "time budget spent"
    return trials, loaded


class DecisionCache:
    """auto-cpu.json in the cache folder: {machine key: {style key: {size class: decision}}}."""

    def __init__(self) -> None:
        self.path = cache_dir() / DECISIONS_FILE

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def get(self, machine: str, style: str, size: str) -> dict[str, Any] | None:
        return self._read().get(machine, {}).get(style, {}).get(size)

    def put(self, machine: str, style: str, size: str, decision: Decision) -> None:
        data = self._read()
        data.setdefault(machine, {}).setdefault(style, {})[size] = decision.to_dict()
        try:
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(data, indent=1) + "\n")
        except (OSError, StyleEngineError) as exc:
            log.warning("could not save the backend choice in %s (%s)", self.path, exc)


class AutoCpuBackend(Backend):
    """Delegates each frame to the runtime measured fastest (at full fidelity) for its size class."""

    name = "auto"
    devices = ("cpu",)
    precisions = {"cpu": ("auto",)}

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return True, "measures the CPU runtimes on first use"

    def __init__(self, bundle, *, device: str | None = None, precision: str | None = None, model=None,
                 threads: int | None = None, candidates: list[CandidateSpec] | None = None,
                 cache: bool = True):
        super().__init__(bundle, device=device, precision=precision, model=model or (lambda: None))
        self.threads = threads
        self.candidates = candidates if candidates is not None else cpu_candidates()
        self.cache = cache
        self.decisions: dict[str, Decision] = {}
        self._chosen: dict[str, Backend] = {}

    def _make(self, spec: CandidateSpec) -> Backend:
        name, opts = spec
        ok, why = get_backend(name).available_for(device="cpu", **opts)
        if not ok:
            raise StyleEngineError(why)
        extra = {"threads": self.threads} if self.threads and name in ("onnxruntime", "openvino") else {}
        return create_backend(name, self.bundle, device="cpu", **opts, **extra)

    def _style_key(self) -> str:
        fp32 = self.bundle.onnx("fp32")
        return (self.bundle.expected_sha256(fp32.name) if fp32 else None) or str(self.bundle.path)

    def _load(self) -> None:
        # Candidates load on the first frame of each size class; the model file is checked now, so a tampered
        # bundle is refused before the first frame.
        fp32 = self.bundle.onnx("fp32")
        if fp32 is not None:
            self.bundle.verify(fp32)

    def decide(self, batch: np.ndarray) -> Backend:
        size = size_class(batch.shape[1], batch.shape[2])
        be = self._chosen.get(size)
        if be is not None:
            return be
        machine, style = machine_key(self.threads), self._style_key()
        store = DecisionCache() if self.cache else None
        cached = store.get(machine, style, size) if store else None
        if cached is not None:
            decision = Decision(cached["choice"], cached["options"], size,
                                [Trial(**t) for t in cached.get("trials", [])], cached.get("measured_at", ""), True)
            try:
                be = self._make((decision.options["backend"], decision.options["kwargs"]))
                be.load()
            except StyleEngineError as exc:
                log.info("auto: cached choice %s no longer loads (%s); measuring again", decision.choice, exc)
                cached = None
        if cached is None:
            trials, loaded = measure(batch[:1] if batch.shape[1] * batch.shape[2] <= PROXY_PIXELS
                                     else proxy_frame(batch[0])[None], self.candidates, self._make)
            best = choose(trials)
            if best is None:
                raise StyleEngineError("--backend auto: no CPU runtime could run this style: " +
                                       "; ".join(f"{t.candidate}: {t.reason}" for t in trials))
            spec = next(s for s in self.candidates if label(s) == best.candidate)
            decision = Decision(best.candidate, {"backend": spec[0], "kwargs": spec[1]}, size, trials,
                                time.strftime("%Y-%m-%dT%H:%M:%S"))
            be = loaded.pop(best.candidate)
            for other in loaded.values():
                other.close()
            if store:
                store.put(machine, style, size, decision)
        self.decisions[size] = decision
        self._chosen[size] = be
        log.info("auto: %s for frames %s (%s%s)", decision.choice, size,
                 "cached decision; " if decision.cached else "measured: ", decision.summary())
        return be

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return self.decide(batch).infer(batch)

    def last_timings(self) -> dict[str, float] | None:
        return None

    def shape_limits(self) -> ShapeLimits:
        return ShapeLimits()

    def _close(self) -> None:
        for be in self._chosen.values():
            be.close()
        self._chosen.clear()

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["model"] = "chosen per size class by measurement"
        d["choices"] = {size: {"backend": dec.choice, "cached": dec.cached, "trials": dec.summary()}
                        for size, dec in self.decisions.items()}
        if len(self._chosen) == 1:
            inner = next(iter(self._chosen.values())).describe()
            d.update({k: v for k, v in inner.items() if k not in ("backend",)})
            d["backend"] = f"auto -> {inner['backend']} {inner.get('precision') or ''}".strip()
        return d
