"""The training-recipe study for the built-in styles: A/B pairs at equal step budgets on the same photos.

    python benchmarks/recipe_study.py prepare --work W                 # photos: train set + held-out set
    nice python benchmarks/recipe_study.py train --work W --variants base,swag1 [--steps 600] [--threads 1]
    python benchmarks/recipe_study.py report --work W [--out benchmarks/results/recipe]
    python benchmarks/recipe_study.py length --work W --painting P --variants ft_long   # every snapshot
    python benchmarks/recipe_study.py train --work W --painting P --variants len_whole_avg200  # snapshots averaged

Every variant is the base recipe with one change (VARIANTS); all start from seed 0 and train the `fast`
preset on the same photos for the same number of steps, in resumable chunks (a killed run continues where
it stopped), keeping a model snapshot at every chunk so training length can be judged too; an Averaged variant
is the mean of a run's snapshots from one step on (the trainer's weight averaging, without training again). The
report stylizes held-out photos (never trained on) at full size with each final model and writes, per variant, a
side-by-side image against the base ([photo | base | variant]), a 1:1 detail of one photo across all variants
(`*_zoom.png`: photo, then the variants in the order given) and the numbers:

- texture peakiness: spectral peakiness (core.spectrum.spectral_peakiness) of the output over the photo's,
  mean over the held-out photos. 1.0 = no more periodic than the photo; the goal is <= 1.3.
- grid spikes: the fraction of the output's strongest spectral spikes at multiples of 1/4 cycle/px
  (core.spectrum.grid_spike_fraction), mean over the held-out photos: the 4-px grid, as against brush strokes.
- style distance: Gram distance to the painting in efficientnet-lite0 (quality.StyleDistance; lower = closer).
- content distance: relative feature error to the photo at a mid-level tap (lower = more of the photo kept).
- grid error: how much the output changes, beyond moving along, when the photo moves by 1-3 px (quality.grid_error);
  the network's two stride-2 stages make a fixed 4-px grid possible, and this measures it directly.
- spiky channels: the share of the network's residual and decoder channels whose kurtosis is above
  train.norm_spikes.SPIKE_KURTOSIS on the held-out photos: the instance-norm spikes that draw blobs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HELD_OUT = ("kodim04.png", "kodim08.png", "kodim14.png", "kodim23.png", "chelsea.png")
VIDEO_FRAMES = {"cars_432p.mp4": (20, 80, 140, 200, 260, 320), "big_buck_bunny_720p.mp4": (10, 60, 110)}

# The recipe before the study, pinned (the trainer's defaults are now the study's choice).
# Terms a variant does not name are pinned (off, and one style weight throughout), so later trainer defaults do
# not change what an earlier round ran.
PINNED = dict(peak_weight=0.0, plain_steps=0)
WHOLE_RECIPE = ("lr", "loss_jitter", "photo_size", "peak_weight", "shift_weight", "spike_weight", "stability_weight",
                "swag_temperature", "plain_steps", "plain_style_weight")
BASE = dict(preset="fast", loss_net="efficientnet-lite0", image_size=256, style_size=512, batch_size=4, lr=1e-3,
            seed=0, style_weight=0.5, tv_weight=100.0, loss_jitter=0, **PINNED)
NO_STEM = ["block1.expand", "block3.expand", "block5.expand", "block8.expand"]
# Quick probes of the 4-px texture at a quarter of the cost: 128-px crops, 384-px style image, style weight 2,
# 300 steps (--steps 300); each compared with p128_base.
PROBE = dict(image_size=128, style_size=384, style_weight=2.0)
# The shipped built-in trained on with its own recipe (the fourth round's runs start from these).
OWN = dict(from_builtin=True, loss_jitter=4, shift_weight=50.0)
OWN_128 = dict(from_builtin=True, loss_jitter=4, image_size=128, photo_size=256)
# The shipped starry_night (the built-in with the least texture) and its recipe, trained on another painting:
# great_wave was made this way; fine-tunes of the three newer styles from their own models wash out.
FROM_STARRY = dict(from_builtin="starry_night", loss_jitter=4, shift_weight=50.0)
# The trainer's efficientnet-lite0 defaults before the tenth round as a seed-0 run, beside what the fine-tune
# rounds found (peak loss 0.3, a higher style weight, staged) tried from seed 0, so the default rests on
# like-for-like pairs.
DEFAULT = dict(style_size=768, style_weight=2.0, tv_weight=100.0, loss_jitter=4, shift_weight=50.0)


class Again(NamedTuple):
    """A variant that trains on from the model another variant made, with that variant's options."""

    base: str


class Averaged(NamedTuple):
    """Another variant's run with the trainer's weight averaging (average_from=start, average_every=the snapshot
    spacing): the mean of its snapshots' weights from `start` to its last, made from them, not trained again."""

    base: str
    start: int


