"""Run a matrix against a named target for the network known answers, skipping where the target cannot run."""
from __future__ import annotations

import pytest

from sandboxcheck.model import Matrix, RunReport
from sandboxcheck.run.options import RunOptions
from sandboxcheck.run.schedule import run_matrix
from sandboxcheck.targets.base import TargetError
from sandboxcheck.targets.registry import load_target


def run_or_skip(matrix: Matrix, target: str) -> RunReport:
    """``matrix`` run on ``target`` (a preset, preset@version or target file); skips when it is unavailable."""
    try:
        t = load_target(target)
    except TargetError as exc:
        pytest.skip(str(exc))
    why = t.unavailable()
    if why:
        pytest.skip(why)
    return run_matrix(matrix, t, RunOptions(jobs=2))
