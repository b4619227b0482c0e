"""styleengine bench: statistics, argument errors, the grid on CPU with a tiny network, and the output writers."""

from __future__ import annotations

import csv
import io
import json
import shutil
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from styleengine.core.bundle import BUNDLE_FORMAT, CHECKPOINT, MANIFEST
from styleengine.core.errors import StyleEngineError
from styleengine.engine.backend import REGISTRY, Backend
from styleengine.engine.bench import bench, check_outputs
from styleengine.engine.bench.grid import _measure_row, _row, _Runner, measure, merge_rounds, run_bench
from styleengine.engine.bench.report import CSV_FIELDS, to_csv, to_json, to_markdown
from styleengine.engine.bench.spec import (
    GridSpec,
    check_timing,
    parse_backends,
    parse_batches,
    parse_precisions,
    parse_size,
    parse_sizes,
)
from styleengine.engine.bench.stats import percentile, rates, summarize

# ---------------------------------------------------------------------------------------------- test backends


class UnavailableBackend(Backend):
    name = "fake-missing"

    @classmethod
    def available(cls):
        return False, "fake runtime is not installed (test)"

    def _load(self):
        raise AssertionError("an unavailable backend must not be loaded")

    def _infer(self, batch):
        raise AssertionError("an unavailable backend must not run")


class IdentityBackend(Backend):
    """Returns its input; reports fixed per-stage timings through the optional last_timings() hook. Declares fp16
    too, but its bundle has no fp16 model (refused at load, as a real backend would)."""

    name = "fake-identity"
    precisions = {"cpu": ("fp32", "fp16")}

    @classmethod
    def available(cls):
        return True, "test"

    def _load(self):
        if self.precision not in ("fp32",):
            raise StyleEngineError(f"fake-identity: no {self.precision} model")

    def _infer(self, batch):
        return batch.copy()

    def last_timings(self):
        return {"h2d_ms": 1.0, "compute_ms": 2.0, "d2h_ms": 0.5, "gpu_ms": 3.5}


class WrongShapeBackend(IdentityBackend):
    name = "fake-wrong"

    def _infer(self, batch):
        return batch[:, ::2]


@pytest.fixture
def fake_registry(monkeypatch):
    for name, cls in (("fake-missing", "UnavailableBackend"), ("fake-identity", "IdentityBackend"),
                      ("fake-wrong", "WrongShapeBackend")):
        monkeypatch.setitem(REGISTRY, name, f"{__name__}:{cls}")


@pytest.fixture
def mini_bundle(tmp_path, tiny_checkpoint):
    """The bundle layout's torch part (manifest + model.pt): enough for the torch backend and the baseline."""
    folder = tmp_path / "tiny.engine"
    folder.mkdir()
    shutil.copy2(tiny_checkpoint, folder / CHECKPOINT)
    (folder / MANIFEST).write_text(json.dumps({"format": BUNDLE_FORMAT, "style": {"name": "tiny"}, "preset": "custom",
                                               "arch": {"preset": "custom", "widths": [4, 8, 16], "blocks": 1}}))
    return folder


# -------------------------------------------------------------------------------------------------- statistics


