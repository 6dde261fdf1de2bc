"""Descriptor-based file operations: nothing followed, nothing outside touched, bounded."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from sandboxcheck import safefs


@pytest.fixture
def decoy(tmp_path: Path) -> Path:
    host = tmp_path / "host"
    host.mkdir()
    (host / "keep.txt").write_text("host data")
    os.chmod(host, 0o755)
    return host


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_remove_at_never_follows_and_holds_one_descriptor(tmp_path: Path, decoy: Path) -> None:
    tree = tmp_path / "tree"
    deep = tree
    for i in range(300):  # deeper than any descriptor-per-level walk could afford to be careless
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "f").write_text("x")
    (tree / "link-dir").symlink_to(decoy)
    (tree / "link-file").symlink_to(decoy / "keep.txt")
    os.link(decoy / "keep.txt", tree / "hardlink")
    os.mkfifo(tree / "fifo")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        before = _fds()
        assert safefs.remove_at(fd, "tree") == []
        assert _fds() == before
    finally:
        os.close(fd)
    assert not tree.exists()
    assert (decoy / "keep.txt").read_text() == "host data" and sorted(os.listdir(decoy)) == ["keep.txt"]
    assert decoy.stat().st_mode & 0o777 == 0o755


def test_reads_refuse_fifos_devices_and_symlinks(tmp_path: Path, decoy: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to(decoy / "keep.txt")
    (tmp_path / "big").write_bytes(b"a" * 10_000)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in ("fifo", "link"):
            with pytest.raises(OSError):
                safefs.read_regular(fd, name, 100)
        assert safefs.read_regular(fd, "big", 100) == b"a" * 100
    finally:
        os.close(fd)


def test_write_beneath_replaces_a_planted_symlink_instead_of_writing_through(tmp_path: Path, decoy: Path) -> None:
    root = tmp_path / "root"
    (root / "ws").mkdir(parents=True)
    (root / "ws" / "settings.json").symlink_to(decoy / "keep.txt")
    (root / "sub").symlink_to(decoy)
    safefs.write_beneath(str(root), str(root / "ws" / "settings.json"), b"{}")
    assert (root / "ws" / "settings.json").read_bytes() == b"{}" and not (root / "ws" / "settings.json").is_symlink()
    with pytest.raises(OSError):
        safefs.write_beneath(str(root), str(root / "sub" / "x.json"), b"{}")  # a symlinked folder on the way
    with pytest.raises(OSError):
        safefs.write_beneath(str(root), str(tmp_path / "elsewhere.json"), b"{}")
    assert (decoy / "keep.txt").read_text() == "host data" and sorted(os.listdir(decoy)) == ["keep.txt"]
