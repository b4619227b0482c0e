import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch

from styleengine.core.checkpoint import MODEL_FORMAT, TRAIN_STATE_FORMAT, load_checkpoint
from styleengine.core.errors import StyleEngineError
from styleengine.core.network import ArchConfig
from styleengine.train.trainer import DEFAULT_MARGIN, TrainConfig, jitter, train

TINY = ArchConfig("custom", (4, 8, 16), 1)
RUN_OPTIONS = ("resume", "overwrite", "stop_after")


def run(style, photos, output, **kw):
    """train() with the config fields and the run options given together (as the tests read best)."""
    opts = {k: kw.pop(k) for k in RUN_OPTIONS if k in kw}
    return train(TrainConfig(style, photos, output, **kw), **opts)


@pytest.fixture()
def photos(tmp_path, assets):
    d = tmp_path / "photos"
    d.mkdir()
    for p in sorted((assets / "train").glob("photo_*.jpg")):
        shutil.copy(p, d / p.name)
    (d / "readme.txt").write_text("skipped")
    return d


@pytest.fixture()
def style(assets):
    return assets / "train" / "style_starry_night.jpg"


def _tiny(**kw):
    # plain_steps=0: the texture terms from the first step (the default plain phase is longer than these runs;
    # it has its own tests).
    base = dict(arch=TINY, loss_net="efficientnet-lite0", image_size=32, style_size=48, batch_size=2,
                checkpoint_every=0, preview_every=0, log_every=1, plain_steps=0)
    base.update(kw)
    return base


def _log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_short_run_with_efficientnet_lowers_style_loss_and_writes_self_describing_model(tmp_path, photos, style):
    out = tmp_path / "starry.pt"
    r = run(style, photos, out, **_tiny(steps=30, lr=1e-2, log_every=5, preview_every=15, attribution="Vincent van Gogh, 1889"))
    log = _log(r.log_path)
    assert [e["step"] for e in log] == [5, 10, 15, 20, 25, 30]
    # 30 steps of a tiny net, default recipe (the shift loss included): the total falls to ~0.4x and the style
    # loss to ~0.85x (an untrained net stays at ~1.0x of both).
    assert log[-1]["loss"] < 0.6 * log[0]["loss"] and log[-1]["style"] < 0.92 * log[0]["style"], log
    assert r.skipped_files == 1
    ckpt = load_checkpoint(out)
    # Trained without the phase bias and the margin, saved with both, the bias measured with the margin on some
    # photos and checked on others (the recipe records how, and whether it was kept: a bias that did not help is
    # zero).
    assert ckpt.source_format == MODEL_FORMAT and ckpt.arch == replace(TINY, phase_bias=True, margin=DEFAULT_MARGIN)
    calib = ckpt.train_config["phase_bias"]
    assert calib["images"] >= 1 and calib["check_images"] >= 1 and calib["rms_after"] < calib["rms_before"]
    assert calib["kept"] == (calib["peakiness_with"] < calib["peakiness_without"])
    assert (ckpt.state_dict["phase_bias"].abs().max() > 0) == calib["kept"]
    assert ckpt.style["name"] == "style_starry_night" and ckpt.style["attribution"] == "Vincent van Gogh, 1889"
    assert len(ckpt.style["image_sha256"]) == 64
    assert ckpt.loss_net.startswith("efficientnet-lite0") and "random" not in ckpt.loss_net
    tc = ckpt.train_config
    assert tc["steps"] == 30 and tc["image_size"] == 32 and tc["batch_size"] == 2 and tc["lr"] == 1e-2
    assert tc["content_layers"] and tc["style_layers"] and tc["stability_weight"] == 0.0
    assert torch.load(out, weights_only=True)["format"] == MODEL_FORMAT
    previews = sorted(p.name for p in (tmp_path / "starry.previews").iterdir())
    assert previews == ["grid.jpg", "step_0000015.jpg", "step_0000030.jpg"]
    from PIL import Image

    grid = Image.open(r.previews)
    row = Image.open(tmp_path / "starry.previews" / "step_0000030.jpg")
    # header (style image + 3 photos) and one row per preview, each row a step label + 3 stylized photos
    assert grid.height == 3 * row.height + 2 * 4 and grid.width >= row.width
    assert r.loss_plot == tmp_path / "starry.loss.png" and Image.open(r.loss_plot).size == (720, 420)