_LISTED: dict[str, tuple[dict, str] | Again | Averaged] = {
    "old": (dict(image_size=128, style_size=256), "the old built-ins' scale: 128-px crops, 256-px style image"),
    "base": ({}, "256-px crops (the paper), 512-px style image, style weight 0.5, no jitter (the recipe before)"),
    "style768": (dict(style_size=768), "style image 768 px"),
    "style384": (dict(style_size=384), "style image 384 px"),
    "swag1": (dict(swag_temperature=1.0), "SWAG, temperature 1"),
    "sw1.5": (dict(style_weight=1.5), "style weight 1.5 (default 0.5)"),
    "tv10": (dict(tv_weight=10.0), "TV weight 10 (default 100)"),
    "tv300": (dict(tv_weight=300.0), "TV weight 300"),
    "nostem": (dict(style_layers=["block1.expand", "block3.expand", "block5.expand", "block8.expand"]),
               "style taps without the stride-2 stem"),
    "deep": (dict(style_layers=["block1.expand", "block3.expand", "block5.expand", "block8.expand",
                                "block11.expand"]), "no stem, one deeper tap (block11.expand, 1/16 scale)"),
    "crop384": (dict(image_size=384), "384-px crops"),
    "sw3": (dict(style_weight=3.0), "style weight 3"),
    "swag1_sw3": (dict(swag_temperature=1.0, style_weight=3.0), "SWAG (temperature 1) with style weight 3"),
    "sw2_s768": (dict(style_weight=2.0, style_size=768), "style weight 2, style image 768 px"),
    "sw3_nostem": (dict(style_weight=3.0, style_layers=NO_STEM), "style weight 3, no stem tap"),
    "p128_base": (dict(PROBE), "probe: 128-px crops, 384-px style, style weight 2"),
    "p128_jit4": (dict(PROBE, loss_jitter=4), "probe + loss jitter 4 px"),
    "p128_jit8": (dict(PROBE, loss_jitter=8), "probe + loss jitter 8 px"),
    "p128_jit4_nostem": (dict(PROBE, loss_jitter=4, style_layers=NO_STEM), "probe + loss jitter 4 px, no stem tap"),
    "p128_jit4_shift10": (dict(PROBE, loss_jitter=4, shift_weight=10.0),
                          "probe + loss jitter 4 px, shift-equivariance loss weight 10"),
    "p128_jit4_shift50": (dict(PROBE, loss_jitter=4, shift_weight=50.0),
                          "probe + loss jitter 4 px, shift-equivariance loss weight 50"),
    "p128_s768_shift50": (dict(PROBE, style_size=768, loss_jitter=4, shift_weight=50.0),
                          "probe + style image 768 px, loss jitter 4 px, shift-equivariance loss weight 50"),
    "p128_s768_shift50_ph512": (dict(PROBE, style_size=768, loss_jitter=4, shift_weight=50.0, photo_size=512),
                                "probe + style image 768 px, loss jitter 4, shift loss 50, crops of photos at "
                                "512 px (short side)"),
    "default": (dict(DEFAULT), "the trainer's efficientnet-lite0 defaults before the tenth round (style weight 2, TV "
                               "100, loss jitter 4, shift loss 50), style image 768 px, from seed 0"),
    "default_peak03_sw6": (dict(DEFAULT, peak_weight=0.3, style_weight=6.0),
                           "default + spectral-peak loss 0.3, style weight 6 (composition_vii's and the_scream's "
                           "final fine-tune recipe), from seed 0"),
    "default_staged": (dict(DEFAULT, plain_steps=600),
                       "default with loss jitter and the shift loss off for the first 600 steps (the built-ins' "
                       "lineage: plain training from seed 0, then fine-tunes with them), from seed 0"),
    "default_staged_peak03": (dict(DEFAULT, peak_weight=0.3, from_snapshot=("default_staged", 600)),
                              "default_staged + spectral-peak loss 0.3: its last 600 steps again from its step-600 "
                              "snapshot (the same weights: the plain steps do not see the peak weight; a fresh Adam "
                              "state)"),
    "staged400_peak03_sw6": (dict(DEFAULT, plain_steps=400, peak_weight=0.3, style_weight=6.0),
                             "default_peak03_sw6 with loss jitter, the shift loss and the peak loss held back for "
                             "the first 400 steps (--plain-steps 400), from seed 0"),
    "staged400_psw2_peak03_sw6": (dict(DEFAULT, plain_steps=400, plain_style_weight=2.0, peak_weight=0.3,
                                       style_weight=6.0),
                                  "staged400_peak03_sw6 with style weight 2 in the plain steps (the default's), 6 "
                                  "after them, from seed 0"),
    "staged400_psw2_peak03_sw6_nostem": (dict(DEFAULT, plain_steps=400, plain_style_weight=2.0, peak_weight=0.3,
                                              style_weight=6.0, style_layers=NO_STEM),
                                         "staged400_psw2_peak03_sw6 without the stem style tap, from seed 0"),
    "staged400_psw2_peak03_sw4": (dict(DEFAULT, plain_steps=400, plain_style_weight=2.0, peak_weight=0.3,
                                       style_weight=4.0),
                                  "the same with style weight 4 after the plain steps, from seed 0"),
    "shipped": ({}, "the shipped built-in, as it is (report only)"),
    "refined": ({}, "train_builtins.py --refine: the shipped built-in + loss jitter 4, shift loss 50, style weight x2, "
                    "200 steps (report only: WORK/runs/<painting>_refined/model.pt)"),
    # Fine-tuning the shipped built-in with its own recipe (lr 1e-3), with and without the shift loss.
    "ft_jit4": (dict(from_builtin=True, loss_jitter=4), "shipped built-in fine-tuned, its recipe + loss jitter 4"),
    "ft_jit4_shift50": (dict(from_builtin=True, loss_jitter=4, shift_weight=50.0),
                        "shipped built-in fine-tuned, its recipe + loss jitter 4 + shift loss 50"),
    "ft_jit4_shift50_sw2x": (dict(from_builtin=True, loss_jitter=4, shift_weight=50.0, style_weight_scale=2.0),
                             "shipped built-in fine-tuned, its recipe + loss jitter 4 + shift loss 50, style "
                             "weight x2"),
    "ft128_jit4_shift50": (dict(from_builtin=True, loss_jitter=4, shift_weight=50.0, image_size=128, photo_size=256),
                           "shipped built-in fine-tuned, its recipe + loss jitter 4 + shift loss 50, 128-px crops of "
                           "256-px photos"),
    "ft_s768": (dict(from_builtin=True, loss_jitter=4, shift_weight=50.0, style_size=768),
                "shipped built-in fine-tuned, its recipe + loss jitter 4 + shift loss 50, style image 768 px"),
    "ft_jit4_shift200": (dict(from_builtin=True, loss_jitter=4, shift_weight=200.0),
                         "shipped built-in fine-tuned, its recipe + loss jitter 4 + shift loss 200"),
    # Against the oriented stroke texture left after the phase bias: a stronger total-variation weight.
    "ft_tv1": (dict(from_builtin=True, loss_jitter=4, shift_weight=50.0),
               "shipped built-in fine-tuned, its recipe + loss jitter 4 + shift loss 50 (the TV runs' control)"),
    "ft_tv3": (dict(from_builtin=True, loss_jitter=4, shift_weight=50.0, tv_weight_scale=3.0),
               "shipped built-in fine-tuned, its recipe + loss jitter 4 + shift loss 50, TV weight x3"),
    "ft_tv10": (dict(from_builtin=True, loss_jitter=4, shift_weight=50.0, tv_weight_scale=10.0),
                "shipped built-in fine-tuned, its recipe + loss jitter 4 + shift loss 50, TV weight x10"),
    # Training length: the shipped built-in trained on with exactly its own recipe (snapshots every chunk).
    "ft_long": (dict(OWN), "shipped built-in trained on with its own recipe (loss jitter 4, shift loss 50), for length"),
    "len_whole": (dict(from_builtin=True, whole_recipe=True),
                  "shipped built-in trained on with the whole recipe it was made with (lr, extra losses, crop scale), "
                  "for length"),
    "ft128_long": (dict(OWN_128), "shipped built-in trained on with its own recipe (loss jitter 4, no shift loss), "
                                  "128-px crops of 256-px photos, for length"),
    # Against the stroke texture's spectral peaks directly (losses.peak_loss); ft_long is the control.
    "ft_peak1": (dict(OWN, peak_weight=1.0), "ft_long + spectral-peak loss weight 1"),
    "ft_peak03_long": (dict(OWN, peak_weight=0.3), "ft_long + spectral-peak loss weight 0.3"),
    "ft_peak03_edges": (dict(OWN, peak_weight=0.3),
                        "ft_peak03_long with the peak loss seeing the borders (mirrored spectrum), from the model it "
                        "made"),
    "ft_peak03_edges2": Again("ft_peak03_edges"),
    "ft128_peak03": (dict(OWN_128, peak_weight=0.3), "ft128_long + spectral-peak loss weight 0.3"),
    "ft_peak03_edges3": Again("ft_peak03_edges2"),
    "ft_peak03_edges_lr3": (dict(OWN, peak_weight=0.3, lr=3e-4), "ft_peak03_edges at lr 3e-4, from the shipped model"),
    "ft_peak03_edges_lr3_2": Again("ft_peak03_edges_lr3"),
    "ft_peak03_edges_lr3_sw2x": (dict(OWN, peak_weight=0.3, lr=3e-4, style_weight_scale=2.0),
                                 "ft_peak03_edges_lr3 with style weight x2, from the shipped model"),
    "ft_peak1_lr3_sw2x": (dict(OWN, peak_weight=1.0, lr=3e-4, style_weight_scale=2.0),
                          "the shipped model, its own recipe with peak loss weight 1, style weight x2, lr 3e-4"),
    "ft_peak1_edges_lr3_3": (dict(OWN, from_variant="ft_peak03_edges_lr3_2", peak_weight=1.0, lr=3e-4),
                             "ft_peak03_edges_lr3_2 continued with peak loss weight 1"),
    "ft_peak1_edges_lr3_sw2x": (dict(OWN, from_variant="ft_peak1_edges_lr3_3", peak_weight=1.0, lr=3e-4,
                                     style_weight_scale=2.0),
                                "ft_peak1_edges_lr3_3 continued with style weight x2 (against the style the peak loss "
                                "takes)"),
    # The three newer styles washed out under every fine-tune with loss jitter and/or the shift loss: their own
    # crops, weights and taps without either, with the peak loss, at the trainer's lr and at lower ones.
    "ft_peak03_plain": (dict(from_builtin=True, peak_weight=0.3),
                        "shipped built-in, its own crops/weights/taps without loss jitter or shift loss + "
                        "spectral-peak loss 0.3"),
    "ft_peak03_plain_lr3": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4), "ft_peak03_plain at lr 3e-4"),
    "ft_peak03_plain_lr1": (dict(from_builtin=True, peak_weight=0.3, lr=1e-4), "ft_peak03_plain at lr 1e-4"),
    "ft_peak03_plain_lr3_sw2x": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, style_weight_scale=2.0),
                                 "ft_peak03_plain_lr3 with style weight x2 (against the style the peak loss takes)"),
    "ft_peak03_plain_lr3_sw2x_2": (dict(from_builtin=True, from_variant="ft_peak03_plain_lr3_sw2x", peak_weight=0.3,
                                        lr=3e-4),
                                   "ft_peak03_plain_lr3_sw2x again, from the model it made (length)"),
    "ft_peak03_plain_lr3_2": Again("ft_peak03_plain_lr3"),
    "ft_peak03_plain2": Again("ft_peak03_plain"),
    # Against the peakiness left after doubling the style weight: the peak loss at weight 1 on the shipped models
    # (whose recipes already carry the doubled style weight).
    "ft_peak1_lr3": (dict(OWN, peak_weight=1.0, lr=3e-4),
                     "the shipped model, its own recipe with peak loss weight 1, lr 3e-4"),
    "ft_peak1_plain_lr3": (dict(from_builtin=True, peak_weight=1.0, lr=3e-4),
                           "ft_peak03_plain_lr3 with peak loss weight 1"),
    "ft_nopeak_plain_lr3": (dict(from_builtin=True, peak_weight=0.0, lr=3e-4),
                            "ft_peak03_plain_lr3 without the peak loss (its control)"),
    # What is left in the newer three's spectra is mostly the 4-px grid (core.spectrum.grid_spike_fraction): the
    # shift loss against it, at 10 (below the 50 that washed these styles out before their style weight was doubled),
    # and at 50 with the style weight doubled to make up for the style it takes.
    "ft_peak03_plain_lr3_shift10": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, shift_weight=10.0),
                                    "ft_peak03_plain_lr3 + shift-equivariance loss 10"),
    "ft_peak03_plain_lr3_shift50": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, shift_weight=50.0),
                                    "ft_peak03_plain_lr3 + shift-equivariance loss 50"),
    "ft_peak03_plain_lr3_shift50_sw2x": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, shift_weight=50.0,
                                              style_weight_scale=2.0),
                                         "ft_peak03_plain_lr3_shift50 with style weight x2 (against the style the "
                                         "shift loss takes)"),
    "ft_peak03_plain_lr3_sw2x_again": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, style_weight_scale=2.0),
                                       "ft_peak03_plain_lr3_sw2x once more, from the model it shipped (style weight "
                                       "x4 of the sixth round's)"),
    "ft_peak03_plain_lr3_sw2x_again2": (dict(from_builtin=True, from_variant="ft_peak03_plain_lr3_sw2x_again",
                                             peak_weight=0.3, lr=3e-4, style_weight_scale=2.0),
                                        "ft_peak03_plain_lr3_sw2x_again continued with its style weight x2 (x8 of "
                                        "the sixth round's)"),
    "ft_peak03_plain_lr3_sw2x_again3": (dict(from_builtin=True, from_variant="ft_peak03_plain_lr3_sw2x_again2",
                                             peak_weight=0.3, lr=3e-4, style_weight_scale=2.0),
                                        "ft_peak03_plain_lr3_sw2x_again2 continued with its style weight x2"),
    # composition_vii's and the_scream's style distance is still above the pre-study built-ins': their own recipe
    # with the style weight doubled once more, as udnie's and woman_with_hat's in the eighth round.
    "ft_peak03_edges_lr3_sw2x_again": (dict(OWN, peak_weight=0.3, lr=3e-4, style_weight_scale=2.0),
                                       "ft_peak03_edges_lr3_sw2x once more, from the model it shipped (style weight "
                                       "x4 of the sixth round's)"),
    "ft_peak03_edges_lr3_sw2x_again2": (dict(OWN, from_variant="ft_peak03_edges_lr3_sw2x_again", peak_weight=0.3,
                                             lr=3e-4, style_weight_scale=2.0),
                                        "ft_peak03_edges_lr3_sw2x_again continued with its style weight x2 (x8 of "
                                        "the sixth round's)"),
    # Training scale. The first four were made at 128-px crops and every fine-tune kept their recipe's crop size,
    # not the 256 px the first round chose. And the strongest spikes sit on large smooth areas of full-size photos
    # (the parrots' background), which whole photos shrunk to the crop size barely show: crops of photos at 512 px
    # let the peak loss see such areas at the scale the model is used at.
    "ft_peak03_edges_lr3_c256": (dict(OWN, peak_weight=0.3, lr=3e-4, image_size=256),
                                 "ft_peak03_edges_lr3 on 256-px crops (whole photos at 256 px)"),
    "ft_peak03_edges_lr3_c256_2": Again("ft_peak03_edges_lr3_c256"),
    "ft_peak03_edges_lr3_c256_3": Again("ft_peak03_edges_lr3_c256_2"),
    "ft_peak03_edges_lr3_c256_p512": (dict(OWN, peak_weight=0.3, lr=3e-4, image_size=256, photo_size=512),
                                      "ft_peak03_edges_lr3 on 256-px crops of photos at 512 px"),
    "ft_peak03_plain_lr3_p512": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, photo_size=512),
                                 "ft_peak03_plain_lr3 on crops of photos at 512 px (256 before)"),
    "ft_peak03_plain_lr3_p512_cw2": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, photo_size=512,
                                          content_weight=2.0),
                                     "ft_peak03_plain_lr3_p512 with content weight 2 (against the photo it loses)"),
    "ft_peak03_plain_lr3_c384": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, image_size=384),
                                 "ft_peak03_plain_lr3 on 384-px crops (whole photos at 384 px)"),
    "ft_peak03_plain_lr3_c384_2": Again("ft_peak03_plain_lr3_c384"),
    # 384-px crops gain style but let the 4-px grid take the strongest spikes (udnie); the shift loss is what cuts
    # the grid, and what it costs in style the larger crops may pay back.
    "ft_peak03_plain_lr3_c384_shift10": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, image_size=384,
                                              shift_weight=10.0),
                                         "ft_peak03_plain_lr3_c384 with the shift-equivariance loss at 10"),
    # udnie's grid goes with the shift loss, but its pale blobs grow: the photo weighted up against them.
    "ft_peak03_plain_lr3_shift50_sw2x_cw2": (dict(from_builtin=True, from_variant="ft_peak03_plain_lr3_shift50_sw2x",
                                                  peak_weight=0.3, lr=3e-4, shift_weight=50.0, content_weight=2.0),
                                             "ft_peak03_plain_lr3_shift50_sw2x continued with content weight 2"),
    # udnie's pale blobs are instance-norm spikes (train/norm_spikes.py): its own recipe with the spike loss.
    "ft_peak03_plain_lr3_spike1": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, spike_weight=1.0),
                                   "ft_peak03_plain_lr3 + instance-norm spike loss 1"),
    "ft_peak03_plain_lr3_spike3": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, spike_weight=3.0),
                                   "ft_peak03_plain_lr3 + instance-norm spike loss 3"),
    # The spike loss makes udnie's blobs larger, not smaller: they are what its stem tap's Gram asks for (the
    # painting's whites; removing them from an output raises the stem's style loss by 67-77%). Without that tap,
    # or with the painting at 512 px so its white facets come smaller:
    "ft_peak03_plain_lr3_nostem": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, style_layers=NO_STEM),
                                   "ft_peak03_plain_lr3 without the stem style tap"),
    "ft_peak03_plain_lr3_s512": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, style_size=512),
                                 "ft_peak03_plain_lr3 with the style image at 512 px (768 before)"),
    # Without the stem tap udnie's numbers all improved: the same on others, each on its own recipe.
    "ft_peak03_edges_lr3_c256_nostem": (dict(OWN, peak_weight=0.3, lr=3e-4, image_size=256, style_layers=NO_STEM),
                                        "ft_peak03_edges_lr3_c256 without the stem style tap"),
    "ft_peak03_plain_lr3_c384_nostem": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, image_size=384,
                                             style_layers=NO_STEM),
                                        "ft_peak03_plain_lr3_c384 without the stem style tap"),
    "ft_peak03_plain_lr3_p512_nostem": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, photo_size=512,
                                             style_layers=NO_STEM),
                                        "ft_peak03_plain_lr3_p512 without the stem style tap"),
    "ft_peak03_plain_lr3_nostem_2": Again("ft_peak03_plain_lr3_nostem"),
    "ft_peak03_plain_lr3_c384_nostem_2": Again("ft_peak03_plain_lr3_c384_nostem"),
    "ft_peak03_edges_lr3_c256_nostem_2": Again("ft_peak03_edges_lr3_c256_nostem"),
    # The parrots' bead texture (great_wave, starry_night): a heavier peak loss from the shipped model.
    "ft_peak1_edges_lr3_c256": (dict(OWN, peak_weight=1.0, lr=3e-4, image_size=256),
                                "ft_peak03_edges_lr3_c256 with peak loss 1"),
    "ft_peak1_edges_lr3_c256_nostem": (dict(OWN, peak_weight=1.0, lr=3e-4, image_size=256, style_layers=NO_STEM),
                                       "ft_peak1_edges_lr3_c256 without the stem style tap"),
    "ft_peak1_edges_lr3_c256_2": Again("ft_peak1_edges_lr3_c256"),
    "ft_peak1_edges_lr3_c256_nostem_2": Again("ft_peak1_edges_lr3_c256_nostem"),
    "ft_peak1_edges_lr3_c256_nostem_3": Again("ft_peak1_edges_lr3_c256_nostem_2"),
    "ft_peak1_plain_lr3_c384_nostem": (dict(from_builtin=True, peak_weight=1.0, lr=3e-4, image_size=384,
                                            style_layers=NO_STEM),
                                       "ft_peak03_plain_lr3_c384_nostem with peak loss 1 (woman_with_hat's cat)"),
    # The gallery pairs peak loss 1 left over 1.3x: a heavier peak loss for the parrots (starry_night,
    # great_wave), a lighter one for the cats (woman_with_hat, where 1 took the brushwork with the hatching, and
    # shipwreck, which 1 washed out).
    "ft_peak2_edges_lr3_c256": (dict(OWN, peak_weight=2.0, lr=3e-4, image_size=256),
                                "ft_peak1_edges_lr3_c256 with peak loss 2"),
    "ft_peak2_edges_lr3_c256_nostem": (dict(OWN, peak_weight=2.0, lr=3e-4, image_size=256, style_layers=NO_STEM),
                                       "ft_peak1_edges_lr3_c256_nostem with peak loss 2"),
    "ft_peak05_plain_lr3_c384_nostem": (dict(from_builtin=True, peak_weight=0.5, lr=3e-4, image_size=384,
                                             style_layers=NO_STEM),
                                        "ft_peak1_plain_lr3_c384_nostem with peak loss 0.5"),
    "ft_peak05_plain_lr3": (dict(from_builtin=True, peak_weight=0.5, lr=3e-4), "ft_peak1_plain_lr3 with peak loss 0.5"),
    "ft_peak05_plain_lr3_sw2x": (dict(from_builtin=True, peak_weight=0.5, lr=3e-4, style_weight_scale=2.0),
                                 "ft_peak05_plain_lr3 with style weight x2 (against the painting's colours it lost)"),
    # starry_night's parrots: 3-px diagonal stripes on the blurred background, its strokes shrunk below the
    # painting's; the painting presented larger (its reproduction is 1280 px) makes them larger.
    "ft_peak1_edges_lr3_c256_s1024": (dict(OWN, peak_weight=1.0, lr=3e-4, image_size=256, style_size=1024),
                                      "ft_peak1_edges_lr3_c256 with the painting at 1024 px (768 before)"),
    # udnie's cat: a faint 3-px hatching that only stands out because its flat facets leave the spectrum's rings
    # so low; the TV term is the one that prices faint fine texture on flat areas (tried on the others too).
    "ft_peak03_plain_lr3_tv3": (dict(from_builtin=True, peak_weight=0.3, lr=3e-4, tv_weight_scale=3.0),
                                "ft_peak03_plain_lr3 with TV weight x3"),
    "ft_peak03_edges_lr3_c256_tv3": (dict(OWN, peak_weight=0.3, lr=3e-4, image_size=256, tv_weight_scale=3.0),
                                     "ft_peak03_edges_lr3_c256 with TV weight x3"),
    # Peak loss 2 cut starry_night's parrot stripes but took the painting's yellows: style weight x2 against that.
    "ft_peak2_edges_lr3_c256_sw2x": (dict(OWN, peak_weight=2.0, lr=3e-4, image_size=256, style_weight_scale=2.0),
                                     "ft_peak2_edges_lr3_c256 with style weight x2"),
    # The parrots' stripes sit on a blurred background at the gallery's scale: crops at that scale (photos at 512
    # px, as shipwreck's p512) let the peak loss see them there.
    "ft_peak1_edges_lr3_c256_p512": (dict(OWN, peak_weight=1.0, lr=3e-4, image_size=256, photo_size=512),
                                     "ft_peak1_edges_lr3_c256 on 256-px crops of photos at 512 px"),
    "ft_peak1_edges_lr3_c256_p512_2": Again("ft_peak1_edges_lr3_c256_p512"),
    # One snapshot's look is partly the wander of the weights at a constant lr (len_whole's 8-16% swings).
    "len_whole_avg200": Averaged("len_whole", 200),
    "len_whole_avg400": Averaged("len_whole", 400),
    # great_wave's parrots stay over 1.3x under its averaged recipe: fine hatching on the blurred background,
    # priced by the TV term (udnie's lever) or a heavier peak loss, each averaged as the shipped model was.
    "len_whole_tv3": (dict(from_builtin=True, whole_recipe=True, tv_weight_scale=3.0), "len_whole with TV weight x3"),
    "len_whole_tv3_avg200": Averaged("len_whole_tv3", 200),
    "len_whole_peak2": (dict(from_builtin=True, whole_recipe=True, peak_weight=2.0), "len_whole with peak loss 2"),
    "len_whole_peak2_avg200": Averaged("len_whole_peak2", 200),
    "len_whole_peak2_2": Again("len_whole_peak2"),
    "len_whole_peak2_2_avg200": Averaged("len_whole_peak2_2", 200),
    "len_whole_peak3": (dict(from_builtin=True, whole_recipe=True, peak_weight=3.0), "len_whole with peak loss 3"),
    "len_whole_peak3_avg200": Averaged("len_whole_peak3", 200),
    # The heavier peak losses cost style distance: a larger style weight against that (shipwreck's sw2x).
    "len_whole_peak3_sw15": (dict(from_builtin=True, whole_recipe=True, peak_weight=3.0, style_weight_scale=1.5),
                             "len_whole with peak loss 3 and style weight x1.5"),
    "len_whole_peak3_sw15_avg200": Averaged("len_whole_peak3_sw15", 200),
    "len_whole_peak2_sw15": (dict(from_builtin=True, whole_recipe=True, peak_weight=2.0, style_weight_scale=1.5),
                             "len_whole with peak loss 2 and style weight x1.5"),
    "len_whole_peak2_sw15_avg200": Averaged("len_whole_peak2_sw15", 200),
    # Bigger strokes: the painting presented larger, so its strokes span more output pixels.
    "ft_s1024": (dict(OWN, style_size=1024), "ft_long with the style image at 1024 px"),
    "xs_long": (dict(FROM_STARRY), "the shipped starry_night and its recipe (no peak loss), on this painting"),
    "xs_peak03_long": (dict(FROM_STARRY, peak_weight=0.3),
                       "the shipped starry_night and its recipe with spectral-peak loss 0.3, on this painting"),
    "xs_peak03_sw2x": (dict(FROM_STARRY, peak_weight=0.3, style_weight_scale=2.0), "xs_peak03_long, style weight x2"),
}
# A continuation is its base's options starting from the base's model, so a length run cannot drift from the run
# it continues.
VARIANTS: dict[str, tuple[dict, str]] = {}
for _name, _entry in _LISTED.items():
    if isinstance(_entry, Again):
        _entry = (dict(VARIANTS[_entry.base][0], from_variant=_entry.base),
                  f"{_entry.base} again, from the model it made (length)")
    elif isinstance(_entry, Averaged):
        _entry = ({"average_of": tuple(_entry)}, f"{_entry.base} with its weights averaged from step {_entry.start} "
                                                 f"to its last, at every snapshot (average_from)")
    VARIANTS[_name] = _entry


