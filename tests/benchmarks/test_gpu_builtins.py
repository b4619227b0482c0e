"""benchmarks/gpu_builtins.py and the time-boxed run under it (train_builtins.train_until): on a CPU at tiny
sizes; the GPU run itself needs the device machine."""

from __future__ import annotations

import json
import sys
import time

import pytest

from .scripts import script

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def gpu_builtins():
    with script("gpu_builtins") as module:  # imports train_builtins and recipe_study beside it when called
        # Its workers are spawned processes: they find run_style by module name, as under `python gpu_builtins.py`.
        sys.modules["gpu_builtins"] = module
        try:
            yield module
        finally:
            del sys.modules["gpu_builtins"]


def test_the_smoke_run_trains_measures_and_writes_each_style(gpu_builtins, tmp_path):
    from styleengine.core.checkpoint import load_checkpoint

    gpu_builtins.main(["--smoke", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "gpu_builtins.json").read_text())
    assert [r["style"] for r in report["styles"]] == list(gpu_builtins.SMOKE_STYLES)
    for row in report["styles"]:
        ck = load_checkpoint(tmp_path / f"{row['style']}.pt")
        # 4 steps in chunks of 2: the mean of the snapshots from the middle one on (step 4 alone), finished.
        assert (ck.train_config["steps"], ck.train_config["average_from"]) == (4, 4)
        assert ck.arch.margin and "kept" in ck.train_config["phase_bias"]
        assert row["trained"]["steps"] == 4 and row["steps_per_second"] > 0
        shipped = load_checkpoint(gpu_builtins_shipped(row["style"]))
        assert row["shipped"]["steps"] == shipped.train_config["steps"]
        for numbers in (row["trained"], row["shipped"]):
            assert set(numbers["gallery_peakiness"]) == {"kodim23", "kodim14", "chelsea", "bunny_frame"}
            assert numbers["style_distance"] > 0 and numbers["content_distance"] > 0


def gpu_builtins_shipped(style: str):
    with script("train_builtins") as tb:
        return tb.shipped_model(style)


def test_the_time_box_starts_no_chunk_the_last_one_says_would_not_fit(gpu_builtins, tmp_path):
    from styleengine.core.checkpoint import load_checkpoint

    work, paintings = gpu_builtins.smoke_work(tmp_path / "work")
    with script("train_builtins") as tb:
        # A box already over: nothing trained, no model.
        assert tb.train_until("udnie", work, 6, 2, time.time(), paintings, **gpu_builtins.SMOKE_OPTIONS) is None
        # A box shorter than one chunk: the first chunk runs (nothing measured yet), then no other starts.
        model = tb.train_until("udnie", work, 6, 2, time.time() + 0.2, paintings, **gpu_builtins.SMOKE_OPTIONS)
        run = work / "builtins" / "udnie"
        assert sorted(tb.snapshots(run)) == [2]
        assert load_checkpoint(model).train_config["steps"] == 2
        # A longer box resumes the run and ends at its last step; the model averages the later half, snapshots 4 and 6.
        model = tb.train_until("udnie", work, 6, 2, time.time() + 600, paintings, **gpu_builtins.SMOKE_OPTIONS)
        assert sorted(tb.snapshots(run)) == [2, 4, 6]
        c = load_checkpoint(model).train_config
        assert (c["steps"], c["average_from"], c["average_every"]) == (6, 4, 2)
        snaps = [load_checkpoint(run / f"snap_{s:05d}.pt").state_dict for s in (4, 6)]
        mean = load_checkpoint(model).state_dict
        key = next(k for k in snaps[0] if k.endswith("weight") and snaps[0][k].dim() == 4)
        # Saved in FP16, as the built-ins are.
        assert torch.allclose(mean[key].float(), sum(s[key].float() for s in snaps) / 2, atol=2e-3)