def test_percentiles_on_known_timings():
    times = [float(i) for i in range(1, 101)]  # 1..100 ms
    assert percentile(times, 50) == pytest.approx(50.5)
    assert percentile(times, 90) == pytest.approx(90.1)
    assert percentile(times, 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0
    s = summarize(list(reversed(times)))  # order must not matter
    assert (s["p50"], s["mean"], s["min"], s["max"], s["n"]) == (pytest.approx(50.5), 50.5, 1.0, 100.0, 100)
    rng = np.random.default_rng(3)
    xs = list(rng.exponential(5.0, 37))
    for q in (50, 90, 99):
        assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    assert summarize(xs)["std"] == pytest.approx(float(np.std(xs, ddof=1)))


def test_rates_from_latency():
    r = rates(100.0, batch=2, height=10, width=20, macs_per_pixel=1000.0)
    assert r["fps"] == pytest.approx(20.0)
    assert r["mpix_per_s"] == pytest.approx(20 * 200 / 1e6)
    assert r["tflops"] == pytest.approx(2 * 1000 * 20 * 200 / 1e12)
    assert rates(1.0, batch=1, height=8, width=8, macs_per_pixel=None)["tflops"] is None


# --------------------------------------------------------------------------------------------- argument errors


def test_size_parsing():
    assert parse_size("720p") == parse_size("720P")
    assert (parse_size("4k").height, parse_size("4k").width) == (2160, 3840)
    assert (parse_size("360x640").height, parse_size("360x640").width) == (360, 640)
    assert (parse_size("300×200").height, parse_size("300×200").width) == (300, 200)
    assert (parse_size("96").height, parse_size("96").width) == (96, 96)
    assert [s.label for s in parse_sizes("256, 256,512")] == ["256", "512"]
    for bad in ("huge", "4x", "7x100", "0", "100000x100000"):
        with pytest.raises(StyleEngineError):
            parse_size(bad)


@pytest.mark.parametrize("fn,arg", [
    (parse_batches, "0"), (parse_batches, "two"), (parse_batches, ""),
    (lambda v: parse_precisions(v, "cpu"), "fp8"),
    (lambda v: parse_backends(v, REGISTRY), "tensorflow"),
    (lambda v: parse_backends(v, REGISTRY), "baseline"),
])
def test_bad_grid_arguments(fn, arg):
    with pytest.raises(StyleEngineError):
        fn(arg)


def test_timing_arguments():
    assert check_timing(3, None, None) == (3, None, 2.0)
    assert check_timing(0, 5, None) == (0, 5, None)
    for args in ((3, 5, 1.0), (-1, None, None), (3, 0, None), (3, None, 0.0)):
        with pytest.raises(StyleEngineError):
            check_timing(*args)


def test_precision_defaults_follow_device():
    assert parse_precisions("auto", "cpu") == ["fp32"]
    assert parse_precisions(None, "cuda") == ["fp32", "fp16"]
    assert parse_precisions("FP16,int8", "cpu") == ["fp16", "int8"]


@pytest.mark.parametrize("args,message", [
    (["--size", "big"], "--size"),
    (["--batch", "0"], "--batch"),
    (["--precision", "fp8"], "--precision"),
    (["--backend", "nope"], "--backend"),
    (["--iters", "3", "--seconds", "1"], "alternatives"),
    (["--device", "tpu"], "--device"),
    pytest.param(["--device", "cuda:7"], "no such NVIDIA GPU", id="absent-gpu"),
    (["--variant", "turbo"], "--variant"),
    (["--plot", "-"], "--plot"),
    (["--json", "--csv", "-"], "stdout"),
    (["--save-json", "-", "--markdown", "-"], "stdout"),
])
def test_cli_bad_arguments_exit_2(args, message, mini_bundle):
    from styleengine.cli import app

    result = CliRunner().invoke(app, ["bench", str(mini_bundle), *args])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.output


def test_existing_output_refused_before_measuring(tmp_path, mini_bundle, monkeypatch):
    out = tmp_path / "r.json"
    out.write_text("precious")
    monkeypatch.setattr("styleengine.engine.bench.run_bench", lambda *a, **k: pytest.fail("measured anyway"))
    with pytest.raises(StyleEngineError, match="exists"):
        bench(str(mini_bundle), save_json=out)
    assert out.read_text() == "precious"
    with pytest.raises(StyleEngineError, match="folder does not exist"):
        check_outputs(csv=tmp_path / "missing" / "r.csv")


# ------------------------------------------------------------------------------------------------ timing loop


def test_measure_counts_iterations_and_collects_stage_timings():
    calls = []
    stage_values = iter(range(1, 100))

    def run(x):
        calls.append(x)
        return x

    def timings():
        v = float(next(stage_values))
        return {"gpu_ms": v, "compute_ms": v / 2, "ignored": 1.0}

    inputs = [np.zeros((1, 8, 8, 3), np.uint8), np.ones((1, 8, 8, 3), np.uint8)]
    wall, stages = measure(_Runner(run, timings, None, False, "test"), inputs, warmup=2, iters=10, seconds=None)
    assert len(calls) == 12 and len(wall) == 10 and all(t >= 0 for t in wall)
    assert calls[0] is inputs[0] and calls[1] is inputs[1]  # inputs alternate
    assert stages["gpu_ms"] == [float(i) for i in range(1, 11)] and "ignored" not in stages
    assert len(stages["cpu_ms"]) == 10 and all(t >= 0 for t in stages["cpu_ms"])  # process CPU time per call

    t0 = time.perf_counter()
    wall, _ = measure(_Runner(run, None, None, False, "test"), inputs, warmup=0, iters=None, seconds=0.05, min_iters=4)
    assert len(wall) >= 4 and time.perf_counter() - t0 < 5


def test_row_from_hooked_backend_reports_gpu_stages(fake_registry):
    spec = GridSpec(["fake-identity"], ["fp32"], parse_sizes("16x32"), [2], "cpu", warmup=1, iters=7, seconds=None)
    row = _measure_row(_row("fake-identity", "fp32", "cpu", spec.sizes[0], 2),
                       _Runner(IdentityBackend(None).infer, IdentityBackend(None).last_timings, None, False, "hook"),
                       spec.sizes[0], 2, spec, macs=100.0)
    assert row["status"] == "ok" and row["iters"] == 7
    assert (row["gpu_ms_p50"], row["h2d_ms_p50"], row["compute_ms_p50"], row["d2h_ms_p50"]) == (3.5, 1.0, 2.0, 0.5)
    assert row["gpu_timing"] == "hook"
    assert row["fps"] == pytest.approx(2000.0 / row["latency_ms_p50"], rel=1e-3)
    assert row["tflops"] == pytest.approx(2 * 100 * row["fps"] * 16 * 32 / 1e12, rel=1e-2)
    assert row["host_peak_mib"] > 0


# --------------------------------------------------------------------------------------------- the whole grid


def test_grid_on_cpu_with_tiny_network(tiny_bundle, fake_registry, tmp_path):
    import torch

    from styleengine.cli import app

    threads_before = torch.get_num_threads()
    out = {k: tmp_path / f"r.{k}" for k in ("json", "csv", "md")}
    result = CliRunner().invoke(app, [
        "bench", str(tiny_bundle), "--backend", "torch,onnxruntime,fake-identity,fake-missing,fake-wrong",
        "--precision", "fp32,fp16", "--size", "16x24,32", "--batch", "1,2", "--device", "cpu",
        "--warmup", "1", "--iters", "3", "--threads", "1", "--save-json", str(out["json"]), "--csv", str(out["csv"]),
        "--markdown", str(out["md"])])
    assert result.exit_code == 0, result.output

    doc = json.loads(out["json"].read_text())
    assert doc["format"] == "styleengine.bench/1"
    assert doc["environment"]["cpu"]["usable_cores"] >= 1 and "packages" in doc["environment"]
    assert doc["source"]["weights"] == "trained" and doc["source"]["macs_per_pixel"] > 0
    rows = doc["rows"]
    ok = [r for r in rows if r["status"] == "ok"]
    shapes = {(s, b) for s in ("16x24", "32x32") for b in (1, 2)}
    # baseline and the two working fp32 backends: one measured row per size x batch each
    for name in ("baseline", "torch", "onnxruntime", "fake-identity"):
        assert {(r["size"], r["batch"]) for r in ok if r["backend"] == name} == shapes, name
    for r in ok:
        assert r["iters"] == 3 and r["warmup"] == 1 and r["device"] == "cpu"
        assert 0 < r["latency_ms_min"] <= r["latency_ms_p50"] <= r["latency_ms_p90"] <= r["latency_ms_p99"] <= r["latency_ms_max"]
        assert r["fps"] == pytest.approx(1000.0 * r["batch"] / r["latency_ms_p50"], rel=1e-3)
        assert r["mpix_per_s"] == pytest.approx(r["fps"] * r["height"] * r["width"] / 1e6, rel=1e-3)
        assert r["tflops"] > 0 and r["host_peak_mib"] > 0 and r["speedup"] > 0 and r["cpu_ms_p50"] >= 0
        base = next(b for b in ok if b["backend"] == "baseline" and (b["size"], b["batch"]) == (r["size"], r["batch"]))
        assert r["speedup"] == pytest.approx(base["latency_ms_p50"] / r["latency_ms_p50"], rel=1e-2)
    assert all(r["speedup"] == 1.0 for r in ok if r["backend"] == "baseline")
    # parity with the baseline's output on the same input: FP32 paths agree to rounding, identity does not
    for r in ok:
        if r["backend"] in ("torch", "onnxruntime") and r["precision"] == "fp32":
            assert r["max_abs_diff"] <= 2 and r["mean_abs_diff"] < 0.1, r
    assert all(r["mean_abs_diff"] > 5 for r in ok if r["backend"] == "fake-identity")
    assert all("max_abs_diff" not in r for r in ok if r["backend"] == "baseline")
    assert [r for r in ok if r["backend"] == "fake-identity"][0]["compute_ms_p50"] == 2.0
    # --threads reaches ONNX Runtime and torch, and torch's setting is restored afterwards
    assert all(r["backend_info"]["threads"] == 1 for r in ok if r["backend"] == "onnxruntime")
    assert doc["spec"]["threads"] == 1 and doc["environment"]["torch_threads"] == 1
    import torch

    assert torch.get_num_threads() == threads_before
    why = {(r["backend"], r["precision"]): r for r in rows if r["status"] != "ok"}
    assert why[("fake-missing", None)]["status"] == "unavailable"
    assert "not installed (test)" in why[("fake-missing", None)]["reason"]
    assert "fp16" in why[("torch", "fp16")]["reason"]  # the torch backend refuses fp16 on the CPU
    assert "no fp16 model" in why[("fake-identity", "fp16")]["reason"]
    wrong = [r for r in rows if r["backend"] == "fake-wrong" and r["precision"] == "fp32"]
    assert len(wrong) == 4 and all(r["status"] == "failed" and "returned uint8" in r["reason"] for r in wrong)

    text = out["csv"].read_text()
    assert text.startswith("# styleengine") and "# environment: {" in text
    table = list(csv.DictReader(io.StringIO("".join(ln for ln in text.splitlines(True) if not ln.startswith("#")))))
    assert list(table[0]) == CSV_FIELDS and len(table) == len(rows)
    assert {r["backend"] for r in table} >= {"baseline", "torch", "fake-missing"}
    first = next(r for r in table if r["backend"] == "torch" and r["status"] == "ok")
    assert float(first["latency_ms_p99"]) >= float(first["latency_ms_p50"]) > 0 and float(first["fps"]) > 0

    md = out["md"].read_text()
    header = next(ln for ln in md.splitlines() if ln.startswith("| backend"))
    for col in ("p50 ms", "p90 ms", "p99 ms", "mean ms", "frames/s", "MP/s", "TFLOP/s", "× baseline", "host MiB"):
        assert col in header
    body = [ln for ln in md.splitlines() if ln.startswith("| ") and not ln.startswith("| backend")]
    assert len(body) == len(ok) and all(ln.count("|") == header.count("|") for ln in body)
    assert "fake-missing: unavailable: fake runtime is not installed (test)" in md
    assert "Environment:" in md and "CPU:" in md
    # the terminal table names the unavailable backend too
    assert "fake-missing" in result.output and "baseline" in result.output


def test_random_preset_says_so_and_json_to_stdout():
    from styleengine.cli import app

    result = CliRunner().invoke(app, ["--quiet", "bench", "fast", "--backend", "torch", "--size", "16", "--device",
                                      "cpu", "--iters", "2", "--warmup", "0", "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["source"]["weights"].startswith("random (preset fast")
    assert any("RANDOM WEIGHTS" in n for n in doc["notes"])
    assert doc["source"]["macs_per_pixel"] == 42336.0
    assert {r["backend"] for r in doc["rows"] if r["status"] == "ok"} == {"baseline", "torch"}
    with pytest.raises(StyleEngineError, match="unknown preset"):
        run_bench("preset:huge", backend="torch", device="cpu")


def test_report_writers_agree_and_plot(mini_bundle, tmp_path):
    report = run_bench(str(mini_bundle), backend="torch", size="16,24x16", batch="1", device="cpu", warmup=0, iters=2, threads=1)
    assert json.loads(to_json(report))["rows"] == json.loads(json.dumps(report.rows, default=str))
    assert to_csv(report).count("\nbaseline,") == 2 and "baseline" in to_markdown(report)
    pytest.importorskip("matplotlib")
    from styleengine.engine.bench import write_outputs

    png = tmp_path / "lat.png"
    js = tmp_path / "r.json"
    write_outputs(report, plot=png, save_json=js)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import os

    mask = os.umask(0)
    os.umask(mask)
    assert all((p.stat().st_mode & 0o777) == (0o666 & ~mask) for p in (png, js))  # not mkstemp's 0600
    with pytest.raises(StyleEngineError, match="exists"):
        check_outputs(plot=png)


def test_torch_variants_on_cpu(mini_bundle):
    """fp16-cl runs (as FP32 channels_last on a CPU); CUDA graphs are listed as unavailable with the reason."""
    report = run_bench(str(mini_bundle), backend=[], size="16", device="cpu", warmup=0, iters=2,
                       variant="fp16-cl,cudagraph", threads=1)
    by = {r["variant"]: r for r in report.rows}
    assert by["fp16-cl"]["status"] == "ok" and by["fp16-cl"]["precision"] == "fp32"
    assert by["cudagraph"]["status"] == "unavailable" and "CUDA" in by["cudagraph"]["reason"]
    assert by["eager"]["backend"] == "baseline"


def test_rounds_pool_samples_and_keep_failures(mini_bundle, fake_registry):
    report = run_bench(str(mini_bundle), backend="fake-identity", size="16", device="cpu", warmup=0, iters=2,
                       threads=1, rounds=2)
    ok = [r for r in report.rows if r["status"] == "ok"]
    assert {r["backend"] for r in ok} == {"baseline", "fake-identity"} and len(report.rows) == 2
    for r in ok:
        assert r["iters"] == 4 and len(r["round_p50_ms"]) == 2 and "_samples" not in r
        assert min(r["round_p50_ms"]) <= r["latency_ms_max"]
    assert report.spec["rounds"] == 2

    def cell(status, p50=None, wall=()):
        r = _row("x", "fp32", "cpu", parse_size("8"), 1, status=status, reason="" if status == "ok" else "boom")
        if status == "ok":
            r.update(latency_ms_p50=p50, _samples={"wall": list(wall)}, _timing_source="t", host_peak_mib=1.0)
        return r

    merged = merge_rounds([[cell("ok", 2.0, [1.0, 3.0])], [cell("failed")], [cell("ok", 5.0, [5.0, 5.0])]], "cpu", None)
    assert len(merged) == 1 and merged[0]["status"] == "ok" and merged[0]["iters"] == 4
    assert merged[0]["latency_ms_p50"] == 4.0 and merged[0]["round_p50_ms"] == [2.0, 5.0]
    assert "failed in a later round: boom" in merged[0]["reason"]
    with pytest.raises(StyleEngineError, match="--rounds"):
        run_bench(str(mini_bundle), backend="torch", device="cpu", rounds=0)


def test_terminal_table_lists_measured_and_unmeasured_rows():
    from styleengine.cli.cmd_bench import _print_table
    from styleengine.engine.bench import BenchReport

    ok = _row("onnxruntime", "fp32", "cpu", parse_size("16x24"), 2)
    ok.update(latency_ms_p50=1.25, latency_ms_p90=1.5, latency_ms_p99=2.0, latency_ms_mean=1.3, fps=1600.0,
              speedup=2.5, host_peak_mib=100.0)
    missing = _row("tensorrt", "fp32", "cuda", None, None, status="unavailable",
                   reason="the tensorrt backend runs fp16 only")
    env = {"styleengine": "x", "python": "3", "platform": "linux", "cpu": {"name": "cpu"}, "packages": {}, "gpus": []}
    report = BenchReport({"style": "tiny", "weights": "random (preset fast, seed 0)"}, {"device": "cpu"}, [ok, missing],
                         env, None, None, "2025-01-01T00:00:00+00:00", 1.0, ["a note"])
    buf = io.StringIO()
    _print_table(report, buf)
    text = buf.getvalue()
    assert "RANDOM WEIGHTS" in text and "p50 ms" in text and "1.25" in text and "frames/s" in text
    assert "GPU ms" not in text  # no GPU columns when no row has them
    assert "tensorrt fp32: unavailable: the tensorrt backend runs fp16 only" in text
    assert "a note" in text and "GPU: none" in text


@pytest.fixture
def one_gpu(monkeypatch):
    """The CUDA driver reports one GPU (so --device cuda parses); nothing else about the machine changes."""
    import styleengine.core.hostinfo as hostinfo
    from styleengine.engine.bench import spec

    monkeypatch.setattr(hostinfo, "cuda_device_count", lambda: 1)
    monkeypatch.setattr(spec, "cuda_device_count", lambda: 1)


def test_gpu_row_without_gpu_onnxruntime_is_unavailable_before_any_work(one_gpu, monkeypatch):
    from styleengine.engine import backend_onnxruntime as bo
    from styleengine.engine.bench import grid, source

    monkeypatch.setattr(bo.OnnxRuntimeBackend, "gpu_available",
                        classmethod(lambda cls: (False, "this onnxruntime build has no GPU providers (test)")))
    monkeypatch.setattr(bo.OnnxRuntimeBackend, "_load", lambda self: pytest.fail("loaded anyway"))
    monkeypatch.setattr(grid, "create_backend", lambda *a, **k: pytest.fail("created a backend anyway"))
    monkeypatch.setattr(source, "build_bundle", lambda *a, **k: pytest.fail("exported ONNX for a row that cannot run"))
    report = run_bench("fast", backend="onnxruntime", precision="fp16,fp32", size="16", device="cuda", warmup=0,
                       iters=1, baseline=False)
    (row,) = report.rows
    assert (row["backend"], row["status"], row["device"]) == ("onnxruntime", "unavailable", "cuda")
    assert "no GPU providers (test)" in row["reason"]


def test_tensorrt_fp32_row_is_unavailable_never_labelled(one_gpu, mini_bundle, monkeypatch):
    from styleengine.engine import backend_tensorrt as bt

    monkeypatch.setattr(bt.TensorRTBackend, "available", classmethod(lambda cls: (True, "TensorRT (test)")))
    monkeypatch.setattr(bt, "cuda_device_count", lambda: 1)
    loads = []

    def fake_load(self):
        loads.append(self.precision)
        raise StyleEngineError("fake TensorRT: no plan (test)")

    monkeypatch.setattr(bt.TensorRTBackend, "_load", fake_load)
    report = run_bench(str(mini_bundle), backend="tensorrt", precision="fp32,fp16", size="16", device="cuda",
                       warmup=0, iters=1, baseline=False)
    rows = {r["precision"]: r for r in report.rows}
    assert set(rows) == {"fp32", "fp16"} and all(r["status"] == "unavailable" for r in rows.values())
    assert "runs fp16 only" in rows["fp32"]["reason"] and "fp32" in rows["fp32"]["reason"]
    assert loads == ["fp16"]  # the fp32 request never reached a load: no plan can be labelled fp32
    assert not [r for r in report.rows if r["status"] == "ok" and r["precision"] == "fp32"]


def _cuda_torch() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda_torch(), reason="needs torch with CUDA and an NVIDIA GPU")
def test_grid_on_cuda_reports_gpu_stages_and_parity(mini_bundle):
    """Not run in the development session (no GPU): the CUDA paths of the baseline, variants and torch backend."""
    report = run_bench(str(mini_bundle), backend="torch", precision="fp32,fp16", size="64x96", batch="1,2",
                       device="cuda", warmup=2, iters=5, variant="fp16-cl,cudagraph")
    ok = [r for r in report.rows if r["status"] == "ok"]
    assert {(r["backend"], r["variant"]) for r in ok} >= {("baseline", "eager"), ("torch-variant", "fp16-cl"),
                                                          ("torch-variant", "cudagraph"), ("torch", None)}
    for r in ok:
        assert r["gpu_ms_p50"] > 0 and r["compute_ms_p50"] > 0 and r["h2d_ms_p50"] >= 0, r
        assert r["device_peak_mib"] > 0 and r["device_mem_scope"] == "torch allocator peak"
        if r["backend"] != "baseline":
            assert r["mean_abs_diff"] < 2, r  # FP16 paths stay within rounding of eager FP32 on average
