"""The examples stay true: the CI workflow's sandboxcheck command runs as written."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from marks import requires_bwrap

pytestmark = [pytest.mark.integration, requires_bwrap]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_github_actions_workflow_command_runs(tmp_path: Path) -> None:
    workflow = yaml.safe_load((EXAMPLES / "github-actions-sandboxcheck.yml").read_text())
    steps = workflow["jobs"]["sandbox"]["steps"]
    script = next(s["run"] for s in steps if s.get("name") == "Run the baseline matrix")
    # The step is one shell command with a line continuation per option.
    command = shlex.split(script.replace("\\\n", " "))
    assert command[:3] == ["sandboxcheck", "run", "baseline"]
    baseline_opt = command.index("$(")
    command = command[:baseline_opt]
    proc = subprocess.run([sys.executable, "-m", "sandboxcheck.cli", *command[1:]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in ("sandboxcheck.json", "sandboxcheck.sarif", "sandboxcheck.md", "sandboxcheck.xml"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "sandboxcheck.json").read_text())["summary"]["pass"] == 43
    summary = next(s["run"] for s in steps if s.get("name") == "Job summary")
    assert "sandboxcheck.md" in summary and "GITHUB_STEP_SUMMARY" in summary
