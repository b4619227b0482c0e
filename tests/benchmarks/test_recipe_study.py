"""benchmarks/recipe_study.py: a variant's trainer options."""

from __future__ import annotations

import pytest

from .scripts import script

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def recipe_study():
    with script("recipe_study") as module:  # it imports train_builtins.py beside it when called
        yield module


@pytest.mark.parametrize("painting", ["starry_night", "udnie"])
def test_the_whole_recipe_is_the_one_the_shipped_model_was_made_with(recipe_study, painting, tmp_path):
    from styleengine.core.checkpoint import load_checkpoint

    made = load_checkpoint(recipe_study._builtin_model(painting)).train_config
    cfg = recipe_study.variant_config("len_whole", tmp_path, painting)
    keys = set(recipe_study.WHOLE_RECIPE) - {"plain_style_weight"}
    for key in (*sorted(keys), "image_size", "style_size", "style_weight", "tv_weight", "style_layers"):
        assert cfg[key] == made[key], key
    assert cfg["plain_style_weight"] == (made["plain_style_weight"] or made["style_weight"])  # None: the same
    assert cfg["init_from"] == recipe_study._builtin_model(painting)
    # Without it the study's own defaults hold (ft_long: lr 1e-3, no peak loss), not the model's.
    plain = recipe_study.variant_config("ft_long", tmp_path, painting)
    assert (plain["lr"], plain["peak_weight"]) == (1e-3, 0.0) != (made["lr"], made["peak_weight"])


def _snapshots(work, painting: str, steps, arch):
    from styleengine.core.checkpoint import save_model
    from styleengine.core.network import TransformerNet

    runs = work / "runs" / f"{painting}_len_whole"
    runs.mkdir(parents=True)
    weights = []
    for i, step in enumerate(steps):
        torch.manual_seed(i)
        net = TransformerNet(arch)
        weights.append(net.state_dict())
        save_model(runs / f"snap_{step:05d}.pt", net, style={"name": painting},
                   train_config={"steps": step, "lr": 3e-4}, loss_net="efficientnet-lite0")
    return weights


def test_an_averaged_variant_is_the_mean_of_its_runs_snapshots_from_its_step_finished_and_recorded(
        recipe_study, tmp_path, assets):
    import shutil

    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.core.network import ArchConfig

    photos = tmp_path / "photos"
    photos.mkdir()
    for p in (assets / "train").glob("photo_*.jpg"):
        shutil.copy(p, photos / p.name)
    arch = ArchConfig("custom", (4, 8, 16), 1, margin=8)
    weights = _snapshots(tmp_path, "udnie", (100, 200, 300, 400), arch)
    assert recipe_study.VARIANTS["len_whole_avg200"][0] == {"average_of": ("len_whole", 200)}
    out = recipe_study.train_variant("len_whole_avg200", tmp_path, 400, 100, "udnie")
    ck = load_checkpoint(out)
    # Steps 200, 300 and 400; not 100.
    mean = {k: sum(w[k] for w in weights[1:]) / 3 for k in weights[0]}
    assert all(torch.allclose(ck.state_dict[k], mean[k], atol=1e-6) for k in mean)
    c = ck.train_config
    assert (c["steps"], c["average_from"], c["average_every"], c["lr"]) == (400, 200, 100, 3e-4)
    # Finished as the trainer finishes: its margin, and a phase bias measured (zero where it does not help).
    assert ck.arch.margin == 8 and ck.arch.phase_bias and "kept" in c["phase_bias"]
    # Snapshots that are not the trainer's steps (one missing) are refused.
    (tmp_path / "runs" / "udnie_len_whole" / "snap_00300.pt").unlink()
    with pytest.raises(SystemExit, match="not evenly spaced"):
        recipe_study.train_variant("len_whole_avg200", tmp_path, 400, 100, "udnie")
    with pytest.raises(SystemExit, match="no snapshot at step 400"):
        recipe_study.train_variant("len_whole_avg400", tmp_path, 400, 100, "woman_with_hat")
