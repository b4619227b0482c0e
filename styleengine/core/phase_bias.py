"""Cancelling the fixed 4-px pattern a transformation network adds (core.phase_pattern): it is nearly the same on
every photo (what is left after the average is ~20% of it), so it is measured once on a few photos and stored as
the network's `phase_bias` (see core.network), which the exported graphs carry like any other weight. The bias
is kept only where it lowers the outputs' peakiness on photos it was not measured on (core.phase_pattern); else
it is zero (the architecture keeps the bias, so the model still weight-blends with the others).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

import numpy as np
import torch

from .network import TransformerNet
from .phase_pattern import BIAS_SHAPE, MAX_SIDE, downscale, mean_peakiness, phase_pattern, split_for_check


@dataclass(frozen=True)
class PhaseCalibration:
    images: int  # photos the pattern was measured on
    rms_before: float  # 0-255 levels: the fixed pattern the outputs had
    rms_after: float  # and what is left of it with the new bias
    check_images: int  # other photos, where the bias was checked
    peakiness_without: float  # there: mean output/photo spectral peakiness with no bias
    peakiness_with: float  # and with the new bias
    kept: bool  # whether it lowered the peakiness; if not, the model's bias is zero


@torch.no_grad()
def _outputs(model: TransformerNet, photos: list[np.ndarray]) -> list[np.ndarray]:
    dev = next(model.parameters()).device
    return [model(torch.from_numpy(np.array(p, dtype=np.float32)).permute(2, 0, 1)[None].to(dev))[0]
            .clamp(0, 255).permute(1, 2, 0).cpu().numpy() for p in photos]


def _with_bias(model: TransformerNet, bias: torch.Tensor) -> TransformerNet:
    new = TransformerNet(replace(model.config, phase_bias=True)).to(next(model.parameters()).device)
    new.load_state_dict({**{k: v for k, v in model.state_dict().items() if k != "phase_bias"},
                         "phase_bias": bias.reshape(BIAS_SHAPE)})
    return new.eval()


def cancel_pattern(model: TransformerNet, photos: list[np.ndarray]) -> tuple[TransformerNet, float, float]:
    """A copy of `model` (in eval mode) whose phase bias cancels the fixed 4-px pattern of its outputs on
    `photos`, unchecked, with that pattern's rms before and after (0-255 levels). A bias the model has already is
    corrected by what is left."""
    was_training = model.training
    model.eval()
    try:
        before = phase_pattern(_outputs(model, photos))
        old = model.state_dict().get("phase_bias", torch.zeros(BIAS_SHAPE)).detach().cpu()
        new = _with_bias(model, old - torch.from_numpy(before).reshape(BIAS_SHAPE))
        after = phase_pattern(_outputs(new, photos))
    finally:
        model.train(was_training)
    return new, _rms(before), _rms(after)


def without_bias(model: TransformerNet) -> TransformerNet:
    """A copy of `model` (in eval mode) with a zero phase bias: the same architecture, no pattern added."""
    return _with_bias(model, torch.zeros(BIAS_SHAPE))


def shipped_output(model: TransformerNet):
    """uint8 HxWx3 -> the model's uint8 output, rounded as the exported graphs round it."""
    return lambda photo: np.rint(_outputs(model, [photo])[0]).astype(np.uint8)


def measure_and_check(model: TransformerNet, photos: Iterable[np.ndarray], *, max_side: int = MAX_SIDE
                      ) -> tuple[TransformerNet, TransformerNet, PhaseCalibration]:
    """calibrate's two candidates and its record: (the copy with the measured bias, the copy with none, the
    record saying which the check keeps)."""
    measure, check = split_for_check([downscale(np.asarray(p, dtype=np.uint8), max_side) for p in photos])
    new, rms_before, rms_after = cancel_pattern(model, measure)
    bare = without_bias(model)
    with_bias, without = mean_peakiness(shipped_output(new), check), mean_peakiness(shipped_output(bare), check)
    return new, bare, PhaseCalibration(len(measure), rms_before, rms_after, len(check), round(without, 4),
                                       round(with_bias, 4), with_bias < without)


def calibrate(model: TransformerNet, photos: Iterable[np.ndarray], *,
              max_side: int = MAX_SIDE) -> tuple[TransformerNet, PhaseCalibration]:
    """A copy of `model` with a phase bias that cancels the fixed 4-px pattern of its outputs, measured on most
    of `photos` (uint8 HxWx3 RGB; larger ones are downscaled to `max_side`) and kept only if it lowers the
    outputs' peakiness on the rest (core.phase_pattern.split_for_check); otherwise the copy's bias is zero. A
    model that has a bias already gets it corrected by what is left, so calibrating twice changes little."""
    new, bare, calib = measure_and_check(model, photos, max_side=max_side)
    return (new if calib.kept else bare), calib


def _rms(pattern: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(pattern))))
