"""Cancelling the fixed 4-px pattern a transformation network adds (core.phase_pattern): it is nearly the same on
every photo (what is left after the average is ~20% of it), so it is measured once on a few photos and stored as
the network's `phase_bias` (see core.network), which the exported graphs carry like any other weight.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

import numpy as np
import torch

from .network import TransformerNet
from .phase_pattern import BIAS_SHAPE, MAX_SIDE, downscale, phase_pattern


@dataclass(frozen=True)
class PhaseCalibration:
    images: int
    rms_before: float  # 0-255 levels: the fixed pattern the outputs had
    rms_after: float  # and what is left of it with the new bias


@torch.no_grad()
def _outputs(model: TransformerNet, photos: list[np.ndarray]) -> list[np.ndarray]:
    dev = next(model.parameters()).device
    return [model(torch.from_numpy(np.array(p, dtype=np.float32)).permute(2, 0, 1)[None].to(dev))[0]
            .clamp(0, 255).permute(1, 2, 0).cpu().numpy() for p in photos]


def calibrate(model: TransformerNet, photos: Iterable[np.ndarray], *,
              max_side: int = MAX_SIDE) -> tuple[TransformerNet, PhaseCalibration]:
    """A copy of `model` with a phase bias that cancels the fixed 4-px pattern of its outputs on `photos`
    (uint8 HxWx3 RGB; larger ones are downscaled to `max_side`). A model that has a bias already gets it
    corrected by what is left, so calibrating twice changes little."""
    photos = [downscale(np.asarray(p, dtype=np.uint8), max_side) for p in photos]
    was_training = model.training
    model.eval()
    try:
        before = phase_pattern(_outputs(model, photos))
        new = TransformerNet(replace(model.config, phase_bias=True)).to(next(model.parameters()).device)
        state = dict(model.state_dict())
        old = state.pop("phase_bias", torch.zeros(BIAS_SHAPE))
        state["phase_bias"] = old.detach().cpu() - torch.from_numpy(before).reshape(BIAS_SHAPE)
        new.load_state_dict(state)
        new.eval()
        after = phase_pattern(_outputs(new, photos))
    finally:
        model.train(was_training)
    return new, PhaseCalibration(len(photos), _rms(before), _rms(after))


def _rms(pattern: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(pattern))))
