"""What `--style` means: a bundle folder, a .pt/.pth checkpoint (built into a cached bundle) or a built-in name.

Checkpoints are built with styleengine.export.build.build_bundle once and cached under
$STYLEENGINE_CACHE/bundles/ (default ~/.cache/styleengine), keyed by the checkpoint's sha256, so renaming or
moving the file reuses the cache and editing it rebuilds.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from styleengine.errors import StyleEngineError

from .bundle import Bundle, is_bundle, load_bundle

CHECKPOINT_SUFFIXES = (".pt", ".pth")


def cache_root() -> Path:
    env = os.environ.get("STYLEENGINE_CACHE")
    root = Path(env).expanduser() if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "styleengine"
    return root


def _builtins():
    """The built-in styles module, or None where it is not installed (names then are not supported)."""
    try:
        from . import builtin_styles
    except ImportError:
        return None
    return builtin_styles


def builtin_names() -> list[str]:
    mod = _builtins()
    if mod is None:
        return []
    return [s.name if hasattr(s, "name") else str(s) for s in mod.list_builtins()]


def cached_bundle_path(checkpoint: Path, sha256: str) -> Path:
    return cache_root() / "bundles" / f"{sha256[:32]}.engine"  # content only: renames/moves reuse it


def bundle_for_checkpoint(checkpoint: str | os.PathLike, *, verbose: bool = True) -> Bundle:
    """The cached bundle built from `checkpoint`, building it on first use."""
    from styleengine.fsutil import sha256_file

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise StyleEngineError(f"checkpoint not found: {checkpoint}")
    sha = sha256_file(checkpoint)
    target = cached_bundle_path(checkpoint, sha)
    if is_bundle(target):
        bundle = load_bundle(target)
        if bundle.manifest.get("source_sha256") in (None, sha):
            return bundle
    try:
        from styleengine.export.build import build_bundle
    except ImportError as exc:
        raise StyleEngineError(f"building a bundle from {checkpoint.name} needs the export extra "
                               f"(pip install 'styleengine[train]'): {exc}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    if verbose:
        print(f"building bundle for {checkpoint.name} (once; cached in {target})", file=sys.stderr, flush=True)
    result = build_bundle(checkpoint, target, overwrite=True)
    return load_bundle(getattr(result, "path", target))


def resolve_style(style: "str | os.PathLike | Bundle", *, verbose: bool = True) -> Bundle:
    """Bundle folder, .pt/.pth checkpoint, built-in name, or a weight blend 'a:0.6,b:0.4' of same-architecture
    styles -> Bundle. One-line errors for anything else (styles that only blend by output need BlendedStylizer)."""
    if isinstance(style, Bundle):
        return style
    text = os.fspath(style)
    if not text:
        raise StyleEngineError("empty --style")
    if not Path(text).expanduser().exists():
        from .blend import is_multi_style, resolve_blend

        if is_multi_style(text):
            # 'a:0.5,b:0.5' of one architecture -> one weight-interpolated checkpoint (cached), single-style speed
            text = resolve_blend(text)
    path = Path(text).expanduser()
    if path.is_dir():
        if is_bundle(path):
            return load_bundle(path)
        raise StyleEngineError(f"--style {text}: folder is not a styleengine bundle (no manifest.json)")
    if path.is_file():
        if path.suffix.lower() in CHECKPOINT_SUFFIXES:
            return bundle_for_checkpoint(path, verbose=verbose)
        raise StyleEngineError(f"--style {text}: expected a bundle folder or a .pt/.pth checkpoint")
    mod = _builtins()
    if mod is not None and os.sep not in text and "/" not in text:
        builtin = mod.builtin_path(text)
        if builtin is not None:
            return bundle_for_checkpoint(builtin, verbose=verbose)
    names = builtin_names()
    hint = f"; built-in styles: {', '.join(names)}" if names else ""
    if path.suffix.lower() in CHECKPOINT_SUFFIXES or os.sep in text or "/" in text:
        raise StyleEngineError(f"--style {text}: no such file or folder{hint}")
    raise StyleEngineError(f"unknown style {text!r}: not a bundle folder, a .pt/.pth checkpoint or a built-in name{hint}")
