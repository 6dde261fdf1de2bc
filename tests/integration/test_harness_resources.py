"""The harness gives back what it takes: descriptors, processes and folders, run after run."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.resources import resolve_matrix
from sandboxcheck.run.options import RunOptions
from sandboxcheck.run.schedule import run_matrix
from sandboxcheck.targets.registry import load_target

from marks import requires_bwrap

pytestmark = pytest.mark.integration


def _fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _children() -> set[int]:
    me = os.getpid()
    out: set[int] = set()
    for tid in os.listdir(f"/proc/{me}/task"):
        with open(f"/proc/{me}/task/{tid}/children") as fh:
            out.update(int(p) for p in fh.read().split())
    return out


@requires_bwrap
def test_runs_leave_no_descriptor_child_or_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    matrix = load_matrix(resolve_matrix("baseline"))
    run_matrix(matrix, load_target("none"), RunOptions(jobs=2))  # warm imports and caches
    fds, children = _fds(), _children()
    for target in ("none", "bwrap-strict", "none"):
        report = run_matrix(matrix, load_target(target), RunOptions(jobs=2))
        assert not report.leftovers
    assert _fds() == fds
    assert _children() <= children
    assert list(tmp_path.iterdir()) == []
