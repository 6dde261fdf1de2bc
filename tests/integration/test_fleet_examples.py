"""The fleet examples stay true: their own commands run here, shards and merge alike."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet_kit import shim_env
from marks import requires_bwrap

pytestmark = [pytest.mark.integration, requires_bwrap]
#: The project checkout (the playbook installs it as a package; the installed copy the tests
#: import may live in a virtual environment's site-packages, which is not installable).
PROJECT = Path(__file__).resolve().parents[2]
EXAMPLES = PROJECT / "examples"
ANSIBLE_VENV_ENV = "SANDBOXCHECK_ANSIBLE_PLAYBOOK"


def _step(steps: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(s for s in steps if s.get("name") == name)


def _expand(text: str, matrix: dict[str, Any]) -> str:
    """Evaluate the ``${{ matrix.x }}`` expressions the workflow uses (nothing else is allowed)."""
    def one(m: re.Match[str]) -> str:
        expr = m.group(1).strip()
        assert expr.startswith("matrix."), f"the test cannot evaluate ${{{{ {expr} }}}}"
        return str(matrix[expr.removeprefix("matrix.")])
    return re.sub(r"\$\{\{(.*?)\}\}", one, text)


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-e", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


def test_github_actions_fleet_workflow_runs_locally(tmp_path: Path) -> None:
    workflow = yaml.safe_load((EXAMPLES / "github-actions-fleet.yml").read_text())
    shard_job, merge_job = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    axes = shard_job["strategy"]["matrix"]
    assert len(axes["shard"]) == int(workflow["env"]["SHARDS"]), "SHARDS and the shard axis disagree"
    assert merge_job["needs"] == "shard" and merge_job["if"] == "always()"
    run_step = _step(shard_job["steps"], "Run one shard")
    upload = next(s for s in shard_job["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    download = next(s for s in merge_job["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"]["pattern"] == "sandboxcheck-*" and download["with"]["merge-multiple"] is True
    reports = tmp_path / download["with"]["path"]
    reports.mkdir()
    # Two runner images are enough to make a fleet; every shard of each runs as the job would.
    images = axes["image"][:2]
    for image in images:
        for shard in axes["shard"]:
            matrix = {"image": image, "shard": shard}
            job_dir = tmp_path / f"job-{image}-{shard}"
            job_dir.mkdir()
            env = shim_env(tmp_path, **workflow["env"],
                           **{k: _expand(str(v), matrix) for k, v in run_step["env"].items()})
            proc = _bash(run_step["run"], job_dir, env)
            assert proc.returncode == 0, proc.stderr
            # upload-artifact's glob, then download-artifact's merge-multiple into one folder.
            uploaded = list(job_dir.glob(upload["with"]["path"]))
            assert len(uploaded) == 1, uploaded
            shutil.copy(uploaded[0], reports / uploaded[0].name)
    merge_step = _step(merge_job["steps"], "Merge into the job summary and an HTML page")
    summary = tmp_path / "summary.md"
    proc = _bash(merge_step["run"], tmp_path, shim_env(tmp_path, GITHUB_STEP_SUMMARY=str(summary)))
    assert proc.returncode == 0, proc.stderr  # bwrap-strict holds on every check of the baseline
    text = summary.read_text()
    assert f"{len(images)} host(s), 1 target(s), {len(images) * len(axes['shard'])} report(s)" in text
    assert "Problems" not in text  # no shard missing, no duplicate
    for image in images:
        assert f"<code>bwrap-strict@{image}</code>" in text
    html = (tmp_path / "fleet.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and images[0] in html
    # The same reports as JSON: every host has every check, all of them passed.
    fleet = json.loads(subprocess.run([sys.executable, "-m", "sandboxcheck", "merge", *map(str, reports.iterdir()),
                                       "-f", "json"], env=shim_env(tmp_path), capture_output=True, text=True,
                                      check=True).stdout)
    assert [c["summary"]["pass"] for c in fleet["columns"]] == [43] * len(images)
    assert fleet["incomplete"] == [] and fleet["duplicates"] == []


def _ansible_playbook() -> str | None:
    return os.environ.get(ANSIBLE_VENV_ENV) or shutil.which("ansible-playbook")


def test_ansible_playbook_runs_on_localhost(tmp_path: Path) -> None:
    playbook = _ansible_playbook()
    if playbook is None:
        if os.environ.get("CI"):
            pytest.fail("ansible-playbook is not installed: pip install '.[fleet]' (CI must run this test)")
        pytest.skip("ansible-playbook is not installed: pip install '.[fleet]'")
    reports = tmp_path / "reports"
    env = shim_env(tmp_path, ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
                   ANSIBLE_HOME=str(tmp_path / "ansible-home"))
    proc = subprocess.run(
        [playbook, "-i", str(EXAMPLES / "ansible" / "inventory.ini"), str(EXAMPLES / "ansible" / "site.yml"),
         "-e", f"sandboxcheck_package={PROJECT}", "-e", f"sandboxcheck_venv={tmp_path / 'venv'}",
         "-e", f"sandboxcheck_reports={reports}", "-e", f"sandboxcheck_remote_dir={tmp_path / 'remote'}"],
        env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    fetched = sorted(p.name for p in reports.glob("*.json"))
    assert fetched == ["localhost.json"], fetched
    run = json.loads((reports / "localhost.json").read_text())
    assert run["summary"]["pass"] == 43 and run["host"]["label"] == "localhost"
    # One host and one target: the merge is that run's own report.
    merged_md = (reports / "fleet.md").read_text()
    assert "against <code>bwrap-strict</code>" in merged_md and "**43 passed, 0 failed" in merged_md
    merged_html = (reports / "fleet.html").read_text()
    assert merged_html.startswith("<!DOCTYPE html>") and "bwrap-strict@localhost" in merged_html
