"""Atomic writes: readers see the old content or the new one, never a half-written mix."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hourglass._atomic import atomic_directory, atomic_file


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_file_writes_the_new_content(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"  # the parent is created

    with atomic_file(target) as tmp:
        assert tmp.parent == target.parent
        assert not target.exists()  # nothing visible until the block succeeds
        tmp.write_text("new")

    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_atomic_file_replaces_existing_content(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")

    with atomic_file(target) as tmp:
        tmp.write_text("new")

    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def _write_file_then_fail(target: Path) -> None:
    with atomic_file(target) as tmp:
        tmp.write_text("half of the n")
        raise RuntimeError("disk full")


def _write_directory_then_fail(target: Path) -> None:
    with atomic_directory(target) as tmp:
        (tmp / "new.txt").write_text("partial")
        raise KeyboardInterrupt  # even a BaseException cleans up


def test_atomic_file_keeps_the_old_content_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")

    with pytest.raises(RuntimeError, match="disk full"):
        _write_file_then_fail(target)

    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_file_gets_ordinary_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"

    with atomic_file(target) as tmp:
        tmp.write_text("x")

    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask()


def test_atomic_directory_writes_a_new_directory(tmp_path: Path) -> None:
    target = tmp_path / "model"

    with atomic_directory(target) as tmp:
        assert tmp.parent == tmp_path
        assert not target.exists()
        (tmp / "a.txt").write_text("a")

    assert sorted(p.name for p in target.iterdir()) == ["a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~_umask()


def test_atomic_directory_replaces_an_existing_one(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "stale.txt").write_text("stale")

    with atomic_directory(target) as tmp:
        (tmp / "fresh.txt").write_text("fresh")

    assert sorted(p.name for p in target.iterdir()) == ["fresh.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no aside copy left


def test_atomic_directory_keeps_the_old_content_on_error(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old")

    with pytest.raises(KeyboardInterrupt):
        _write_directory_then_fail(target)

    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert (target / "old.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_directory_refuses_to_replace_a_file(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.write_text("not a directory")

    with pytest.raises(FileExistsError, match="not a directory"), atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("a")

    assert target.read_text() == "not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
