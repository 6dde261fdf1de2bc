"""diff and compare on real runs."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from marks import requires_bwrap

pytestmark = [pytest.mark.integration, requires_bwrap]


def sc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sandboxcheck.cli", *args], capture_output=True, text=True,
                          timeout=600)


def test_compare_names_what_loosened(tmp_path: Path) -> None:
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    proc = sc("compare", "baseline", "--before", "bwrap-strict", "--after", "bwrap-loose", "--format", "json",
              "--report", f"before:{before}", "--report", f"after:{after}")
    assert proc.returncode == 1, proc.stderr
    changes = {c["id"]: c["change"] for c in json.loads(proc.stdout)["changes"]}
    assert changes["credentials.ssh-key"] == "loosened"
    assert changes["network.tcp"] == "loosened"
    # Still denied, but by the read-only root instead of an absent path.
    assert changes["fs.write.outside"] == "failure-mode-changed"
    assert changes["fs.read.workspace"] == "unchanged"
    # The same two reports through diff give the same answer, and the reverse direction tightens.
    forward = sc("diff", str(before), str(after), "--format", "json")
    assert forward.returncode == 1
    assert {c["id"]: c["change"] for c in json.loads(forward.stdout)["changes"]} == changes
    backward = sc("diff", str(after), str(before), "--format", "markdown")
    assert backward.returncode == 0
    assert "| tightened | `credentials.ssh-key` | allowed | denied |" in backward.stdout
    assert sc("diff", str(before), str(after), "--fail-on", "tightened").returncode == 0
    assert sc("diff", str(before), str(after), "--fail-on", "bogus").returncode == 2


def test_compare_same_target_is_stable() -> None:
    proc = sc("compare", "baseline", "--before", "bwrap-strict", "--after", "bwrap-strict", "--format", "json")
    assert proc.returncode == 0, proc.stdout
    summary = json.loads(proc.stdout)["summary"]
    assert summary["unchanged"] == 40, summary
