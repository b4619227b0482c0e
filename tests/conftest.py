"""Shared fixtures. Tests use tiny random-weight networks so the suite runs in minutes on 2 CPU cores."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

ASSETS = Path(__file__).parent / "assets"


@pytest.fixture(scope="session")
def assets() -> Path:
    return ASSETS


@pytest.fixture()
def runner():
    """typer's CliRunner with stdout and stderr apart (the CLI's results vs its messages)."""
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # Click >= 8.2 always keeps stderr separate
        return CliRunner()


def make_tiny_model(seed: int = 0, widths=(4, 8, 16), blocks: int = 1, phase_bias: bool = True, margin: int = 8):
    """Random weights; with a random phase bias and the trainer's 8-px margin (as trained models have) unless
    phase_bias=False / margin=0."""
    import torch

    from styleengine.core.network import ArchConfig, TransformerNet

    torch.manual_seed(seed)
    model = TransformerNet(ArchConfig("custom", tuple(widths), blocks, phase_bias=phase_bias, margin=margin))
    # Random InstanceNorm affine params so the output is not a trivial function of the input.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("in") or ".in" in name:
                p.uniform_(0.5, 1.5) if name.endswith("weight") else p.uniform_(-0.5, 0.5)
        model.deconv3.conv2d.bias.fill_(127.0)
        model.deconv3.conv2d.weight.mul_(20.0)
        if phase_bias:
            model.phase_bias.uniform_(-8.0, 8.0)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A styleengine model file with a tiny custom architecture and random weights."""
    from styleengine.core.checkpoint import save_model

    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_model(path, make_tiny_model(), style={"name": "tiny"}, loss_net="random (test)")
    return path


@pytest.fixture(scope="session")
def tiny_bundle(tiny_checkpoint, tmp_path_factory) -> Path:
    """A bundle folder (manifest, model.pt, FP32/FP16 ONNX; no TensorRT plan) built from tiny_checkpoint.

    Session-scoped and shared: treat it as read-only (copy it with shutil.copytree to modify).
    """
    from styleengine.export.build import build_bundle

    out = tmp_path_factory.mktemp("bundle") / "tiny.engine"
    return build_bundle(tiny_checkpoint, out, tensorrt="off").path


@pytest.fixture(scope="session")
def tiny_bundle_b(tmp_path_factory) -> Path:
    """A second tiny bundle of the same architecture, other weights (blending, refit-style tests)."""
    from styleengine.core.checkpoint import save_model
    from styleengine.export.build import build_bundle

    folder = tmp_path_factory.mktemp("bundle_b")
    ckpt = save_model(folder / "tiny_b.pt", make_tiny_model(seed=2), style={"name": "tiny_b", "attribution": "B"},
                      loss_net="random (test)")
    return build_bundle(ckpt, folder / "tiny_b.engine", tensorrt="off").path