def prepare(work: Path) -> None:
    photos, held = work / "photos", work / "heldout"
    photos.mkdir(parents=True, exist_ok=True)
    held.mkdir(parents=True, exist_ok=True)
    for p in sorted((SHARED / "content" / "kodak24").glob("*.png")) + sorted((SHARED / "content" / "misc").glob("*")):
        if p.name == "hubble_deep_field.jpg":
            continue  # a star field: no photo-like content
        shutil.copy(p, (held if p.name in HELD_OUT else photos) / p.name)
    import av

    for clip, picks in VIDEO_FRAMES.items():
        with av.open(str(SHARED / "video" / clip)) as c:
            for i, frame in enumerate(c.decode(video=0)):
                if i in picks:
                    frame.to_image().save(photos / f"{Path(clip).stem}_{i:04d}.png")
    # One more held-out video frame, between the training picks.
    with av.open(str(SHARED / "video" / "cars_432p.mp4")) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == 50:
                frame.to_image().save(held / "cars_0050.png")
                break
    print(f"{len(list(photos.iterdir()))} training photos, {len(list(held.iterdir()))} held out", file=sys.stderr)


def model_recipe(model: Path) -> dict:
    """The recipe of the model a run starts from as trainer options, lr 1e-3, no jitter or shift loss unless
    asked."""
    from train_builtins import model_recipe as recipe

    return {**recipe(model), "preset": "fast", "loss_net": "efficientnet-lite0", "lr": 1e-3,
            "loss_jitter": 0, "shift_weight": 0.0}


