import pytest
import torch

from styleengine.core.network import PRESETS, TransformerNet
from styleengine.train.norm_spikes import (
    SPIKE_KURTOSIS,
    channel_kurtosis,
    norm_inputs,
    norm_spike_loss,
    spiky_channel_share,
)


def _spiky(n_pixels=256, height=40.0):
    """(1, 2, 16, 16): a Gaussian channel and one with a single strong spike (the droplet)."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(1, 2, 16, 16, generator=g)
    a[0, 1, 5, 7] += height
    return a


def test_kurtosis_is_three_for_gaussian_channels_and_large_for_one_spike():
    g = torch.Generator().manual_seed(0)
    k = channel_kurtosis(torch.randn(2, 3, 128, 128, generator=g))
    assert k.shape == (2, 3)
    assert torch.allclose(k, torch.full_like(k, 3.0), atol=0.15)
    one_hot = torch.zeros(1, 1, 16, 16)
    one_hot[0, 0, 3, 4] = 100.0
    n = 16 * 16
    assert channel_kurtosis(one_hot).item() == pytest.approx((n * n - 3 * n + 3) / (n - 1), rel=1e-3)
    # Scale- and offset-free: what counts is the shape of the distribution.
    a = _spiky()
    assert torch.allclose(channel_kurtosis(a * 7 + 3), channel_kurtosis(a), rtol=1e-4)


def test_loss_is_zero_without_heavy_tails_and_descending_it_flattens_the_spike():
    g = torch.Generator().manual_seed(1)
    assert norm_spike_loss([torch.randn(2, 8, 32, 32, generator=g)]).item() == 0.0
    a = _spiky().requires_grad_(True)
    before = channel_kurtosis(a)[0, 1].item()
    assert before > SPIKE_KURTOSIS
    loss = norm_spike_loss([a])
    assert loss.item() == pytest.approx((before - SPIKE_KURTOSIS) / SPIKE_KURTOSIS / 2, rel=1e-4)  # 1 of 2 channels
    loss.backward()
    assert a.grad[0, 0].abs().max().item() == 0.0  # the Gaussian channel is left alone
    assert a.grad[0, 1, 5, 7].item() > 0  # gradient descent lowers the spike
    b = (a - 50.0 * a.grad).detach()
    assert channel_kurtosis(b)[0, 1].item() < before
    assert norm_spike_loss([a], threshold=before + 1).item() == 0.0
    with pytest.raises(ValueError, match="no instance-norm inputs"):
        norm_spike_loss([])


def test_norm_inputs_records_the_residual_and_decoder_norms_of_one_forward_then_unhooks():
    net = TransformerNet(PRESETS["fast"])
    x = torch.rand(1, 3, 32, 48) * 255
    with norm_inputs(net) as seen:
        net(x)
    w1, w2, w3 = PRESETS["fast"].widths
    blocks = PRESETS["fast"].blocks
    assert [t.shape[1] for t in seen] == [w3] * (2 * blocks) + [w2, w1]
    assert seen[0].shape[-2:] == (8, 12) and seen[-1].shape[-2:] == (32, 48)
    assert all(t.requires_grad for t in seen)  # the loss trains through them
    net(x)
    assert len(seen) == 2 * blocks + 2  # hooks are gone after the block


def test_spiky_channel_share_counts_the_channels_above_the_threshold_over_every_recorded_input():
    g = torch.Generator().manual_seed(2)
    # 1 spiky channel of 2, and 0 of 6: 1 of 8 channels in all.
    assert spiky_channel_share([_spiky(), torch.randn(2, 3, 16, 16, generator=g)]) == pytest.approx(1 / 8)
    assert spiky_channel_share([torch.randn(1, 4, 16, 16, generator=g)]) == 0.0
