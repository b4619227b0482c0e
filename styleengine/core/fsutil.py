"""Atomic writes: outputs go to a temporary name beside the target and are renamed into place."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import StyleEngineError


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def default_mode(directory: bool = False) -> int:
    """The mode a plain open()/mkdir() would give under the current umask (mkstemp/mkdtemp use 0600/0700)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def _check_parent(path: Path) -> None:
    parent = path.parent
    if not parent.is_dir():
        blocker = next((p for p in (parent, *parent.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            raise StyleEngineError(f"cannot write {path}: {blocker} is a file, not a folder")
        raise StyleEngineError(f"output folder does not exist: {parent}")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, overwrite: bool = True, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary file path beside `target`; on success rename it onto `target`, else delete it.

    `suffix` keeps the extension visible to writers that pick a format from it (Pillow, FFmpeg).
    """
    target = Path(target)
    _check_parent(target)
    if target.is_dir():
        raise StyleEngineError(f"cannot write {target}: a folder of that name is in the way")
    if not overwrite and target.exists():
        raise StyleEngineError(f"output exists (use --overwrite): {target}")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix + ".tmp",
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, default_mode())
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary folder beside `target`; on success it replaces `target`, else it is removed."""
    target = Path(target)
    _check_parent(target)
    if target.exists() and not target.is_dir():
        raise StyleEngineError(f"output exists and is not a folder: {target}")
    if not overwrite and target.exists():
        raise StyleEngineError(f"output exists (use --overwrite): {target}")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, default_mode(directory=True))
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