def test_stop_and_resume_equals_uninterrupted_run(tmp_path, photos, style):
    full = run(style, photos, tmp_path / "full.pt", **_tiny(steps=6))
    assert full.steps == 6 and full.path.exists()
    part = run(style, photos, tmp_path / "part.pt", **_tiny(steps=6, stop_after=4))
    assert part.steps == 4 and not (tmp_path / "part.pt").exists()
    state = torch.load(part.state_path, weights_only=True)
    assert state["format"] == TRAIN_STATE_FORMAT and state["step"] == 4 and "optimizer" in state
    done = run(style, photos, tmp_path / "part.pt", **_tiny(steps=6, resume=True))
    assert done.steps == 6
    a, b = load_checkpoint(tmp_path / "full.pt").state_dict, load_checkpoint(tmp_path / "part.pt").state_dict
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    # The log continues where it stopped, one entry per step.
    assert [e["step"] for e in _log(done.log_path)] == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_kill_9_then_resume_reaches_the_same_step_count_and_result(tmp_path, photos, style):
    # The CLI under a real SIGKILL: checkpoints every 2 steps, killed mid-run, resumed.
    args = [sys.executable, "-m", "styleengine", "train", str(style), str(photos), "--preset", "fast",
            "--loss-net", "efficientnet-lite0", "--image-size", "32", "--style-size", "48", "--batch-size", "1",
            "--steps", "16",
            "--checkpoint-every", "2", "--preview-every", "0", "--seed", "3"]
    # The reference runs through the same CLI in a fresh process, so the pytest process's thread settings
    # (other tests may change them) cannot change its floating-point results.
    ref = subprocess.run(args + ["-o", str(tmp_path / "ref.pt")], capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "killed.pt"
    state = tmp_path / "killed.train-state.pt"
    proc = subprocess.Popen(args + ["-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    if proc.returncode == 0:
        pytest.skip("training finished before it could be killed (machine too fast)")
    killed_at = torch.load(state, weights_only=True)["step"]
    assert killed_at < 16 and not out.exists()
    res = subprocess.run(args + ["-o", str(out), "--resume", "--json"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["steps"] == 16
    a, b = load_checkpoint(tmp_path / "ref.pt").state_dict, load_checkpoint(out).state_dict
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_stability_regularizer_trains_and_is_recorded(tmp_path, photos, style):
    r = run(style, photos, tmp_path / "s.pt", **_tiny(steps=2, stability_weight=5.0))
    assert all(e["stability"] > 0 for e in _log(r.log_path))
    assert load_checkpoint(r.path).train_config["stability_weight"] == 5.0


def test_swag_changes_training_is_recorded_and_old_states_without_it_resume(tmp_path, photos, style):
    plain = run(style, photos, tmp_path / "p.pt", **_tiny(steps=2))
    smooth = run(style, photos, tmp_path / "w.pt", **_tiny(steps=2, swag_temperature=1.0))
    assert load_checkpoint(smooth.path).train_config["swag_temperature"] == 1.0
    assert load_checkpoint(plain.path).train_config["swag_temperature"] == 0.0
    assert smooth.final_losses["style"] != plain.final_losses["style"]
    # A train state written before SWAG existed has no such key: it resumes as "off".
    part = run(style, photos, tmp_path / "old.pt", **_tiny(steps=3, stop_after=2))
    state = torch.load(part.state_path, weights_only=True)
    del state["train_config"]["swag_temperature"]
    torch.save(state, part.state_path)
    assert run(style, photos, tmp_path / "old.pt", **_tiny(steps=3, resume=True)).steps == 3


def test_average_from_saves_the_mean_of_the_weights_at_its_steps_and_resumes_with_it(tmp_path, photos, style):
    opts = _tiny(steps=5, lr=1e-2, average_from=2, average_every=2)
    whole = run(style, photos, tmp_path / "whole.pt", **opts)
    # The same run in three parts: the raw weights at steps 2 and 4 from its train states, 5 (the last) at the end.
    raw = []
    for stop, resume in ((2, False), (2, True), (None, True)):
        r = run(style, photos, tmp_path / "parts.pt", **opts, stop_after=stop, resume=resume)
        raw.append(torch.load(r.state_path, weights_only=True)["state_dict"])
    mean = {k: sum(w[k] for w in raw) / 3 for k in raw[0]}
    for path in (whole.path, r.path):  # uninterrupted, and resumed twice (the average rides in the train state)
        saved = load_checkpoint(path)
        assert saved.train_config["average_from"] == 2 and saved.train_config["average_every"] == 2
        assert all(torch.allclose(saved.state_dict[k], mean[k], atol=1e-5) for k in mean)
    assert not all(torch.allclose(mean[k], raw[-1][k], atol=1e-4) for k in mean)  # not just the last weights
    # Off (the default): the last weights, recorded as no averaging.
    plain = run(style, photos, tmp_path / "plain.pt", **_tiny(steps=5, lr=1e-2))
    tc, last = load_checkpoint(plain.path), torch.load(plain.state_path, weights_only=True)["state_dict"]
    assert tc.train_config["average_from"] is None and tc.train_config["average_every"] is None
    assert all(torch.allclose(tc.state_dict[k], last[k]) for k in last)
    for bad, match in ((dict(average_from=0), "average_from must be >= 1"),
                       (dict(average_from=2, average_every=0), "average_every must be >= 1"),
                       (dict(average_from=9), "past the last step")):
        with pytest.raises(StyleEngineError, match=match):
            run(style, photos, tmp_path / "x.pt", **_tiny(steps=5, **bad))
    # A train state from before averaging existed resumes as "off".
    _state_without(run(style, photos, tmp_path / "old.pt", **_tiny(steps=3, stop_after=2)), "average_from")
    assert run(style, photos, tmp_path / "old.pt", **_tiny(steps=3, resume=True)).steps == 3


def test_loss_jitter_shifts_both_images_alike_per_step_and_is_recorded(tmp_path, photos, style):
    y = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).reshape(2, 3, 16, 16)
    x = y + 0.5
    offsets = set()
    for seed in range(20):
        ys, xs = jitter(y, x, 4, torch.Generator().manual_seed(seed))
        assert ys.shape == xs.shape == (2, 3, 13, 13)
        assert torch.equal(xs - ys, torch.full_like(ys, 0.5))  # the same crop of both
        offsets.add((int(ys[0, 0, 0, 0]) // 16, int(ys[0, 0, 0, 0]) % 16))
    assert offsets <= {(r, c) for r in range(4) for c in range(4)} and len(offsets) > 4
    a, b = jitter(y, x, 4, torch.Generator().manual_seed(3)), jitter(y, x, 4, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0])
    assert jitter(y, x, 1, torch.Generator())[0] is y and jitter(y, x, 0, torch.Generator())[0] is y
    on = run(style, photos, tmp_path / "j.pt", **_tiny(steps=2, loss_jitter=4))
    assert load_checkpoint(on.path).train_config["loss_jitter"] == 4
    off = run(style, photos, tmp_path / "n.pt", **_tiny(steps=2, loss_jitter=0))
    assert load_checkpoint(off.path).train_config["loss_jitter"] == 0
    assert on.final_losses["style"] != off.final_losses["style"]


def _check_loss_term(on, off, name: str, weight: float) -> None:
    """A run with the term `name` at `weight` logs it, records it and adds it to the loss; one without it logs 0
    and its loss is exactly the plain one."""
    assert all(e[name] > 0 for e in _log(on.log_path)) and all(e[name] == 0 for e in _log(off.log_path))
    assert load_checkpoint(on.path).train_config[f"{name}_weight"] == weight
    assert load_checkpoint(off.path).train_config[f"{name}_weight"] == 0.0
    for result, extra in ((on, weight * on.final_losses[name]), (off, 0.0)):
        c, f = load_checkpoint(result.path).train_config, result.final_losses
        assert f["loss"] == pytest.approx(c["content_weight"] * f["content"] + c["style_weight"] * f["style"]
                                          + c["tv_weight"] * f["tv"] + extra, rel=1e-4)


def _state_without(result, key: str) -> None:
    """Rewrites a run's train state as a version before `key` was recorded wrote it."""
    state = torch.load(result.state_path, weights_only=True)
    del state["train_config"][key]
    torch.save(state, result.state_path)


def test_shift_weight_adds_the_equivariance_loss_is_logged_recorded_and_old_states_resume(tmp_path, photos, style):
    on = run(style, photos, tmp_path / "s.pt", **_tiny(steps=2, shift_weight=20.0, peak_weight=0.0))
    off = run(style, photos, tmp_path / "n.pt", **_tiny(steps=2, shift_weight=0.0, peak_weight=0.0))
    _check_loss_term(on, off, "shift", 20.0)
    with pytest.raises(StyleEngineError, match="shift_weight must be >= 0"):
        run(style, photos, tmp_path / "x.pt", **_tiny(steps=1, shift_weight=-1.0))
    # A train state written before the shift loss existed resumes as "off".
    _state_without(run(style, photos, tmp_path / "old.pt", **_tiny(steps=3, stop_after=2, shift_weight=0.0)),
                   "shift_weight")
    assert run(style, photos, tmp_path / "old.pt", **_tiny(steps=3, resume=True, shift_weight=0.0)).steps == 3


def test_peak_weight_adds_the_spectral_peak_loss_is_logged_recorded_and_old_states_resume(tmp_path, photos, style):
    on = run(style, photos, tmp_path / "p.pt", **_tiny(steps=2, shift_weight=0.0, peak_weight=2.0))
    off = run(style, photos, tmp_path / "n.pt", **_tiny(steps=2, shift_weight=0.0, peak_weight=0.0))
    _check_loss_term(on, off, "peak", 2.0)
    with pytest.raises(StyleEngineError, match="peak_weight must be >= 0"):
        run(style, photos, tmp_path / "x.pt", **_tiny(steps=1, peak_weight=-1.0))
    # A train state written before the peak loss existed resumes as "off".
    _state_without(run(style, photos, tmp_path / "old.pt", **_tiny(steps=3, stop_after=2, peak_weight=0.0)),
                   "peak_weight")
    with pytest.raises(StyleEngineError, match="peak_weight"):  # today's default is on
        run(style, photos, tmp_path / "old.pt", **_tiny(steps=3, resume=True))
    assert run(style, photos, tmp_path / "old.pt", **_tiny(steps=3, resume=True, peak_weight=0.0)).steps == 3


def test_spike_weight_adds_the_norm_spike_loss_is_logged_recorded_and_old_states_resume(tmp_path, photos, style,
                                                                                        monkeypatch):
    # A low threshold makes the tiny random network's channels count, so the term is never zero here.
    monkeypatch.setattr("styleengine.train.norm_spikes.SPIKE_KURTOSIS", 0.5)
    on = run(style, photos, tmp_path / "k.pt", **_tiny(steps=2, shift_weight=0.0, peak_weight=0.0, spike_weight=2.0))
    off = run(style, photos, tmp_path / "n.pt", **_tiny(steps=2, shift_weight=0.0, peak_weight=0.0))
    _check_loss_term(on, off, "spike", 2.0)
    with pytest.raises(StyleEngineError, match="spike_weight must be >= 0"):
        run(style, photos, tmp_path / "x.pt", **_tiny(steps=1, spike_weight=-1.0))
    # A train state written before the spike loss existed resumes as "off".
    _state_without(run(style, photos, tmp_path / "old.pt", **_tiny(steps=3, stop_after=2)), "spike_weight")
    with pytest.raises(StyleEngineError, match="spike_weight"):
        run(style, photos, tmp_path / "old.pt", **_tiny(steps=3, resume=True, spike_weight=1.0))
    assert run(style, photos, tmp_path / "old.pt", **_tiny(steps=3, resume=True)).steps == 3


def test_plain_steps_train_without_jitter_shift_and_peak_terms_then_switch_them_on(tmp_path, photos, style):
    # One style weight throughout (plain_style_weight is tested below).
    texture = dict(loss_jitter=4, shift_weight=50.0, peak_weight=1.0, plain_style_weight=6.0)
    staged = run(style, photos, tmp_path / "s.pt", **_tiny(steps=4, plain_steps=2, **texture))
    plain = run(style, photos, tmp_path / "p.pt", **_tiny(steps=2, loss_jitter=0, shift_weight=0.0, peak_weight=0.0))
    log = _log(staged.log_path)
    assert [(e["shift"] > 0, e["peak"] > 0) for e in log] == [(False, False)] * 2 + [(True, True)] * 2
    # The plain steps are the plain recipe exactly: the same weights as a run without the three terms.
    part = run(style, photos, tmp_path / "s2.pt", **_tiny(steps=4, plain_steps=2, stop_after=2, **texture))
    a, b = load_checkpoint(part.state_path).state_dict, load_checkpoint(plain.path).state_dict
    assert a.keys() <= b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # b also has the phase bias
    assert load_checkpoint(staged.path).train_config["plain_steps"] == 2
    assert load_checkpoint(plain.path).train_config["plain_steps"] == 0
    with pytest.raises(StyleEngineError, match="plain_steps must be >= 0"):
        run(style, photos, tmp_path / "x.pt", **_tiny(steps=1, plain_steps=-1))
    # A train state written before plain_steps existed resumes as 0.
    state = torch.load(part.state_path, weights_only=True)
    del state["train_config"]["plain_steps"]
    torch.save(state, part.state_path)
    with pytest.raises(StyleEngineError, match="plain_steps"):
        run(style, photos, tmp_path / "s2.pt", **_tiny(steps=4, plain_steps=2, resume=True, **texture))
    assert run(style, photos, tmp_path / "s2.pt", **_tiny(steps=4, plain_steps=0, resume=True, **texture)).steps == 4


def test_plain_style_weight_holds_for_the_plain_steps_then_the_style_weight_takes_over(tmp_path, photos, style):
    weights = dict(loss_jitter=0, shift_weight=0.0, peak_weight=0.0, content_weight=1.0, style_weight=6.0,
                   tv_weight=100.0)

    def style_weights_used(result):  # from each logged step's loss = content + w * style + 100 * tv
        return [(e["loss"] - e["content"] - 100.0 * e["tv"]) / e["style"] for e in _log(result.log_path)]

    r = run(style, photos, tmp_path / "s.pt", **_tiny(steps=4, plain_steps=2, plain_style_weight=2.0, **weights))
    assert style_weights_used(r) == pytest.approx([2.0, 2.0, 6.0, 6.0], rel=1e-4)
    assert load_checkpoint(r.path).train_config["plain_style_weight"] == 2.0
    # Equal to the style weight: one weight throughout, recorded as none.
    same = run(style, photos, tmp_path / "n.pt", **_tiny(steps=2, plain_steps=1, plain_style_weight=6.0, **weights))
    assert load_checkpoint(same.path).train_config["plain_style_weight"] is None
    assert style_weights_used(same) == pytest.approx([6.0, 6.0], rel=1e-4)
    with pytest.raises(StyleEngineError, match="plain_style_weight must be >= 0"):
        run(style, photos, tmp_path / "x.pt", **_tiny(steps=1, plain_style_weight=-1.0))
    # Resuming with another plain-phase weight is refused (it changes what the run computes).
    part = run(style, photos, tmp_path / "p.pt", **_tiny(steps=4, plain_steps=2, plain_style_weight=2.0,
                                                          stop_after=1, **weights))
    with pytest.raises(StyleEngineError, match="plain_style_weight"):
        run(style, photos, tmp_path / "p.pt", **_tiny(steps=4, plain_steps=2, plain_style_weight=3.0, resume=True,
                                                       **weights))
    assert run(style, photos, part.path, **_tiny(steps=4, plain_steps=2, plain_style_weight=2.0, resume=True,
                                                 **weights)).steps == 4


def test_efficientnet_defaults_are_the_staged_recipe_and_are_recorded(tmp_path, photos, style):
    cfg = _tiny(steps=2)
    del cfg["plain_steps"]
    c = load_checkpoint(run(style, photos, tmp_path / "d.pt", **cfg).path).train_config
    got = {k: c[k] for k in ("style_weight", "tv_weight", "loss_jitter", "shift_weight", "peak_weight", "plain_steps",
                             "plain_style_weight")}
    assert got == {"style_weight": 6.0, "tv_weight": 100.0, "loss_jitter": 4, "shift_weight": 50.0,
                   "peak_weight": 0.3, "plain_steps": 400, "plain_style_weight": 2.0}
    assert TrainConfig(style, photos, tmp_path / "x.pt").style_size == 768


def test_photo_size_is_checked_and_recorded(tmp_path, photos, style):
    with pytest.raises(StyleEngineError, match="photo_size must be >= image_size 32"):
        run(style, photos, tmp_path / "x.pt", **_tiny(steps=1, photo_size=16))
    assert load_checkpoint(run(style, photos, tmp_path / "p.pt", **_tiny(steps=1, photo_size=64)).path
                           ).train_config["photo_size"] == 64


def test_init_from_starts_from_another_models_weights_and_is_recorded(tmp_path, photos, style):
    base = run(style, photos, tmp_path / "base.pt", **_tiny(steps=3, lr=1e-2))
    tuned = run(style, photos, tmp_path / "tuned.pt", **_tiny(steps=1, lr=1e-12, init_from=base.path))
    a, b = load_checkpoint(base.path), load_checkpoint(tuned.path)
    assert all(torch.allclose(a.state_dict[k], b.state_dict[k], atol=1e-6) for k in a.state_dict)  # lr ~0: unchanged
    assert b.train_config["init_from"]["sha256"] == a.sha256 and b.train_config["output_init"] == "init_from"
    fresh = load_checkpoint(run(style, photos, tmp_path / "fresh.pt", **_tiny(steps=1, lr=1e-12)).path)
    assert not torch.allclose(fresh.state_dict["res1.conv1.conv2d.weight"], a.state_dict["res1.conv1.conv2d.weight"])
    other = ArchConfig("custom", (4, 8, 8), 1)
    with pytest.raises(StyleEngineError, match="init-from"):
        run(style, photos, tmp_path / "x.pt", **_tiny(steps=1, arch=other, init_from=base.path))


def test_margin_is_added_to_the_saved_model_only_and_fine_tunes_start_from_any(tmp_path, photos, style):
    # The train state (what resumes) has no margin; the model file has the one asked for, and a fine-tune starts
    # from a model with or without one.
    r = run(style, photos, tmp_path / "m0.pt", **_tiny(steps=2, margin=0, checkpoint_every=1))
    assert load_checkpoint(r.path).arch.margin == 0
    assert load_checkpoint(r.state_path).arch.margin == 0
    wide = run(style, photos, tmp_path / "m16.pt", **_tiny(steps=1, margin=16, init_from=r.path))
    assert load_checkpoint(wide.path).arch.margin == 16
    back = run(style, photos, tmp_path / "back.pt", **_tiny(steps=1, margin=0, lr=1e-12, init_from=wide.path))
    a, b = load_checkpoint(wide.path), load_checkpoint(back.path)
    assert b.arch.margin == 0 and torch.allclose(a.state_dict["res1.conv1.conv2d.weight"],
                                                 b.state_dict["res1.conv1.conv2d.weight"], atol=1e-6)
    # The preview shows what the saved model paints: the same trained weights (the phase bias is measured with
    # the margin), but with the margin.
    shows = {m: run(style, photos, tmp_path / f"p{m}.pt", **_tiny(steps=1, margin=m, init_from=r.path,
                                                                   preview_every=1)) for m in (0, 8)}
    a, b = (load_checkpoint(shows[m].path) for m in (0, 8))
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict if k != "phase_bias")
    rows = [(tmp_path / f"p{m}.previews" / "step_0000001.jpg").read_bytes() for m in (0, 8)]
    assert rows[0] != rows[1]
    for bad in (-4, 6):
        with pytest.raises(StyleEngineError, match="margin must be a multiple of 4"):
            run(style, photos, tmp_path / "x.pt", **_tiny(steps=1, margin=bad))


def test_cpu_training_output_conv_hook_keeps_numerics(tmp_path):
    from styleengine.core.network import TransformerNet
    from styleengine.train.trainer import _output_conv_channels_last

    torch.manual_seed(0)
    a, b = TransformerNet(TINY), TransformerNet(TINY)
    b.load_state_dict(a.state_dict())
    _output_conv_channels_last(b)
    x = torch.rand(2, 3, 20, 28) * 255
    ya, yb = a(x), b(x)
    assert yb.is_contiguous() and torch.allclose(ya, yb, atol=1e-3)
    ya.pow(2).mean().backward()
    yb.pow(2).mean().backward()
    ga, gb = a.deconv3.conv2d.weight.grad, b.deconv3.conv2d.weight.grad
    assert torch.allclose(ga, gb, rtol=1e-4, atol=1e-4 * ga.abs().max().item())


def test_bad_inputs_are_one_line_errors_and_nothing_is_overwritten(tmp_path, photos, style):
    with pytest.raises(StyleEngineError, match="style image not found"):
        run(tmp_path / "nope.jpg", photos, tmp_path / "o.pt", **_tiny(steps=1))
    (tmp_path / "empty").mkdir()
    with pytest.raises(StyleEngineError, match="no usable images"):
        run(style, tmp_path / "empty", tmp_path / "o.pt", **_tiny(steps=1))
    with pytest.raises(StyleEngineError, match="data folder not found"):
        run(style, tmp_path / "missing", tmp_path / "o.pt", **_tiny(steps=1))
    with pytest.raises(StyleEngineError, match="output folder does not exist"):
        run(style, photos, tmp_path / "no" / "o.pt", **_tiny(steps=1))
    with pytest.raises(StyleEngineError, match="unknown preset"):
        run(style, photos, tmp_path / "o.pt", **_tiny(steps=1, arch=None, preset="huge"))
    with pytest.raises(StyleEngineError, match="unknown layer"):
        run(style, photos, tmp_path / "o.pt", **_tiny(steps=1, style_layers=["relu9_9"]))
    with pytest.raises(StyleEngineError, match="unknown loss network"):
        run(style, photos, tmp_path / "o.pt", **_tiny(steps=1, loss_net="alexnet"))
    with pytest.raises(StyleEngineError, match="amp fp16 needs a CUDA"):
        run(style, photos, tmp_path / "o.pt", **_tiny(steps=1, amp="fp16", device="cpu"))
    user_file = tmp_path / "precious.pt"
    user_file.write_bytes(b"user data")
    with pytest.raises(StyleEngineError, match="output exists"):
        run(style, photos, user_file, **_tiny(steps=1))
    assert user_file.read_bytes() == b"user data"
    # A leftover train state is never silently replaced, and settings must match to resume.
    run(style, photos, tmp_path / "r.pt", **_tiny(steps=2, stop_after=1))
    with pytest.raises(StyleEngineError, match="train state from an earlier run"):
        run(style, photos, tmp_path / "r.pt", **_tiny(steps=2))
    with pytest.raises(StyleEngineError, match=r"different settings \(image_size"):
        run(style, photos, tmp_path / "r.pt", **_tiny(steps=2, image_size=40, resume=True))


def test_cli_train_writes_model_and_reports_errors_with_exit_code_2(tmp_path, photos, style):
    from typer.testing import CliRunner

    from styleengine.cli import app

    runner = CliRunner()
    out = tmp_path / "cli.pt"
    res = runner.invoke(app, ["train", str(style), str(photos), "-o", str(out), "--preset", "fast",
                              "--loss-net", "efficientnet-lite0", "--random-loss-net",
                              "--steps", "2", "--image-size", "32", "--style-size", "48", "--batch-size", "1",
                              "--checkpoint-every", "0", "--peak-weight", "0.5", "--json"])
    assert res.exit_code == 0, res.output
    ckpt = load_checkpoint(out)
    assert ckpt.arch.preset == "fast" and ckpt.loss_net == "efficientnet-lite0 (random weights)"
    assert ckpt.train_config["peak_weight"] == 0.5 and ckpt.arch.margin == DEFAULT_MARGIN
    assert json.loads(res.stdout)["steps"] == 2
    # stderr is no terminal here: progress comes as plain lines (every --log-every steps), not a bar
    assert "train: 2/2 step (100%)" in res.stderr and "loss " in res.stderr
    res = runner.invoke(app, ["train", str(style), str(photos), "-o", str(tmp_path / "m.pt"), "--preset", "fast",
                              "--loss-net", "efficientnet-lite0", "--random-loss-net", "--steps", "1",
                              "--image-size", "32", "--style-size", "48", "--batch-size", "1",
                              "--checkpoint-every", "0", "--margin", "0"])
    assert res.exit_code == 0, res.output
    assert load_checkpoint(tmp_path / "m.pt").arch.margin == 0
    res = runner.invoke(app, ["train", str(style), str(photos), "-o", str(tmp_path / "y.pt"), "--margin", "6"])
    assert res.exit_code == 2 and "error: margin must be a multiple of 4" in res.output
    assert not (tmp_path / "y.pt").exists()
    res = runner.invoke(app, ["train", str(style), str(tmp_path / "nothing"), "-o", str(tmp_path / "x.pt")])
    assert res.exit_code == 2 and "error: data folder not found" in res.output
