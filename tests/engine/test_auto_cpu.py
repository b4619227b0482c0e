"""`--backend auto` on a CPU chooses by measurement (engine/auto_cpu.py), driven here by fake runtimes with
fake timings and fake fidelity."""

from __future__ import annotations

import numpy as np
import pytest

from styleengine.core.bundle import load_bundle
from styleengine.core.errors import StyleEngineError
from styleengine.engine import auto_cpu
from styleengine.engine.backend import Backend


class FakeClock:
    def __init__(self, busy_until: float = 0.0):
        self.t = 0.0
        self.busy_until = busy_until  # every call takes twice as long before this time (another process)

    def __call__(self):
        return self.t

    def spend(self, seconds: float) -> None:
        self.t += seconds * (2.0 if self.t < self.busy_until else 1.0)


def fake_runtime(clock: FakeClock, ms: float, noise: float = 0.0, fails: str | None = None):
    """A backend whose infer 'takes' `ms` on the fake clock and adds `noise` levels of error to the truth."""

    class Fake(Backend):
        name = "fake"

        @classmethod
        def available(cls):
            return True, ""

        def _load(self):
            if fails:
                raise StyleEngineError(fails)

        def _infer(self, batch):
            clock.spend(ms / 1000)
            out = 255 - batch.astype(np.int16)
            if noise:
                out = out + np.random.default_rng(0).normal(0, noise, out.shape).round().astype(np.int16)
            return np.clip(out, 0, 255).astype(np.uint8)

    return Fake


@pytest.fixture()
def frame():
    return np.random.default_rng(1).integers(0, 256, (1, 48, 64, 3), dtype=np.uint8)


def run(specs, frame, tiny_bundle, budget=3.0, busy_until=0.0):
    clock = FakeClock(busy_until)
    table = {auto_cpu.label(s): fake_runtime(clock, *s[2]) for s in specs}
    cands = [(s[0], s[1]) for s in specs]
    trials, loaded = auto_cpu.measure(frame, cands, lambda spec: table[auto_cpu.label(spec)](
        load_bundle(tiny_bundle), model=lambda: None), budget_s=budget, clock=clock)
    return {t.candidate: t for t in trials}, loaded


def test_fastest_candidate_that_keeps_fidelity_wins(frame, tiny_bundle):
    trials, loaded = run([("onnxruntime", {"precision": "fp32"}, (100.0,)),
                          ("openvino", {"precision": "fp32"}, (40.0,)),
                          ("onnxruntime", {"precision": "int8"}, (10.0, 8.0))],  # fastest but ~30 dB
                         frame, tiny_bundle)
    assert trials["onnxruntime int8"].status == "rejected" and trials["onnxruntime int8"].psnr_db < 40
    assert "dB < 40 dB" in trials["onnxruntime int8"].reason
    assert trials["openvino fp32"].psnr_db == 99.0 and trials["openvino fp32"].ms == 40.0
    assert auto_cpu.choose(list(trials.values())).candidate == "openvino fp32"
    assert set(loaded) == {"onnxruntime fp32", "openvino fp32", "onnxruntime int8"}


def test_a_faithful_fast_candidate_wins_and_broken_ones_report_why(frame, tiny_bundle):
    trials, _ = run([("onnxruntime", {"precision": "fp32"}, (100.0,)),
                     ("openvino", {"precision": "bf16"}, (20.0, 0.5)),  # tiny error: ~54 dB, passes
                     ("torch", {"precision": "fp32"}, (5.0, 0.0, "torch is not installed"))], frame, tiny_bundle)
    assert trials["openvino bf16"].status == "ok" and trials["openvino bf16"].psnr_db > 45
    assert trials["torch fp32"].status == "unavailable" and "not installed" in trials["torch fp32"].reason
    assert auto_cpu.choose(list(trials.values())).candidate == "openvino bf16"


def test_the_time_budget_bounds_the_measurement(frame, tiny_bundle):
    trials, _ = run([("onnxruntime", {"precision": "fp32"}, (2500.0,)),
                     ("openvino", {"precision": "fp32"}, (900.0,)),
                     ("onnxruntime", {"precision": "int8"}, (100.0,))], frame, tiny_bundle, budget=3.0)
    assert trials["onnxruntime fp32"].ms == 2500.0  # one timed run at least
    assert trials["onnxruntime int8"].status == "not timed"
    assert auto_cpu.choose(list(trials.values())).candidate == "openvino fp32"


def test_load_drift_hits_every_candidate_alike(frame, tiny_bundle):
    """The machine is busy for the first 1.5 s: timed one after the other, the candidate timed first (here the
    truly faster one) would look slow and lose; timed round-robin, the busy rounds hit both alike."""
    trials, _ = run([("openvino", {"precision": "fp32"}, (90.0,)),
                     ("onnxruntime", {"precision": "fp32"}, (100.0,))], frame, tiny_bundle, busy_until=1.5)
    ov, ort = trials["openvino fp32"], trials["onnxruntime fp32"]
    assert ov.ms == pytest.approx(90.0) and ort.ms == pytest.approx(100.0)  # medians of the quiet rounds
    assert auto_cpu.choose(list(trials.values())).candidate == "openvino fp32"


def test_missing_openvino_drops_out_with_its_reason(monkeypatch):
    from styleengine.engine import backend_openvino

    monkeypatch.setattr(backend_openvino, "module_available", lambda name: False)
    ok, why = backend_openvino.OpenVinoBackend.available()
    assert not ok and "pip install openvino" in why


def test_decision_is_cached_and_a_cache_hit_skips_timing(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEENGINE_CACHE", str(tmp_path))
    calls = []
    real_measure = auto_cpu.measure

    def counting(*a, **k):
        calls.append(1)
        return real_measure(*a, **k)

    monkeypatch.setattr(auto_cpu, "measure", counting)
    bundle = load_bundle(tiny_bundle)
    img = np.random.default_rng(2).integers(0, 256, (1, 40, 52, 3), dtype=np.uint8)
    cands = [("onnxruntime", {"precision": "fp32"}), ("onnxruntime", {"precision": "int8"})]
    with auto_cpu.AutoCpuBackend(bundle, candidates=cands) as be:
        out = be.infer(img)
        assert out.shape == img.shape and len(calls) == 1
        be.infer(img)  # same size class: no new measurement
        assert len(calls) == 1
        d = be.describe()
        assert d["backend"].startswith("auto -> onnxruntime") and list(d["choices"]) == ["up to 0.3 MP"]
    stored = (tmp_path / "auto-cpu.json").read_text()
    assert "onnxruntime fp32" in stored and "psnr_db" in stored
    with auto_cpu.AutoCpuBackend(bundle, candidates=cands) as be:  # a new process would start like this
        be.infer(img)
        assert len(calls) == 1 and next(iter(be.decisions.values())).cached


def test_size_classes_and_proxy_frames():
    assert auto_cpu.size_class(240, 320) == "up to 0.3 MP"
    assert auto_cpu.size_class(720, 1280) == "up to 1 MP"
    assert auto_cpu.size_class(2160, 3840) == "over 4 MP"
    big = np.zeros((720, 1280, 3), np.uint8)
    small = auto_cpu.proxy_frame(big)
    assert small.shape[0] * small.shape[1] <= auto_cpu.PROXY_PIXELS and small.shape[1] / small.shape[0] == pytest.approx(16 / 9, rel=0.02)
