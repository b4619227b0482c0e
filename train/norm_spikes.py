"""Instance-norm spikes: the "droplet" artefact of networks that normalize each feature map (Karras et al.,
"Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020, section 2).

Instance normalization rescales every channel of every image to unit variance. A network that wants a channel
flatter than that can cheat: a strong, localized spike dominates the channel's variance, so normalizing by it
shrinks the channel everywhere else. In the image the spike is a blob that has nothing to do with the photo
(udnie's pale, glowing blobs: on the cat photo, channels of its residual blocks hold 73-89% of their energy in
the 3% of pixels under the blobs, at 6-7 standard deviations).

The spike shows as a heavy-tailed channel: its kurtosis E[z^4] (z: the channel standardized over the image)
is far above a Gaussian's 3. `norm_spike_loss` penalizes kurtosis above a threshold at the inputs of the
normalizations after the encoder (residual blocks and decoder). The encoder's are left out: there the tails
come from the photo itself (a small bright object on a dark frame).

The loss removes the spikes, but on udnie the blobs grow instead of going (recipe README, fourteenth round):
there the blobs are the painting's whites that the style loss asks for, and the spike was only how the
network drew them. It is off by default; `spiky_channel_share` stays as a diagnostic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from styleengine.core.network import ResidualBlock, TransformerNet

# A Gaussian channel has kurtosis 3. On the training photos at 512 px, starry_night's residual channels have a
# median of 3.3-4.8 and a 90th percentile of 4.4-6.4 (up to 27 on frames with small bright objects); udnie's
# 90th percentile is 9-37.
SPIKE_KURTOSIS = 10.0


def spike_norms(model: TransformerNet) -> list[torch.nn.InstanceNorm2d]:
    """The instance norms after the encoder: those of the residual blocks, then the decoder's."""
    norms = [m for block in model.modules() if isinstance(block, ResidualBlock)
             for m in (block.in1, block.in2)]
    return norms + [model.in4, model.in5]


@contextlib.contextmanager
def norm_inputs(model: TransformerNet) -> Iterator[list[torch.Tensor]]:
    """Collects the inputs of spike_norms(model) during the forward passes run inside the block."""
    seen: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda _m, inp, _out: seen.append(inp[0])) for m in spike_norms(model)]
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def channel_kurtosis(a: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C): E[z^4] of each channel standardized over its pixels, in float32."""
    a = a.float().flatten(2)
    z = (a - a.mean(-1, keepdim=True)) / (a.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt()
    return z.pow(4).mean(-1)


def norm_spike_loss(inputs: list[torch.Tensor], threshold: float | None = None) -> torch.Tensor:
    """Mean over layers, images and channels of relu(kurtosis - threshold), divided by the threshold (default
    SPIKE_KURTOSIS): zero for a network whose channels are no more heavy-tailed than that."""
    if not inputs:
        raise ValueError("no instance-norm inputs were recorded")
    threshold = SPIKE_KURTOSIS if threshold is None else threshold
    return torch.stack([F.relu(channel_kurtosis(a) - threshold).mean() for a in inputs]).mean() / threshold


def spiky_channel_share(inputs: list[torch.Tensor]) -> float:
    """The share of channels whose kurtosis is above SPIKE_KURTOSIS in norm inputs recorded by norm_inputs (one
    entry per image and norm): how much of the network runs on spikes."""
    k = torch.cat([channel_kurtosis(a.detach()).flatten() for a in inputs])
    return float((k > SPIKE_KURTOSIS).float().mean())
