import os

import pytest

from styleengine.core.errors import StyleEngineError
from styleengine.core.fsutil import atomic_dir, atomic_path, default_mode


def test_atomic_path_renames_on_success_with_umask_mode(tmp_path):
    target = tmp_path / "out.png"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target and tmp.suffix == ".tmp"
        tmp.write_bytes(b"data")
        assert not target.exists()
    assert target.read_bytes() == b"data"
    assert (target.stat().st_mode & 0o777) == default_mode()
    assert os.listdir(tmp_path) == ["out.png"]


def test_atomic_path_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.png"]


def test_atomic_path_refuses_existing_without_overwrite_and_missing_folder(tmp_path):
    (tmp_path / "x").write_bytes(b"keep")
    with pytest.raises(StyleEngineError, match="--overwrite"):
        with atomic_path(tmp_path / "x", overwrite=False):
            pass
    with pytest.raises(StyleEngineError, match="does not exist"):
        with atomic_path(tmp_path / "missing" / "x"):
            pass
    assert (tmp_path / "x").read_bytes() == b"keep"


def test_atomic_dir_replaces_whole_folder_or_nothing(tmp_path):
    target = tmp_path / "b.engine"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    assert (target / "a").read_text() == "1"
    assert (target.stat().st_mode & 0o777) == default_mode(directory=True)
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "b").write_text("2")
            raise RuntimeError("boom")
    assert sorted(os.listdir(target)) == ["a"]
    with atomic_dir(target) as tmp:
        (tmp / "c").write_text("3")
    assert sorted(os.listdir(target)) == ["c"]
    assert sorted(os.listdir(tmp_path)) == ["b.engine"]
