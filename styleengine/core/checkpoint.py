"""Self-describing checkpoints, and import of pytorch/examples fast_neural_style state dicts.

A styleengine model file is a plain dict (tensors, strings, numbers, lists) loadable with
`torch.load(..., weights_only=True)`:

    {"format": "styleengine.model/1", "arch": ArchConfig.to_dict(), "state_dict": {...},
     "style": {"name", "image_sha256", "image", "attribution"}, "train_config": {...}, "loss_net": str,
     "created_by": "styleengine X.Y.Z"}

Training checkpoints (for --resume) use "styleengine.train-state/1" and add optimizer, step and RNG states.
Nothing is ever unpickled beyond what weights_only allows.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from styleengine.core import __version__
from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_path, sha256_file

from .network import ArchConfig, TransformerNet

MODEL_FORMAT = "styleengine.model/1"
TRAIN_STATE_FORMAT = "styleengine.train-state/1"
_STALE_KEY = re.compile(r"in\d+\.running_(mean|var)$|\.num_batches_tracked$")


@dataclass
class Checkpoint:
    arch: ArchConfig
    state_dict: dict[str, torch.Tensor]
    style: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    loss_net: str | None = None
    source_format: str = MODEL_FORMAT  # or "pytorch-examples"
    sha256: str | None = None  # of the file it was loaded from
    raw: dict[str, Any] = field(default_factory=dict)  # the whole loaded dict (train state keeps extra keys)

    @property
    def style_name(self) -> str:
        return str(self.style.get("name") or "style")

    def build_model(self, device: str | torch.device = "cpu") -> TransformerNet:
        model = TransformerNet(self.arch)
        state = {k: v.float() if v.is_floating_point() else v for k, v in self.state_dict.items()}
        model.load_state_dict(state)
        return model.to(device).eval()

    def metadata(self) -> dict[str, Any]:
        """What travels into ONNX metadata_props and bundle manifests."""
        return {
            "style": self.style,
            "preset": self.arch.preset,
            "arch": self.arch.to_dict(),
            "loss_net": self.loss_net,
            "source_format": self.source_format,
            "source_sha256": self.sha256,
        }


def torch_load(path: Path) -> Any:
    """torch.load with weights_only=True, every failure a one-line StyleEngineError (nothing unsafe is run)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses globals it does not know: the file wants arbitrary code to run.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "global" in str(exc).lower():
            raise StyleEngineError(
                f"{path}: refused: the file needs arbitrary unpickling (not a plain weights file); nothing in it was run"
            ) from None
        # torch's own text advises weights_only=False, which would run the file: keep only what it found.
        detail = str(exc).split("WeightsUnpickler error:", 1)[-1].strip().splitlines()[0] if str(exc).strip() else first
        raise StyleEngineError(f"{path}: not a readable checkpoint ({detail[:120]}); nothing in it was run") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError, IndexError, TypeError,
            AttributeError, UnicodeDecodeError, MemoryError) as exc:
        # The pickle machinery raises all of these on non-checkpoint bytes (a text file: KeyError on an opcode).
        # Only the reader's own messages (RuntimeError/OSError...) say something; a bare KeyError '105' does not.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        detail = f": {first[:120]}" if first and isinstance(exc, (RuntimeError, OSError, ValueError)) else ""
        raise StyleEngineError(f"{path}: not a readable checkpoint (truncated or not a torch file{detail})") from None


def _infer_examples_arch(state: dict[str, torch.Tensor]) -> ArchConfig:
    try:
        w1 = state["conv1.conv2d.weight"].shape[0]
        w2 = state["conv2.conv2d.weight"].shape[0]
        w3 = state["conv3.conv2d.weight"].shape[0]
    except (KeyError, AttributeError, IndexError):
        raise StyleEngineError("unknown checkpoint format: neither a styleengine model nor a pytorch/examples "
                               "TransformerNet state dict") from None
    blocks = 0
    while f"res{blocks + 1}.conv1.conv2d.weight" in state:
        blocks += 1
    name = {(32, 64, 128): "johnson", (16, 32, 64): "fast"}.get((w1, w2, w3), "custom")
    return ArchConfig(name if blocks == 5 else "custom", (w1, w2, w3), blocks)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load a styleengine model / train state, or a pytorch/examples state dict. One-line errors."""
    path = Path(path)
    if not path.is_file():
        raise StyleEngineError(f"checkpoint not found: {path}")
    obj = torch_load(path)
    if not isinstance(obj, dict):
        raise StyleEngineError(f"{path}: unknown checkpoint format (a {type(obj).__name__}, not a dict)")
    fmt = obj.get("format")
    if fmt in (MODEL_FORMAT, TRAIN_STATE_FORMAT):
        try:
            arch = ArchConfig.from_dict(obj["arch"])
            state = obj["state_dict"]
        except (KeyError, ValueError) as exc:
            raise StyleEngineError(f"{path}: corrupt styleengine checkpoint ({exc})") from None
        ckpt = Checkpoint(arch, dict(state), style=dict(obj.get("style") or {}),
                          train_config=dict(obj.get("train_config") or {}), loss_net=obj.get("loss_net"),
                          source_format=fmt, raw=obj)
    elif isinstance(fmt, str):
        raise StyleEngineError(f"{path}: unknown checkpoint format {fmt!r}")
    elif obj and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        state = {k: v for k, v in obj.items() if not _STALE_KEY.search(k)}
        ckpt = Checkpoint(_infer_examples_arch(state), state, style={"name": path.stem},
                          source_format="pytorch-examples", raw={})
    else:
        raise StyleEngineError(f"{path}: unknown checkpoint format (no 'format' tag and not a state dict)")
    ckpt.sha256 = sha256_file(path)
    # Validate the weights against the architecture now, so later stages never see a half-loaded model.
    try:
        TransformerNet(ckpt.arch).load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in ckpt.state_dict.items()})
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise StyleEngineError(f"{path}: weights do not match the {ckpt.arch.preset} architecture ({first})") from None
    return ckpt


def save_model(path: str | os.PathLike, model: TransformerNet, *, style: dict | None = None,
               train_config: dict | None = None, loss_net: str | None = None, half: bool = False,
               overwrite: bool = True) -> Path:
    """Write a final, self-describing model file atomically. `half` stores FP16 weights (built-ins)."""
    state = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu().clone()
             for k, v in model.state_dict().items()}
    obj = {
        "format": MODEL_FORMAT,
        "arch": model.config.to_dict(),
        "state_dict": state,
        "style": dict(style or {}),
        "train_config": dict(train_config or {}),
        "loss_net": loss_net,
        "created_by": f"styleengine {__version__}",
    }
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        torch.save(obj, tmp)
    return path
