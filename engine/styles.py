"""What `--style` means: a bundle folder, a .pt/.pth checkpoint (built into a cached bundle), a built-in name, or
a weight blend of same-architecture styles ('starry_night:0.6,great_wave:0.4').

Checkpoints are built into bundles once by engine.loaders and cached under $STYLEENGINE_CACHE/bundles/ (default
~/.cache/styleengine), keyed by the checkpoint's sha256, so renaming or moving the file reuses the cache and
editing it rebuilds.
"""

from __future__ import annotations

import os
from pathlib import Path

from styleengine.core.bundle import Bundle, is_bundle, load_bundle
from styleengine.core.errors import StyleEngineError

from . import builtin_styles
from .blend import blend_bundles, is_multi_style, parse_style_spec
from .loaders import bundle_from_checkpoint

CHECKPOINT_SUFFIXES = (".pt", ".pth")


def resolve_style(style: "str | os.PathLike | Bundle") -> Bundle:
    """Bundle folder, .pt/.pth checkpoint, built-in name, or a weight blend 'a:0.6,b:0.4' of same-architecture
    styles -> Bundle. One-line errors for anything else (styles that only blend by output need BlendedStylizer)."""
    if isinstance(style, Bundle):
        return style
    text = os.fspath(style)
    if not text:
        raise StyleEngineError("empty --style")
    if not Path(text).expanduser().exists() and is_multi_style(text):
        # 'a:0.5,b:0.5' of one architecture -> one weight-interpolated style (cached), single-style speed
        parts = parse_style_spec(text)
        if len(parts) == 1:
            return resolve_style(parts[0].style)
        return blend_bundles([resolve_style(p.style) for p in parts], [p.weight for p in parts])
    path = Path(text).expanduser()
    if path.is_dir():
        if is_bundle(path):
            return load_bundle(path)
        raise StyleEngineError(f"--style {text}: folder is not a styleengine bundle (no manifest.json)")
    if path.is_file():
        if path.suffix.lower() in CHECKPOINT_SUFFIXES:
            return bundle_from_checkpoint(path)
        raise StyleEngineError(f"--style {text}: expected a bundle folder or a .pt/.pth checkpoint")
    if os.sep not in text and "/" not in text:
        builtin = builtin_styles.builtin_bundle(text)
        if builtin is not None:
            return builtin
    names = builtin_styles.builtin_names()
    hint = f"; built-in styles: {', '.join(names)}" if names else ""
    if path.suffix.lower() in CHECKPOINT_SUFFIXES or os.sep in text or "/" in text:
        raise StyleEngineError(f"--style {text}: no such file or folder{hint}")
    raise StyleEngineError(f"unknown style {text!r}: not a bundle folder, a .pt/.pth checkpoint or a built-in name{hint}")
