"""Preflight: a wrapper that silently falls open is named, and --require-isolation exits 1."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from marks import requires_bwrap

pytestmark = pytest.mark.integration

# What many wrappers do: use the sandbox helper when it is there, else run the
# command directly. The helper does not exist, so this target never isolates.
FALLS_OPEN = """name: falls-open
description: runs bwrap when its helper exists, else the command itself
command: [/bin/sh, -c, 'if command -v sandboxcheck-missing-helper >/dev/null; then exec sandboxcheck-missing-helper "$@"; else exec "$@"; fi', sh, "{cmd}"]
"""
ONE_CHECK = """checks:
  - id: fs.read.workspace
    category: fs-read
    title: read inside
    probe: read_file
    args: {path: "{workspace}/notes.txt"}
    evidence: {kind: leak, labels: [workspace-file]}
    expect: allowed
"""


def sc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sandboxcheck.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_falling_open_is_loud_and_fails_under_require_isolation(tmp_path: Path) -> None:
    target, matrix = tmp_path / "t.yaml", tmp_path / "m.yaml"
    target.write_text(FALLS_OPEN)
    matrix.write_text(ONE_CHECK)
    plain = sc("run", str(matrix), "--target", str(target))
    assert plain.returncode == 0  # the only check passes ...
    assert "NO ISOLATION DETECTED" in plain.stdout  # ... but the report says the sandbox is off
    assert "WARNING: the preflight saw no isolation at all" in plain.stderr
    strict = sc("run", str(matrix), "--target", str(target), "--require-isolation", "--format", "json")
    assert strict.returncode == 1
    pf = json.loads(strict.stdout)["preflight"]
    assert pf["ran"] is True and pf["isolated"] is False and pf["layers"] == []
    assert pf["workspace_visible"] is True and pf["home_visible"] is True


@requires_bwrap
def test_bwrap_strict_shows_its_layers(tmp_path: Path) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(ONE_CHECK)
    proc = sc("run", str(matrix), "--target", "bwrap-strict", "--require-isolation", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    pf = json.loads(proc.stdout)["preflight"]
    assert pf["isolated"] is True
    joined = "; ".join(pf["layers"])
    for part in ("own namespaces: cgroup, ipc, mnt, net, pid, user, uts", "NoNewPrivs", "fake home hidden"):
        assert part in joined
    assert pf["workspace_visible"] is True and pf["home_visible"] is False


def test_landlock_is_seen_through_no_new_privs(tmp_path: Path) -> None:
    matrix = tmp_path / "m.yaml"
    matrix.write_text(ONE_CHECK)
    proc = sc("run", str(matrix), "--target", "landlock", "--format", "json")
    pf = json.loads(proc.stdout)["preflight"]
    assert pf["isolated"] is True and pf["layers"] == ["NoNewPrivs"]
