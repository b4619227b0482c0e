"""Deployment hardening through the CLI: tampered bundles are refused, every write failure is one `error:` line
(per file in a folder run, which goes on), an unusable cache is one line, messages name the cause and the fix,
and progress is plain lines on a non-terminal stderr."""

from __future__ import annotations

import errno
import os
import pickle
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from styleengine.cli import app

TRAIN_ASSETS = Path(__file__).resolve().parents[1] / "assets" / "train"


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """Each test starts with an empty cache of its own (first-use work happens here, not in ~/.cache)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("STYLEENGINE_CACHE", str(cache))
    return cache


def _save(path: Path, w: int = 24, h: int = 18, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def stylize(runner, *args):
    return runner.invoke(app, ["stylize", *map(str, args)], catch_exceptions=False)


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def assert_one_line_error(result, *needles: str) -> str:
    """Exit 2, exactly one `error:` line on stderr, no traceback, nothing on stdout; returns the line."""
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# ------------------------------------------------------------------------------------ 1. bundle integrity
def _swapped(src: Path, donor: Path, name: str, dst: Path) -> Path:
    """A copy of bundle `src` whose file `name` is the (valid, same-architecture) one of bundle `donor`."""
    shutil.copytree(src, dst)
    shutil.copyfile(donor / name, dst / name)
    assert (dst / name).read_bytes() != (src / name).read_bytes()
    return dst


@pytest.mark.parametrize("backend", ["onnxruntime", "auto"])
def test_swapped_onnx_model_is_refused_before_anything_is_written(runner, tiny_bundle, tiny_bundle_b, tmp_path,
                                                                  backend):
    bad = _swapped(tiny_bundle, tiny_bundle_b, "model_fp32.onnx", tmp_path / "bad.engine")
    src = _save(tmp_path / "in.png")
    r = stylize(runner, src, "-o", tmp_path / "out.png", "--style", bad, "--backend", backend)
    line = assert_one_line_error(r, "model_fp32.onnx", "does not match its manifest")
    assert len(line) < 300 and not (tmp_path / "out.png").exists()
    # a folder run stops at once too (not one failure per file)
    _save(tmp_path / "many" / "b.png", seed=1)
    _save(tmp_path / "many" / "a.png")
    r = stylize(runner, tmp_path / "many", "-o", tmp_path / "styled", "--style", bad, "--backend", backend)
    assert_one_line_error(r, "model_fp32.onnx")
    assert not list(tmp_path.glob("styled/**/*.png"))


def test_swapped_checkpoint_is_refused_by_the_torch_backend(runner, tiny_bundle, tiny_bundle_b, tmp_path):
    pytest.importorskip("torch")
    bad = _swapped(tiny_bundle, tiny_bundle_b, "model.pt", tmp_path / "bad.engine")
    src = _save(tmp_path / "in.png")
    r = stylize(runner, src, "-o", tmp_path / "out.png", "--style", bad, "--backend", "torch")
    assert_one_line_error(r, "model.pt", "does not match its manifest")
    assert not (tmp_path / "out.png").exists()


def test_export_refuses_a_swapped_bundle(runner, tiny_bundle, tiny_bundle_b, tmp_path):
    bad = _swapped(tiny_bundle, tiny_bundle_b, "model_fp32.onnx", tmp_path / "bad.engine")
    for args, target in ((["--onnx", tmp_path / "m.onnx"], tmp_path / "m.onnx"),
                         (["--triton", tmp_path / "repo"], tmp_path / "repo")):
        r = runner.invoke(app, ["export", str(bad), *map(str, args)], catch_exceptions=False)
        assert_one_line_error(r, "model_fp32.onnx")
        assert not target.exists() or not any(target.rglob("*.onnx"))


# ------------------------------------------------------------------------------------ 2. write failures
def _folder(tmp_path: Path, n: int = 3) -> Path:
    for i in range(n):
        _save(tmp_path / "photos" / f"p{i}.png", seed=i)
    return tmp_path / "photos"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file modes (the simulated test below covers it)")
def test_read_only_output_folder_fails_per_file(runner, tiny_bundle, tmp_path):
    photos = _folder(tmp_path)
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        r = stylize(runner, photos, "-o", out, "--style", tiny_bundle, "--backend", "onnxruntime")
    finally:
        out.chmod(0o755)
    assert r.exit_code == 2 and "Traceback" not in r.stderr
    lines = error_lines(r)
    assert len(lines) == 3 and all("Permission denied" in line for line in lines), r.stderr


def test_unwritable_output_folder_simulated_fails_per_file_and_the_run_continues(runner, tiny_bundle, tmp_path,
                                                                                  monkeypatch):
    """What a read-only folder does even as root: the temp file cannot be created in one folder only."""
    photos = _folder(tmp_path)
    (photos / "locked").mkdir()
    _save(photos / "locked" / "x.png", seed=9)
    out = tmp_path / "out"
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, **kw):
        if Path(kw.get("dir") or "").name == "locked":
            raise PermissionError(13, "Permission denied", str(kw.get("dir")))
        return real_mkstemp(*args, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    r = stylize(runner, photos, "-o", out, "--style", tiny_bundle, "--backend", "onnxruntime")
    assert r.exit_code == 2 and "Traceback" not in r.stderr
    lines = error_lines(r)
    assert len(lines) == 1 and "locked/x.png" in lines[0] and "Permission denied" in lines[0], r.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["p0.png", "p1.png", "p2.png"]
    assert "1 of 4 file(s) failed" in r.stderr
    assert not list(out.rglob(".*"))  # no temp files left


def test_disk_full_while_writing_fails_that_file_and_leaves_no_partial_file(runner, tiny_bundle, tmp_path,
                                                                           monkeypatch):
    """ENOSPC in the middle of an image write (simulated): one line for that file, no half-written output."""
    photos = _folder(tmp_path)
    out = tmp_path / "out"
    real_save = Image.Image.save

    def save(self, fp, *args, **kw):
        if "p1" in str(fp):
            Path(fp).write_bytes(b"half a file")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *args, **kw)

    monkeypatch.setattr(Image.Image, "save", save)
    r = stylize(runner, photos, "-o", out, "--style", tiny_bundle, "--backend", "onnxruntime")
    assert r.exit_code == 2 and "Traceback" not in r.stderr
    lines = error_lines(r)
    assert len(lines) == 1 and "p1.png" in lines[0] and "No space left on device" in lines[0], r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p2.png"]  # no p1, no temp file


def test_output_whose_parent_is_a_file(runner, tiny_bundle, tmp_path):
    src = _save(tmp_path / "in.png")
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("a file, not a folder")
    r = stylize(runner, src, "-o", blocker / "x.jpg", "--style", tiny_bundle, "--backend", "onnxruntime")
    assert_one_line_error(r, "somefile.txt", "is a file")
    assert "file(s) failed" not in r.stderr  # one input: its own line says it all
    # a folder output under that file: each file says so, the run still ends normally with exit 2
    photos = _folder(tmp_path, 2)
    r = stylize(runner, photos, "-o", blocker / "styled", "--style", tiny_bundle, "--backend", "onnxruntime")
    assert r.exit_code == 2 and "Traceback" not in r.stderr
    assert len(error_lines(r)) == 2 and all("is a file" in line for line in error_lines(r))
    assert blocker.read_text() == "a file, not a folder"


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_in_the_way_of_one_output_fails_that_file_only(runner, tiny_bundle, tmp_path, overwrite):
    photos = _folder(tmp_path)
    out = tmp_path / "out"
    (out / "p1.png").mkdir(parents=True)  # a folder where p1's output should go
    r = stylize(runner, photos, "-o", out, "--style", tiny_bundle, "--backend", "onnxruntime",
                *(["--overwrite"] if overwrite else []))
    assert r.exit_code == 2 and "Traceback" not in r.stderr
    lines = error_lines(r)
    assert len(lines) == 1 and "p1.png" in lines[0] and "folder" in lines[0], r.stderr
    assert "--overwrite" not in lines[0]  # it would not help
    assert (out / "p0.png").is_file() and (out / "p2.png").is_file() and (out / "p1.png").is_dir()


def _cache_under_a_file(tmp_path: Path, monkeypatch) -> Path:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    monkeypatch.setenv("STYLEENGINE_CACHE", str(blocker / "cache"))
    return blocker


@pytest.mark.parametrize("case", ["auto", "auto-folder", "int8", "checkpoint", "blend"])
def test_unusable_cache_is_one_line_on_first_use(runner, tiny_bundle, tiny_bundle_b, tiny_checkpoint, tmp_path,
                                                 monkeypatch, case):
    """STYLEENGINE_CACHE under a regular file fails even as root; whatever first needs the cache says so once."""
    _cache_under_a_file(tmp_path, monkeypatch)
    style, extra = {
        "auto": (tiny_bundle, []),                                # the auto backend's measured decision
        "auto-folder": (tiny_bundle, []),
        "int8": (tiny_bundle, ["--backend", "onnxruntime", "--precision", "int8"]),  # the cached INT8 model
        "checkpoint": (tiny_checkpoint, ["--backend", "onnxruntime"]),              # the bundle built from .pt
        "blend": (f"{tiny_bundle}:0.5,{tiny_bundle_b}:0.5", ["--backend", "onnxruntime"]),
    }[case]
    inputs = [_folder(tmp_path, 2)] if case == "auto-folder" else [_save(tmp_path / "in.png")]
    out = tmp_path / ("styled" if case == "auto-folder" else "out.png")
    r = stylize(runner, *inputs, "-o", out, "--style", style, *extra)
    assert_one_line_error(r, "cache", "STYLEENGINE_CACHE")
    assert "file(s) failed" not in r.stderr
    assert not out.exists() or not list(out.rglob("*.png"))


# ------------------------------------------------------------------------------------ 4. messages
FIX = re.compile(r"pip install|--precision|--device|--backend|use |install ")


def _extras() -> set[str]:
    import tomllib

    cfg = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    return set(cfg["project"].get("optional-dependencies", {}))


def check_cause_and_fix(line: str, cause: str) -> None:
    assert re.search(cause, line, re.I), f"no cause ({cause!r}) in: {line}"
    assert FIX.search(line), f"no fix (pip extra, another --precision/--device/--backend) in: {line}"
    for extra in re.findall(r"styleengine\[([\w,-]+)\]", line):
        assert set(extra.split(",")) <= _extras(), f"names a pip extra pyproject.toml does not define: {line}"


REQUESTS = {
    "tensorrt": (["--backend", "tensorrt"], r"not installed|no NVIDIA GPU"),
    "openvino-int8": (["--backend", "openvino", "--precision", "int8"], r"int8|not installed"),
    "torch-fp16-cpu": (["--backend", "torch", "--precision", "fp16"], r"fp16|not installed"),
    "cuda": (["--device", "cuda"], r"no NVIDIA GPU|CUDA"),
    "onnxruntime-cuda": (["--backend", "onnxruntime", "--device", "cuda"], r"no NVIDIA GPU|CUDA|GPU"),
}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_backend_that_cannot_run_says_the_cause_and_the_fix(runner, tiny_bundle, tmp_path, name):
    from styleengine.core.hostinfo import cuda_device_count

    args, cause = REQUESTS[name]
    if "cuda" in args and cuda_device_count():
        pytest.skip("a GPU is present: the request can run")
    src = _save(tmp_path / "in.png")
    r = stylize(runner, src, "-o", tmp_path / "out.png", "--style", tiny_bundle, *args)
    line = assert_one_line_error(r)
    check_cause_and_fix(line, cause)
    assert not (tmp_path / "out.png").exists()


def test_tensorrt_installed_but_no_gpu_says_the_cause_and_the_fix(runner, tiny_bundle, tmp_path, monkeypatch):
    import styleengine.engine.backend_tensorrt as bt

    monkeypatch.setattr(bt, "module_available", lambda name: True)
    monkeypatch.setattr(bt, "installed_runtimes", lambda: ["cuda-python"])
    monkeypatch.setattr(bt, "cuda_device_count", lambda: 0)
    src = _save(tmp_path / "in.png")
    r = stylize(runner, src, "-o", tmp_path / "out.png", "--style", tiny_bundle, "--backend", "tensorrt")
    check_cause_and_fix(assert_one_line_error(r), r"no NVIDIA GPU|GPU")


def test_auto_logs_the_reason_for_every_candidate_it_skips(tiny_bundle, monkeypatch):
    """A machine that claims a GPU none of the GPU backends can use: each skipped one is logged with its reason,
    then the CPU is used."""
    import logging

    import styleengine.engine.backend_onnxruntime as bo
    import styleengine.engine.backend_tensorrt as bt
    import styleengine.engine.select as sel
    from styleengine.core.bundle import load_bundle
    from styleengine.core.log import log

    for mod in (sel, bo, bt):
        monkeypatch.setattr(mod, "cuda_device_count", lambda: 1)
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect(logging.INFO)
    log.addHandler(handler)
    monkeypatch.setattr(log, "level", logging.INFO)
    tried = [c.label for c in sel.candidates("auto")]
    try:
        be = sel.open_backend(load_bundle(tiny_bundle), "auto")
    finally:
        log.removeHandler(handler)
    try:
        if be.device != "cpu":
            pytest.skip("a GPU backend really runs here")
        skipped = [m for m in messages if m.startswith("skipped ")]
        gpu = [t for t in tried if "cuda" in t]
        assert len(gpu) >= 2 and len(skipped) == len(gpu), (skipped, tried)
        for label, msg in zip(gpu, skipped):
            assert msg.startswith(f"skipped {label}: ") and len(msg) > len(f"skipped {label}: ") + 5, msg
    finally:
        be.close()


def test_auto_on_the_cpu_reports_why_candidates_lost(runner, tiny_bundle, tmp_path):
    src = _save(tmp_path / "in.png")
    r = stylize(runner, src, "-o", tmp_path / "out.png", "--style", tiny_bundle)
    assert r.exit_code == 0, r.stderr
    line = next(line for line in r.stderr.splitlines() if line.startswith("auto: "))
    assert line.endswith(")") and "(measured: " in line, line
    trials = line.split("(measured: ", 1)[1][:-1].split("; ")
    for t in trials:  # each candidate: a time, or its status with the reason
        assert re.search(r"\d ms", t) or re.search(r": (rejected|unavailable|not timed) \(.+\)", t), t


def _train(runner, tmp_path, *extra):
    photos = tmp_path / "photos"
    photos.mkdir(exist_ok=True)
    for p in sorted(TRAIN_ASSETS.glob("photo_*.jpg"))[:2]:
        shutil.copy(p, photos / p.name)
    return runner.invoke(app, ["train", str(TRAIN_ASSETS / "style_starry_night.jpg"), str(photos),
                               "-o", str(tmp_path / "m.pt"), "--preset", "fast", "--image-size", "32",
                               "--style-size", "48", "--batch-size", "1", "--checkpoint-every", "0",
                               "--preview-every", "0", *map(str, extra)], catch_exceptions=True)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


@pytest.mark.parametrize("content", ["pickle-with-globals", "random-bytes"])
@pytest.mark.parametrize("loss_net", ["vgg16", "efficientnet-lite0"])
def test_train_with_unsafe_or_garbage_loss_weights_is_one_line(runner, tmp_path, content, loss_net):
    pytest.importorskip("torch")
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"features.0.weight": _Evil()}) if content == "pickle-with-globals"
                     else np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    r = _train(runner, tmp_path, "--loss-net", loss_net, "--loss-weights", evil, "--steps", "2")
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert_one_line_error(r, "evil.pth")
    assert "should-never-run" not in r.stdout and not (tmp_path / "m.pt").exists()


# ------------------------------------------------------------------------------------ 7. progress
def test_folder_run_prints_count_progress_lines(runner, tiny_bundle, tmp_path):
    photos = _folder(tmp_path)
    r = stylize(runner, photos, "-o", tmp_path / "out", "--style", tiny_bundle, "--backend", "onnxruntime")
    assert r.exit_code == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("stylize: ")]
    assert any(line.startswith("stylize: 3/3 file") for line in lines), r.stderr
    assert any(re.match(r"stylize: 1/3 file \(33%\).*ETA", line) for line in lines), r.stderr
    assert not any(line.startswith("stylize: ") for line in r.stdout.splitlines())


def test_first_use_preparation_reports_progress(runner, tiny_bundle, tiny_checkpoint, tmp_path):
    """A .pt style builds its bundle once, --precision int8 quantizes once: both with progress lines."""
    pytest.importorskip("torch")
    src = _save(tmp_path / "in.png")
    r = stylize(runner, src, "-o", tmp_path / "a.png", "--style", tiny_checkpoint, "--backend", "onnxruntime")
    assert r.exit_code == 0, r.stderr
    assert re.search(r"^build .+: 5/5 step \(100%\)", r.stderr, re.M), r.stderr
    r = stylize(runner, src, "-o", tmp_path / "b.png", "--style", tiny_checkpoint, "--backend", "onnxruntime")
    assert r.exit_code == 0 and "build " not in r.stderr  # cached now
    r = stylize(runner, src, "-o", tmp_path / "c.png", "--style", tiny_bundle, "--backend", "onnxruntime",
                "--precision", "int8")
    assert r.exit_code == 0, r.stderr
    assert re.search(r"^quantize .+: 2/2 step \(100%\)", r.stderr, re.M), r.stderr


def test_training_prints_a_plain_line_every_log_every_steps(runner, tmp_path):
    pytest.importorskip("torch")
    r = _train(runner, tmp_path, "--loss-net", "efficientnet-lite0", "--random-loss-net", "--steps", "4",
               "--log-every", "2")
    assert r.exit_code == 0, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("train: ")]
    assert [line.split()[1] for line in lines if "loss " in line] == ["2/4", "4/4"], r.stderr


# ------------------------------------------------------------------------------------ 8. flag misuse
def test_overwrite_is_a_flag_and_two_inputs_never_make_a_file_named_folder(runner, tiny_bundle, tmp_path):
    a = _save(tmp_path / "a.png")
    b = _save(tmp_path / "b.png", seed=1)
    r = stylize(runner, a, b, "-o", tmp_path / "two.jpg", "--style", tiny_bundle)
    assert_one_line_error(r, "two.jpg", "folder")
    assert not (tmp_path / "two.jpg").exists()
    # `--overwrite true`: "true" is an input, so this is two inputs into a file name: refused the same way
    r = stylize(runner, a, "--overwrite", "true", "-o", tmp_path / "one.jpg", "--style", tiny_bundle)
    assert_one_line_error(r, "one.jpg")
    assert not (tmp_path / "one.jpg").exists()
    # into a folder: the stray value is a missing input whose message says what went wrong
    r = stylize(runner, a, "--overwrite", "true", "-o", tmp_path / "dir", "--style", tiny_bundle,
                "--backend", "onnxruntime")
    assert r.exit_code == 2
    assert any("true" in line and "take no value" in line for line in error_lines(r)), r.stderr