def _builtin_model(painting: str) -> Path:
    from train_builtins import shipped_model

    return shipped_model(painting)


def variant_config(name: str, work: Path, painting: str) -> dict:
    """A variant's trainer options: BASE with its change, or (from_builtin) the recipe of the model it starts
    from with its change. That model is the shipped built-in, or with from_variant an earlier run of this study,
    whose own recipe then carries on (so a rerun does not depend on what is shipped since)."""
    overrides = dict(VARIANTS[name][0])
    source = overrides.get("from_builtin", False)
    if "from_snapshot" in overrides:  # a seed-0 run of this study, at one of its snapshots
        parent, at = overrides.pop("from_snapshot")
        overrides["init_from"] = work / "runs" / f"{painting}_{parent}" / f"snap_{at:05d}.pt"
        if not overrides["init_from"].exists():
            sys.exit(f"train {painting}_{parent} to step {at} first")
    if not source:
        return _one_style_weight({**BASE, **overrides})
    source = painting if source is True else source
    init = _builtin_model(source)
    if "from_variant" in overrides:
        init = work / "runs" / f"{painting}_{overrides['from_variant']}" / "model.pt"
        if not init.exists():
            sys.exit(f"train {init.parent.name} first")
    whole = _whole_recipe(init) if overrides.pop("whole_recipe", False) else {}
    cfg = {**model_recipe(init), **PINNED, **whole, **overrides, "init_from": init}
    for key in ("from_builtin", "from_variant"):
        cfg.pop(key, None)
    cfg["style_weight"] *= cfg.pop("style_weight_scale", 1.0)
    cfg["tv_weight"] *= cfg.pop("tv_weight_scale", 1.0)
    return _one_style_weight(cfg)


