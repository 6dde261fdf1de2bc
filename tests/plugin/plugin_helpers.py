"""Matrices, a run spy and helpers shared by the plugin tests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest


#: Two checks: an outside read the sandbox must deny, a workspace read it must allow.
SMALL = """\
version: 1
name: small
checks:
  - id: fs.read.outside
    category: fs-read
    title: Read a canary file outside the workspace
    probe: read_file
    args: {path: "{outside}/secret.txt"}
    expect: denied
    fix: Deny reads outside the workspace.
  - id: fs.read.workspace
    category: fs-read
    title: Read a file in the workspace
    probe: read_file
    args: {path: "{workspace}/notes.txt"}
    expect: allowed
"""

#: A target that cannot start: every check through it is inconclusive (exit 127).
BROKEN = "/nonexistent/sandbox {cmd}"

#: Records each run_targets call of the plugin (one JSON line per call) in $SPY_LOG.
SPY_CONFTEST = """\
import json, os
import sandboxcheck.plugin.runs as plugin

def pytest_configure(config):
    real = plugin.run_targets

    def spy(matrix, targets, options=None, progress=None, harness=None):
        with open(os.environ["SPY_LOG"], "a") as fh:
            fh.write(json.dumps({"worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
                                 "checks": [c.id for c in matrix.checks],
                                 "targets": [t.name for t in targets],
                                 "harness": id(harness)}) + "\\n")
        return real(matrix, targets, options, progress, harness)

    plugin.run_targets = spy
    config.add_cleanup(lambda: setattr(plugin, "run_targets", real))
"""


def write_matrix(pytester: pytest.Pytester, text: str = SMALL, name: str = "small.yaml") -> Path:
    """Write a matrix file into the pytester folder."""
    path = pytester.path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def spy_on_runs(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install the run_targets spy; returns the log file it writes."""
    log = pytester.path / "runs.jsonl"
    monkeypatch.setenv("SPY_LOG", str(log))
    pytester.makeconftest(SPY_CONFTEST)
    return log


def read_runs(log: Path) -> list[dict[str, Any]]:
    """The spy's records."""
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


#: Plugins that may be installed here but have nothing to do with these tests;
#: hypothesis's alone adds a second to every inner run.
UNRELATED = ("-p", "no:hypothesispytest", "-p", "no:benchmark")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest in this process, in the pytester folder."""
    return pytester.runpytest(*UNRELATED, *args)


def run_subprocess(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest in a child process (for xdist and a clean environment)."""
    return pytester.runpytest_subprocess(*UNRELATED, *args, timeout=120)


def matrix_args(*targets: str, matrix: str = "small.yaml") -> list[str]:
    """``--sandboxcheck-matrix matrix --sandboxcheck-target t ...``."""
    out = ["--sandboxcheck-matrix", matrix]
    for t in targets:
        out += ["--sandboxcheck-target", t]
    return out
