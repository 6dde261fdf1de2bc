"""The fleet workflow's shard step passes on 0, 1 and 3 only: a usage error or a cancelled run fails the job.

The step's own script runs here with bash, as the runner would run it, against
real runs: a target that fails checks (exit 1), a bad shard (exit 2) and a run
interrupted with SIGINT while a check runs (exit 130, as when a job is cancelled).
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from fleet_kit import shim_env
from marks import eventually

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MARKER = "31.4159"


def _step() -> tuple[dict[str, Any], dict[str, Any]]:
    workflow = yaml.safe_load((EXAMPLES / "github-actions-fleet.yml").read_text())
    step = next(s for s in workflow["jobs"]["shard"]["steps"] if s.get("name") == "Run one shard")
    return workflow["env"], step


def _env(tmp: Path, target: str, shard: str) -> dict[str, str]:
    env, _ = _step()
    return shim_env(tmp, **{**env, "SANDBOXCHECK_TARGET": target},
                    SANDBOXCHECK_HOST_LABEL="test-image", SHARD=shard)


def _start(tmp: Path, target: str, shard: str) -> subprocess.Popen[str]:
    _, step = _step()
    job = tmp / "job"
    job.mkdir()
    return subprocess.Popen(["bash", "-e", "-c", step["run"]], cwd=job, env=_env(tmp, target, shard),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            # Ctrl-C's default disposition, whatever the test runner inherited.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def test_failed_checks_still_pass_the_step(tmp_path: Path) -> None:
    proc = _start(tmp_path, "none", "1")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err  # sandboxcheck said 1: the report is there for the merge
    assert len(list((tmp_path / "job").glob("sandboxcheck-test-image-1.json"))) == 1


def test_a_usage_error_fails_the_step(tmp_path: Path) -> None:
    proc = _start(tmp_path, "none", "9")  # shard 9 of 3
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err


def test_a_cancelled_run_fails_the_step(tmp_path: Path) -> None:
    target = f"/bin/sh -c 'sleep {MARKER}; exec \"$@\"' sh {{cmd}}"
    proc = _start(tmp_path, target, "1")

    def sleeping() -> bool:  # a check's launch is under way: the signal lands inside the run
        return any((p.info["cmdline"] or [""])[0] == "sleep" and MARKER in p.info["cmdline"]
                   for p in psutil.process_iter(["cmdline"]))

    try:
        assert eventually(lambda: sleeping() or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        runs = psutil.Process(proc.pid).children()
        assert len(runs) == 1, runs  # the sandboxcheck the step started (its shim execs python)
        runs[0].send_signal(signal.SIGINT)  # only the run, as the runner's cancel reaches it
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # the step and what it started: a process group of its own
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert eventually(lambda: not sleeping())