def _whole_recipe(model: Path) -> dict:
    """The rest of the recipe a model was made with (model_recipe leaves these to each variant): its optimizer,
    extra losses and crop scale."""
    from styleengine.core.checkpoint import load_checkpoint

    c = load_checkpoint(model).train_config
    return {k: c[k] for k in WHOLE_RECIPE if k in c}


def _one_style_weight(cfg: dict) -> dict:
    if cfg.get("plain_style_weight") is None:
        cfg["plain_style_weight"] = cfg["style_weight"]
    return cfg


def train_variant(name: str, work: Path, steps: int, chunk: int, painting: str) -> Path:
    from train_builtins import save_snapshot, state_step

    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.train.trainer import TrainConfig, train

    if name == "shipped":
        return _builtin_model(painting)
    if name == "refined":
        sys.exit("refined runs come from train_builtins.py --refine; link WORK/runs/<painting>_refined/model.pt")
    if "average_of" in VARIANTS[name][0]:
        return average_snapshots(work, painting, name)
    cfg = variant_config(name, work, painting)
    vdir = work / "runs" / f"{painting}_{name}"
    vdir.mkdir(parents=True, exist_ok=True)
    out = vdir / "model.pt"
    # A finished run asked for more steps trains on from its final state (the trainer keeps it).
    if out.exists() and int(load_checkpoint(out).train_config.get("steps") or 0) >= steps:
        return out
    step = state_step(vdir / "model.train-state.pt")
    t0 = time.time()
    while step < steps:
        r = train(TrainConfig(SHARED / "styles" / f"{painting}.jpg", work / "photos", out, steps=steps,
                              checkpoint_every=chunk, preview_every=0, style_name=f"{painting}_{name}", **cfg),
                  stop_after=min(chunk, steps - step), resume=step > 0, overwrite=True)
        step = r.steps
        save_snapshot(r, vdir)
        print(f"[{name}] step {step}/{steps} {time.time() - t0:.0f} s {r.final_losses}", file=sys.stderr, flush=True)
    return out


