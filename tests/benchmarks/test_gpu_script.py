"""benchmarks/gpu.sh, the one device command, run here on a CPU from an UNINSTALLED copy of the repository.

The copy holds what a device run receives (tracked files and untracked ones git does not ignore). This
project's venv has an editable install of styleengine pointing at the development checkout; the tests prove
that the code which ran came from the copy (the shim's record of every module's file), not from there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache",
                                ".ruff_cache", ".whl", ".carry", "gpu-out")
STEP_KEYS = {"name", "status", "seconds", "reason"}


def copy_repo(dst: Path) -> Path:
    """The files a device run gets: git's tracked + untracked-not-ignored files (or the tree minus the usual
    build/cache folders where git is unavailable)."""
    try:
        names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                               capture_output=True, check=True, timeout=60).stdout.decode().split("\0")
    except (OSError, subprocess.SubprocessError):
        shutil.copytree(ROOT, dst, ignore=IGNORE)
        return dst
    for name in filter(None, names):
        src = ROOT / name
        if src.is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
    return dst


@pytest.fixture(scope="module")
def repo_copy(tmp_path_factory) -> Path:
    return copy_repo(tmp_path_factory.mktemp("uninstalled") / "repo").resolve()


def env_for(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "STYLEENGINE_", "OUT", "SMOKE",
                                                                   "BUDGET", "CLIP"))}
    env.update(PYTHONNOUSERSITE="1", PY=sys.executable, TMPDIR=str(tmp), **extra)
    return env


def module_file(repo: Path, code: str, *, shim: bool) -> str:
    cmd = [sys.executable, str(repo / "benchmarks" / "shim_run.py"), "-c", code] if shim else [sys.executable, "-c", code]
    res = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=120, env=env_for(repo.parent))
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def test_shim_imports_the_copy_not_the_installed_package(repo_copy):
    code = ("import styleengine.engine.video.pipeline as p, styleengine.cli, styleengine.train as t; "
            "print(p.__file__ + '|' + styleengine.cli.__file__ + '|' + t.__file__)")
    files = module_file(repo_copy, code, shim=True).split("|")
    assert all(Path(f).resolve().is_relative_to(repo_copy) for f in files), files
    assert files[0] == str(repo_copy / "engine" / "video" / "pipeline.py")
    # Without the shim, the same command from the copy's root gets someone else's stage folders (here the
    # editable install's; on a machine without an install, an ImportError): what the shim is for.
    res = subprocess.run([sys.executable, "-c", "import styleengine.engine as e; print(e.__file__)"], cwd=repo_copy,
                         capture_output=True, text=True, timeout=120, env=env_for(repo_copy.parent))
    assert res.returncode != 0 or not Path(res.stdout.strip()).resolve().is_relative_to(repo_copy)


def load_summary_module():
    return load_script("gpu_summary")


def test_summary_puts_goals_beside_measured_numbers(tmp_path):
    gs = load_summary_module()
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    (work / "steps.jsonl").write_text(json.dumps({"name": "grid-1080p", "status": "ok", "seconds": 40.5, "reason": ""})
                                      + "\n" + '{"name": "stream-720p", "status": "failed", "seconds": 3, "reason": "x"}\n')
    rows = [{"backend": "baseline", "variant": "eager", "precision": "fp32", "size": "1080p", "batch": 8,
             "status": "ok", "fps": 20.0, "speedup": 1.0, "latency_ms_p50": 400.0, "height": 1080, "width": 1920},
            {"backend": "torch", "variant": None, "precision": "fp16", "size": "1080p", "batch": 8, "status": "ok",
             "fps": 420.0, "speedup": 21.0, "latency_ms_p50": 19.0, "height": 1080, "width": 1920},
            {"backend": "torch-variant", "variant": "cudagraph", "precision": "fp16", "size": "1080p", "batch": 8,
             "status": "ok", "fps": 500.0, "speedup": 25.0, "latency_ms_p50": 16.0, "height": 1080, "width": 1920},
            {"backend": "torch", "variant": None, "precision": "fp16", "size": "720p", "batch": 8, "status": "ok",
             "fps": 900.0, "speedup": 20.0, "latency_ms_p50": 9.0, "height": 720, "width": 1280}]
    (work / "bench_1080p.json").write_text(json.dumps({"rows": rows}))
    (work / "train.json").write_text(json.dumps({"device": "cuda", "speedup_median": 2.5, "speedup_best": 2.9}))
    assert gs.main(["--work", str(work), "--out", str(out), "--engine-size", "1080p", "--smoke", "0"]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert [st["name"] for st in s["steps"]] == ["grid-1080p", "stream-720p"]
    assert all(set(st) == STEP_KEYS for st in s["steps"])
    g = {x["goal"]: x for x in s["goals"]}
    # the shipped backend's row counts for the engine goal, not the faster experimental variant
    assert g["engine_fps"]["measured"] == 420.0 and g["engine_fps"]["meets_target"] is True
    assert g["engine_speedup"]["measured"] == 21.0 and g["engine_speedup"]["meets_target"] is True
    assert g["stream_fps"]["measured"] is None and g["stream_fps"]["meets_target"] is None  # not measured
    assert g["train_speedup"]["measured"] == 2.5 and g["train_speedup"]["meets_target"] is False
    assert s["measured"]["engine"]["any_row_best"]["variant"] == "cudagraph"
    assert {p.name for p in out.iterdir()} == {"summary.json", "results.json", "summary.md"}
    # a smoke run's numbers are never held against the targets
    gs.main(["--work", str(work), "--out", str(out), "--engine-size", "1080p", "--smoke", "1"])
    assert all(x["meets_target"] is None for x in json.loads((out / "summary.json").read_text())["goals"])


def run_gpu_sh(repo: Path, out: Path, timeout: float, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(repo / "benchmarks" / "gpu.sh")], cwd=out.parent, capture_output=True,
                          text=True, timeout=timeout, env=env_for(out.parent, OUT=str(out), SMOKE="1", **env))


def test_time_budget_skips_steps_and_still_writes_the_summary(repo_copy, tmp_path):
    out = tmp_path / "out"
    res = run_gpu_sh(repo_copy, out, 300, BUDGET="12")
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    steps = {st["name"]: st for st in s["steps"]}
    assert all(set(st) == STEP_KEYS for st in s["steps"])
    assert "train" in steps and steps["train"]["status"] == "skipped" and "time budget" in steps["train"]["reason"]
    assert steps["pytest"]["status"] == "skipped" and s["finished"] is True


@pytest.mark.slow
def test_smoke_run_from_an_uninstalled_copy(repo_copy, tmp_path):
    """SMOKE=1: every step of the device run on a CPU at tiny sizes; GPU-only steps skipped with reasons."""
    out = tmp_path / "out"
    res = run_gpu_sh(repo_copy, out, 900)
    assert res.returncode == 0, res.stderr[-3000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["smoke"] is True and s["finished"] is True
    steps = {st["name"]: st for st in s["steps"]}
    assert all(set(st) == STEP_KEYS and st["status"] in ("ok", "skipped", "failed") for st in s["steps"])
    failed = {k: v["reason"] for k, v in steps.items() if v["status"] == "failed"}
    assert not failed, failed
    must_run = {"env", "grid-64x96", "train", "pytest", "torch-fp16"}
    if importlib.util.find_spec("av") is not None:
        must_run.add("stream-720p")
    assert {k for k, v in steps.items() if v["status"] == "ok"} >= must_run
    for name in ("peak", "compile-1080p", "export-check"):
        assert steps[name]["status"] == "skipped" and steps[name]["reason"], steps[name]
    # the code that ran came from the copy, in every Python process that imported styleengine
    code = s["code"]
    assert code["all_from_this_copy"] is True and code["repo"] == [str(repo_copy)], code
    assert code["processes"] >= 5 and {"styleengine", "engine", "train"} <= set(code["roots"])
    assert code["outside_repo"] == []
    # the numbers made it into the summary beside the goals (never judged in a smoke run)
    goals = {g["goal"]: g for g in s["goals"]}
    assert goals["engine_fps"]["measured"] > 0 and goals["train_speedup"]["measured"] > 0
    assert all(g["meets_target"] is None for g in goals.values())
    assert s["measured"]["pytest"]["failures"] == 0 and s["measured"]["pytest"]["errors"] == 0
    results = json.loads((out / "results.json").read_text())
    rows = results["benches"]["bench_64x96"]["rows"]
    by = {(r["backend"], r["variant"], r["precision"], r["batch"]) for r in rows if r["status"] == "ok"}
    assert ("baseline", "eager", "fp32", 1) in by and ("torch", None, "fp32", 2) in by
    assert any(r["variant"] == "tf32" and r["status"] == "unavailable" for r in rows)
    assert len(list(out.iterdir())) <= 8  # what a device run returns
    assert (out / "gpu_sh.log").read_text().count("START ") >= 5
