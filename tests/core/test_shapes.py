"""--shape parsing and profile choice (pure Python)."""

from __future__ import annotations

import pytest

from styleengine.core.errors import StyleEngineError
from styleengine.core.shapes import DEFAULT_PROFILE, UHD_PROFILE, Profile, covering_profile, parse_shape, parse_shapes


def test_default_profile_covers_360p_to_1080p_both_orientations():
    (p,) = parse_shapes(None)
    assert p == DEFAULT_PROFILE
    for h, w in [(360, 640), (640, 360), (720, 1280), (1080, 1920), (1920, 1080), (64, 64)]:
        assert p.covers(1, h, w)
    assert not p.covers(1, 2160, 3840) and not p.covers(1, 37, 53)
    assert UHD_PROFILE.covers(1, 2160, 3840) and UHD_PROFILE.covers(1, 3840, 2160)


@pytest.mark.parametrize("spec,want", [
    ("720x1280", Profile((1, 720, 1280), (1, 720, 1280), (1, 720, 1280))),
    ("4x720x1280", Profile((4, 720, 1280), (4, 720, 1280), (4, 720, 1280))),
    ("256x256:1080x1920:1088x1920", Profile((1, 256, 256), (1, 1080, 1920), (1, 1088, 1920))),
    ("1x256x256:2x1080x1920:8x1080x1920", Profile((1, 256, 256), (2, 1080, 1920), (8, 1080, 1920))),
    (" 4K ", UHD_PROFILE),
    ("37x53", Profile((1, 37, 53), (1, 37, 53), (1, 37, 53))),  # sizes need not divide by 4
])
def test_parse_shape(spec, want):
    assert parse_shape(spec) == want


@pytest.mark.parametrize("spec,msg", [
    ("720", "not HxW"), ("720x", "not HxW"), ("axb", "not HxW"), ("1x2x3x4", "not HxW"),
    ("720x1280:1080x1920", "MIN:OPT:MAX"), ("1080x1920:720x1280:2160x3840", "min <= opt <= max"),
    ("4x4", "within 8..16384"), ("0x720x1280", "batch must be within"), ("720x99999", "within 8..16384"),
    ("-720x1280", "not HxW"),
])
def test_bad_shapes_are_one_line_errors(spec, msg):
    with pytest.raises(StyleEngineError, match=msg) as exc:
        parse_shape(spec)
    assert "\n" not in str(exc.value)


def test_parse_shapes_dedups_and_keeps_order():
    profs = parse_shapes(["default", "4k", "default"])
    assert profs == [DEFAULT_PROFILE, UHD_PROFILE]


def test_covering_profile_prefers_smallest_covering():
    profs = [UHD_PROFILE, DEFAULT_PROFILE]
    assert covering_profile(profs, 1, 720, 1280) == 1
    assert covering_profile(profs, 1, 2160, 3840) == 0
    assert covering_profile(profs, 1, 8, 8) is None
    assert covering_profile(profs, 2, 720, 1280) is None


def test_profile_roundtrip_and_nhwc_shapes():
    p = parse_shape("1x256x256:2x1080x1920:8x1080x1920")
    assert Profile.from_dict(p.to_dict()) == p
    assert p.input_shapes() == ((1, 256, 256, 3), (2, 1080, 1920, 3), (8, 1080, 1920, 3))
    assert parse_shape(p.spec()) == p


def test_fit_size_only_downscales_keeps_aspect_and_refuses_tiny_limits():
    from styleengine.core.shapes import fit_size

    assert fit_size(4000, 3000, 1000) == (1000, 750)
    assert fit_size(3000, 4000, 1000) == (750, 1000)
    assert fit_size(640, 360, 1000) == (640, 360)
    assert fit_size(640, 360, None) == (640, 360)
    assert fit_size(1000, 10, 100) == (100, 1)  # never below 1 px; the Stylizer pads up to MIN_SIDE
    with pytest.raises(StyleEngineError, match="at least 8"):
        fit_size(640, 360, 4)