def average_snapshots(work: Path, painting: str, name: str) -> Path:
    """An Averaged variant's model: the mean of its base run's snapshot weights from the start step to the last,
    finished as the trainer finishes (margin, phase bias) and recorded with the trainer's average_from and
    average_every, as a run with them would be."""
    from train_builtins import snapshot_mean

    from styleengine.core.checkpoint import load_checkpoint, save_model

    base, start = VARIANTS[name][0]["average_of"]
    runs = work / "runs" / f"{painting}_{base}"
    snaps = _snapshots(runs)
    steps = sorted(k for k in snaps if k >= start)
    if not steps or steps[0] != start:
        sys.exit(f"no snapshot at step {start} in {runs}: train {painting}_{base} that far first")
    made = sorted(snaps)
    every = min((b - a for a, b in zip(made, made[1:])), default=1)  # the run's chunk
    net, config = snapshot_mean([snaps[k] for k in steps], every, work)
    last = load_checkpoint(snaps[steps[-1]])
    out = work / "runs" / f"{painting}_{name}"
    out.mkdir(parents=True, exist_ok=True)
    save_model(out / "model.pt", net, style=last.style, train_config=config, loss_net=last.loss_net, overwrite=True)
    print(f"[{name}] mean of {len(steps)} snapshots of {painting}_{base}, steps {steps}", file=sys.stderr)
    return out / "model.pt"


