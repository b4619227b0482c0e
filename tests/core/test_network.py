from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from styleengine.core.network import (
    PRESETS,
    ArchConfig,
    TransformerNet,
    count_parameters,
    macs_per_pixel,
    preset,
    with_margin,
)
from tests.conftest import make_tiny_model


def test_johnson_preset_has_paper_parameter_count():
    assert count_parameters(TransformerNet(PRESETS["johnson"])) == 1_679_235


def test_fast_preset_is_half_width():
    n = count_parameters(TransformerNet(PRESETS["fast"]))
    assert n == 424_899
    assert macs_per_pixel(PRESETS["johnson"]) / macs_per_pixel(PRESETS["fast"]) > 3.5


@pytest.mark.parametrize("name", ["johnson", "fast"])
@pytest.mark.parametrize("size", [(8, 8), (33, 17), (63, 77), (64, 64), (101, 256)])
@pytest.mark.parametrize("margin", [0, 8])
def test_output_size_equals_input_size(name, size, margin):
    model = TransformerNet(replace(PRESETS[name], margin=margin)).eval()
    with torch.no_grad():
        y = model(torch.rand(2, 3, *size) * 255)
    assert y.shape == (2, 3, *size)


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        preset("huge")


def test_arch_config_round_trip():
    cfg = ArchConfig("custom", (8, 16, 32), 3)
    assert ArchConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        ArchConfig.from_dict({"widths": [1, 2], "blocks": 1})



def test_arch_config_with_a_field_this_version_lacks_is_refused():
    # Built as something else, such a network would run with the wrong structure and no error.
    with pytest.raises(ValueError, match="upsample"):
        ArchConfig.from_dict({**ArchConfig("custom", (8, 16, 32), 3).to_dict(), "upsample": "bilinear"})


def test_phase_bias_is_written_only_when_set_and_round_trips():
    plain = ArchConfig("custom", (8, 16, 32), 3)
    assert "phase_bias" not in plain.to_dict()  # older readers keep reading files without it
    biased = ArchConfig("custom", (8, 16, 32), 3, phase_bias=True)
    assert biased.to_dict()["phase_bias"] is True
    assert ArchConfig.from_dict(biased.to_dict()) == biased
    with pytest.raises(ValueError):
        ArchConfig.from_dict({**plain.to_dict(), "phase_bias": "yes"})


@pytest.mark.parametrize("size", [(8, 8), (33, 17), (64, 64)])
def test_phase_bias_adds_its_pattern_tiled_from_the_top_left(size):
    torch.manual_seed(0)
    plain = TransformerNet(ArchConfig("custom", (4, 8, 16), 1)).eval()
    biased = TransformerNet(ArchConfig("custom", (4, 8, 16), 1, phase_bias=True)).eval()
    assert torch.equal(biased.phase_bias, torch.zeros(1, 3, 1, 4, 1, 4))
    pattern = torch.randn(3, 4, 4)
    biased.load_state_dict({**plain.state_dict(), "phase_bias": pattern.reshape(1, 3, 1, 4, 1, 4)})
    x = torch.rand(2, 3, *size) * 255
    with torch.no_grad():
        diff = biased(x) - plain(x)
    h, w = size
    want = pattern.repeat(1, h // 4 + 1, w // 4 + 1)[:, :h, :w]
    assert torch.allclose(diff, want.expand_as(diff), atol=1e-4)


def test_margin_is_written_only_when_set_and_must_keep_the_4px_phase():
    plain = ArchConfig("custom", (8, 16, 32), 3)
    assert "margin" not in plain.to_dict()  # older readers keep reading files without it
    wide = ArchConfig("custom", (8, 16, 32), 3, margin=8)
    assert wide.to_dict()["margin"] == 8
    assert ArchConfig.from_dict(wide.to_dict()) == wide
    for bad in (6, -4, True, "8", 8.0):
        with pytest.raises(ValueError, match="margin"):
            ArchConfig.from_dict({**plain.to_dict(), "margin": bad})
    with pytest.raises(ValueError, match="multiple of 4"):
        ArchConfig("custom", (8, 16, 32), 3, margin=2)


@pytest.mark.parametrize("size", [(8, 8), (33, 17), (40, 52)])
def test_margin_is_reflected_input_around_the_image_cropped_from_the_output(size):
    # The network without the margin, on the input padded to a multiple of 4 and then reflected 4 px at a time,
    # cropped back: the same numbers, the phase bias still tiled from the image's top-left.
    model = make_tiny_model(seed=4, margin=0)
    wide = with_margin(model, 8)
    assert wide.config.margin == 8 and not wide.training
    h, w = size
    x = torch.rand(1, 3, h, w) * 255
    padded = F.pad(x, (0, (4 - w % 4) % 4, 0, (4 - h % 4) % 4), mode="reflect")
    for _ in range(2):
        padded = F.pad(padded, (4, 4, 4, 4), mode="reflect")
    with torch.no_grad():
        got, want = wide(x), model(padded)[..., 8:8 + h, 8:8 + w]
        assert not torch.allclose(got, model(x), atol=1e-3)  # the margin changes the output
    assert torch.allclose(got, want, atol=1e-4)


def test_with_margin_keeps_the_weights_and_the_mode():
    model = make_tiny_model(seed=5, margin=0).train()
    wide = with_margin(model, 4)
    assert wide.training
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), wide.state_dict().values()))
    assert with_margin(wide, 0).config == model.config
