"""Every benchmark script's --smoke mode runs end to end on the current API (so API drift breaks CI, not the next
measurement session), and writes only where it is told: never over the recorded numbers in benchmarks/results/.

Each script runs in a subprocess like a person would run it; the smoke modes use tiny sizes, frames and steps.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
RESULTS = BENCH / "results"


def _results_snapshot() -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(RESULTS)): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in RESULTS.rglob("*") if p.is_file()}


def run_smoke(script: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    before = _results_snapshot()
    res = subprocess.run([sys.executable, str(BENCH / script), "--smoke", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=timeout, check=False)
    assert res.returncode == 0, f"{script} --smoke failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    assert _results_snapshot() == before, f"{script} --smoke touched benchmarks/results/"
    return res


def load(path: Path) -> dict:
    assert path.is_file(), f"not written: {path}"
    return json.loads(path.read_text())


def test_limits(tmp_path):
    out = tmp_path / "limits.json"
    run_smoke("limits.py", "--out", str(out))
    doc = load(out)
    assert set(doc["presets"]) >= {"johnson", "fast"}
    assert doc["presets"]["fast"]["macs_per_pixel"] > 0


def test_stream(tmp_path):
    out = tmp_path / "stream.json"
    run_smoke("stream.py", "--out", str(out))
    (run,) = load(out)["runs"]
    assert run["frames"] > 0 and run["pipeline"]["fps"] > 0 and run["naive"]["fps"] > 0
    assert max(run["size"]) <= 96


def test_stability_ab(tmp_path):
    stem = tmp_path / "ab"
    run_smoke("stability_ab.py", "--out", str(stem))
    rows = load(stem.with_suffix(".json"))["rows"]
    assert {r["arm"] for r in rows} == {"control", "stabilized"}
    assert (stem.with_suffix(".md")).is_file()


@pytest.mark.parametrize("part", ["phase_bias", "margin"])
def test_part_cost(tmp_path, part):
    stem = tmp_path / "cost"
    run_smoke("part_cost.py", "--part", part, "--out", str(stem))
    doc = load(stem.with_suffix(".json"))
    rows = doc["results"]["96x64"]
    paired = list(rows.values())
    assert doc["part"] == part
    assert set(rows) == {"eager torch fp32", "raw ORT fp32", "raw OpenVINO default", "engine auto"}
    assert all(v["x_without"] > 0 and v["calls"] >= 5 for v in paired)
    # Through one runtime the two bundles differ by the part alone (`auto` may pick different runtimes for the two
    # on a busy machine, so its row is not held to this).
    raw = [rows["eager torch fp32"], rows["raw ORT fp32"], rows["raw OpenVINO default"]]
    assert all(v["output_difference_levels"]["mean"] > 0 for v in raw)
    if part == "phase_bias":  # a few levels, never more
        assert all(v["output_difference_levels"]["mean"] < 3 and v["output_difference_levels"]["max"] <= 12
                   for v in raw)
    else:  # the shipped margin keeps the border band out: the frames' edges are calmer with it
        assert all(v["border_band"]["with"] < v["border_band"]["without"] for v in raw)


def test_fp16_overflow(tmp_path):
    out = tmp_path / "fp16.json"
    run_smoke("fp16_overflow.py", "--out", str(out))
    doc = load(out)
    assert doc["model"]["trained"] is True  # the first built-in's model.pt was found
    assert {"crosscheck", "photo", "stress", "environment"} <= set(doc)


def test_flicker(tmp_path):
    stem = tmp_path / "flicker"
    run_smoke("flicker.py", "--output", str(stem), "--single-band", "--variant",
              "b=0.5 sigma3=low_sigma:3,recursive:no,motion_boundaries:yes")  # a name may hold "="
    doc = load(stem.with_suffix(".json"))
    (rep,) = doc["reports"]
    assert [v["variant"] for v in rep["variants"]] == ["input", "per-frame", "temporal b=0.5",
                                                       "temporal b=0.5 one band", "temporal b=0.5 sigma3"]
    assert doc["variant_configs"]["temporal b=0.5 sigma3"]["motion_boundaries"] is True
    assert doc["stabilizer_default"]["motion_boundaries"] is False
    assert doc["pipeline"]["fps_off"] > 0
    assert [c["stabilizer"] for c in doc["stabilizer_cost"]] == ["default", "one band"]


def test_train_speed(tmp_path):
    out = tmp_path / "train_speed.json"
    run_smoke("train_speed.py", "--output", str(out))
    doc = load(out)
    assert doc["plain_eager_fp32_steps_per_s"]["windows"] and doc["styleengine_trainer_steps_per_s"]["windows"]


@pytest.mark.slow
def test_engine_grid(tmp_path):
    run_smoke("engine_grid.py", "--out", str(tmp_path))
    doc = load(tmp_path / "engine_grid_cpu.json")
    rows = {(e["backend"], e["precision"]) for e in doc["summary"]}
    assert ("baseline/eager", "fp32") in rows and ("onnxruntime", "fp32") in rows
    assert doc["measured_peak"]["tflops"] > 0
    assert (tmp_path / "engine_grid_cpu.md").is_file()


@pytest.mark.slow
def test_export_parity(tmp_path):
    out = tmp_path / "parity.json"
    run_smoke("export_parity.py", "--out", str(out))
    (model,) = load(out)["models"]
    assert model["trained"] and model["fp32"]["ok"] and model["fp16"]["ok"]


@pytest.mark.slow
def test_export_time(tmp_path):
    out = tmp_path / "export_time.json"
    run_smoke("export_time.py", "--out", str(out))
    doc = load(out)
    assert doc["export_steps"]["onnx_export_fp32_s"] > 0
    (row,) = doc["latency_batch1"]
    assert row["size"] == [64, 64] and row["max_abs_diff_uint8"] <= 1
