"""benchmarks/recipe_study.py: a variant's trainer options."""

from __future__ import annotations

import pytest

from .scripts import script

pytest.importorskip("torch")


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