def _snapshots(run: Path) -> dict[int, Path]:
    """A run's snapshots (train_variant's snap_<step>.pt) by step."""
    from train_builtins import snapshots

    return snapshots(run)


def _as_shipped(model):
    """Every model with the margin the trainer now saves (snapshots and earlier runs have none), so runs and the
    shipped built-ins are compared as they would ship."""
    from train_builtins import with_trainer_margin

    return with_trainer_margin(model)


def _stylize(model, img: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
        return model(x).clamp(0, 255).round().byte()[0].permute(1, 2, 0).numpy()


def report(work: Path, out: Path, painting: str, variants: list[str], at_step: int | None = None,
           base: str = "base") -> None:
    """Final models, or with `at_step` every variant's snapshot at that step (equal budgets for unfinished runs)."""
    import torch

    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.engine.environment import environment
    from styleengine.engine.quality import ContentDistance, StyleDistance

    torch.set_num_threads(2)
    out.mkdir(parents=True, exist_ok=True)
    held = sorted((work / "heldout").iterdir())
    photos = {p.stem: np.array(Image.open(p).convert("RGB")) for p in held}
    sd = StyleDistance(SHARED / "styles" / f"{painting}.jpg")
    cd = ContentDistance()
    rows, outputs = {}, {}
    for name in variants:
        vdir = work / "runs" / f"{painting}_{name}"
        path = vdir / ("model.pt" if at_step is None else f"snap_{at_step:05d}.pt")
        if name == "shipped":
            path = _builtin_model(painting)
        if not path.exists():
            print(f"[{name}] no {path.name} yet", file=sys.stderr)
            continue
        ck = load_checkpoint(path)
        row, outputs[name] = _evaluate(_as_shipped(ck.build_model()), photos, sd, cd)
        steps = ck.train_config["steps"] if name == "shipped" or at_step is None else at_step
        rows[name] = {"variant": name, "change": VARIANTS[name][1], "steps": steps,
                      **row, "train_config": ck.train_config}
        print(f"[{name}] {row}", file=sys.stderr)
    base = base if base in outputs else None
    tag = painting + ("" if at_step is None else f"_at{at_step}") + ("" if base in (None, "base") else f"_vs_{base}")
    show = [k for k in ("kodim23", "chelsea", "cars_0050") if k in photos]
    for name, outs in outputs.items():
        cols = [photos] + ([outputs[base]] if base and name != base else []) + [outs]
        grid = np.concatenate([np.concatenate([_fit(c[k], 512) for c in cols], 1) for k in show], 0)
        Image.fromarray(grid).save(out / f"{tag}_{name}.jpg", quality=85)
    if "kodim23" in photos and outputs:
        # 1:1 detail (a 160-px square of the parrot's head, enlarged 2x without smoothing): the grid shows here.
        tiles = [photos["kodim23"]] + [outs["kodim23"] for outs in outputs.values()]
        zoom = np.concatenate([t[160:320, 290:450].repeat(2, 0).repeat(2, 1) for t in tiles], 1)
        Image.fromarray(zoom).save(out / f"{tag}_zoom.png", optimize=True)
    (out / f"{tag}_study.json").write_text(json.dumps(
        {"painting": painting, "base": BASE, "compared_with": base, "at_step": at_step, "held_out": [p.name for p in held], "variants": list(rows.values()),
         "environment": environment()}, indent=1))
    when = "final models" if at_step is None else f"every run's snapshot at step {at_step}"
    lines = [f"# Recipe study: {painting}, `fast` preset, {when}; images: [photo | {base} | variant]", "",
             f"| variant | change | steps | {NUMBERS_HEADER} |", _rule(3)]
    lines += [f"| {r['variant']} | {r['change']} | {r['steps']} | {_numbers(r)} |" for r in rows.values()]
    (out / f"{tag}_study.md").write_text("\n".join(lines) + "\n")


NUMBERS_HEADER = ("peakiness (x photo) | grid spikes | grid error | style distance | content distance | "
                  "spiky channels")


def _rule(leading: int) -> str:
    """A markdown table's header rule for `leading` columns followed by NUMBERS_HEADER's."""
    return "|" + "---|" * (leading + NUMBERS_HEADER.count("|") + 1)


def _numbers(row: dict) -> str:
    """_evaluate's numbers as table cells, in NUMBERS_HEADER's order."""
    return (f"{row['peakiness_ratio']} (max {row['peakiness_ratio_max']}) | {row['grid_spikes']} | "
            f"{row['grid_error']} | {row['style_distance']} | {row['content_distance']} | "
            f"{row.get('spiky_channels', '–')}")


def _evaluate(model, photos: dict[str, np.ndarray], sd, cd) -> tuple[dict, dict[str, np.ndarray]]:
    """One model's numbers on the held-out photos, and its outputs."""
    from styleengine.core.spectrum import grid_spike_fraction, peakiness_ratio
    from styleengine.engine.quality import grid_error
    from styleengine.train.norm_spikes import norm_inputs, spiky_channel_share

    with norm_inputs(model) as seen:  # the spiky-channel share from the same forward passes
        outs = {k: _stylize(model, v) for k, v in photos.items()}
    peaky = [peakiness_ratio(outs[k], photos[k]) for k in photos]
    grid_err = [grid_error(lambda im: _stylize(model, im), v) for v in photos.values()]
    return {"peakiness_ratio": round(float(np.mean(peaky)), 3),
            "peakiness_ratio_max": round(float(np.max(peaky)), 3),
            "grid_spikes": round(float(np.mean([grid_spike_fraction(o) for o in outs.values()])), 2),
            "grid_error": round(float(np.mean(grid_err)), 3),
            "style_distance": round(sd(list(outs.values())), 4),
            "content_distance": round(float(np.mean([cd(photos[k], outs[k]) for k in photos])), 4),
            "spiky_channels": round(spiky_channel_share(seen), 3)}, outs


def length(work: Path, out: Path, painting: str, variant: str) -> None:
    """Training length: the shipped built-in and every snapshot of one run, on the held-out photos."""
    import torch
    from train_builtins import work_phase_photos

    from styleengine.core import phase_bias
    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.engine.environment import environment
    from styleengine.engine.quality import ContentDistance, StyleDistance

    torch.set_num_threads(2)
    out.mkdir(parents=True, exist_ok=True)
    photos = {p.stem: np.array(Image.open(p).convert("RGB")) for p in sorted((work / "heldout").iterdir())}
    sd, cd = StyleDistance(SHARED / "styles" / f"{painting}.jpg"), ContentDistance()
    snaps = _snapshots(work / "runs" / f"{painting}_{variant}")
    # The trainer measures the phase bias only when a run finishes: snapshots before that get theirs here, on
    # the same photos, so every row is what shipping that snapshot would give.
    calib_photos = work_phase_photos(work)
    rows = []
    for step, path in [(0, _builtin_model(painting))] + sorted(snaps.items()):
        model = _as_shipped(load_checkpoint(path).build_model())
        if not model.config.phase_bias:
            model, _ = phase_bias.calibrate(model, calib_photos)
        row, _ = _evaluate(model, photos, sd, cd)
        rows.append({"steps_more": step, **row})
        print(f"[{variant} +{step}] {row}", file=sys.stderr)
    tag = f"{painting}_{variant}_length"
    (out / f"{tag}.json").write_text(json.dumps(
        {"painting": painting, "variant": variant, "change": VARIANTS[variant][1],
         "held_out": list(photos), "rows": rows, "environment": environment()}, indent=1))
    lines = [f"# Training length: {painting}, {VARIANTS[variant][1]}; step 0 = the shipped built-in", "",
             f"| steps more | {NUMBERS_HEADER} |", _rule(1)]
    lines += [f"| {r['steps_more']} | {_numbers(r)} |" for r in rows]
    (out / f"{tag}.md").write_text("\n".join(lines) + "\n")


def phase_check(work: Path, out: Path) -> None:
    """Does the phase-bias rule (core.phase_bias.calibrate: measured on 16 training photos, kept only where it
    lowers the peakiness on 8 others) choose what the held-out photos would? Per shipped built-in, with its bias
    measured afresh: the rule's numbers and choice, and the held-out peakiness with that bias and with none."""
    import torch
    from train_builtins import PAINTINGS, work_phase_photos

    from styleengine.core import phase_bias
    from styleengine.core.checkpoint import load_checkpoint
    from styleengine.core.phase_pattern import mean_peakiness
    from styleengine.engine.environment import environment

    torch.set_num_threads(2)
    out.mkdir(parents=True, exist_ok=True)
    held = [np.array(Image.open(p).convert("RGB")) for p in sorted((work / "heldout").iterdir())]
    photos = work_phase_photos(work)
    rows = []
    for painting in PAINTINGS:
        fresh = phase_bias.without_bias(load_checkpoint(_builtin_model(painting)).build_model())
        measured, bare, calib = phase_bias.measure_and_check(fresh, photos)
        with_it = mean_peakiness(phase_bias.shipped_output(measured), held)
        without = mean_peakiness(phase_bias.shipped_output(bare), held)
        rows.append({"style": painting, **vars(calib), "heldout_with": round(with_it, 4),
                     "heldout_without": round(without, 4), "heldout_agrees": (with_it < without) == calib.kept})
        print(f"[{painting}] {rows[-1]}", file=sys.stderr, flush=True)
    (out / "phase_check.json").write_text(json.dumps(
        {"held_out": [p.name for p in sorted((work / "heldout").iterdir())], "rows": rows,
         "environment": environment()}, indent=1))
    lines = ["# The phase-bias rule against the held-out photos", "",
             "Bias measured afresh on each shipped built-in; peakiness = mean output/photo spectral peakiness.", "",
             "| style | rule: peakiness with / without (8 training photos) | rule keeps it | held-out: with / without "
             "(6 photos) | held-out agrees |", "|---|---|---|---|---|"]
    lines += [f"| {r['style']} | {r['peakiness_with']:.4f} / {r['peakiness_without']:.4f} | "
              f"{'yes' if r['kept'] else 'no (zero)'} | {r['heldout_with']:.4f} / {r['heldout_without']:.4f} | "
              f"{'yes' if r['heldout_agrees'] else 'no'} |" for r in rows]
    (out / "phase_check.md").write_text("\n".join(lines) + "\n")


def _fit(img: np.ndarray, width: int) -> np.ndarray:
    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((width, round(h * width / w)), Image.LANCZOS))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("prepare", "train", "report", "length", "phase-check"))
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--painting", default="starry_night")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--chunk", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "recipe")
    ap.add_argument("--at-step", type=int, default=None, help="report: compare every run's snapshot at this step")
    ap.add_argument("--base", default="base", help="report: the variant the side-by-side images compare against")
    args = ap.parse_args()
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    if args.command == "prepare":
        prepare(args.work)
    elif args.command == "train":
        import torch

        torch.set_num_threads(args.threads)
        for name in names:
            train_variant(name, args.work, args.steps, args.chunk, args.painting)
    elif args.command == "phase-check":
        phase_check(args.work, args.out)
    elif args.command == "length":
        for name in names:
            length(args.work, args.out, args.painting, name)
    else:
        report(args.work, args.out, args.painting, names, args.at_step, args.base)


if __name__ == "__main__":
    main()
