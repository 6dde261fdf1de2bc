"""``conform: FILE`` in a matrix, run by ``sandboxcheck run``: the same verdicts as ``sandboxcheck conform``.

srt-net with the settings the matrix names honours every derived rule; the
same matrix on bwrap-loose (its own configuration, the file read but not
applied) shows the denied and unlisted domains and the denied read as
failures, with the checks located at the matrix's ``conform:`` line. An
allowedDomains entry scoped to a port (``host:{net_port}``) is honoured by
srt 0.0.78 on that port and refused on the sinks' second port; bwrap-loose
lets the second port through.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import sandboxcheck
from marks import requires_bwrap

pytestmark = pytest.mark.integration
SETTINGS = {"network": {"allowedDomains": ["allowed.sandboxcheck.test", "*.cdn.sandboxcheck.test"],
                        "deniedDomains": ["denied.sandboxcheck.test"], "allowLocalBinding": False},
            "filesystem": {"denyRead": ["~/.ssh"], "allowRead": [], "allowWrite": ["."], "denyWrite": []}}
NETWORK = {"conform.allow-domain.allowed-sandboxcheck-test", "conform.allow-domain.cdn-sandboxcheck-test",
           "conform.deny-domain.denied-sandboxcheck-test", "conform.unlisted-domain.unlisted-conform-sandboxcheck-test"}


def run(tmp_path: Path, target: str, settings: dict = SETTINGS) -> tuple[dict, str]:  # type: ignore[type-arg]
    (tmp_path / "policy.json").write_text(json.dumps(settings))
    matrix = tmp_path / "mine.yaml"
    matrix.write_text("name: mine\ndescription: my srt policy\nconform: policy.json\n")
    env = {**os.environ, "PYTHONPATH": str(Path(sandboxcheck.__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-m", "sandboxcheck", "run", str(matrix), "--target", target,
                           "--format", "json", "--jobs", "2"], capture_output=True, text=True, env=env, timeout=600)
    if done.returncode == 2 and "not available" in done.stderr:
        pytest.skip(done.stderr.strip())
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout), done.stderr


def test_srt_runs_with_the_declared_settings_and_honours_them(tmp_path: Path) -> None:
    report, stderr = run(tmp_path, "srt-net")
    assert f"conform: srt-net runs with the settings of {tmp_path / 'policy.json'}" in stderr
    status = {r["id"]: r["status"] for r in report["results"]}
    assert NETWORK <= set(status)
    assert {i for i, s in status.items() if s != "pass"} == set(), report["results"]


@requires_bwrap
def test_bwrap_loose_violates_what_the_file_declares(tmp_path: Path) -> None:
    report, stderr = run(tmp_path, "bwrap-loose")
    assert "runs with its own configuration (the file was read, not applied)" in stderr
    failed = {r["id"] for r in report["results"] if r["status"] == "fail"}
    assert {"conform.deny-domain.denied-sandboxcheck-test", "conform.unlisted-domain.unlisted-conform-sandboxcheck-test",
            "conform.deny-read.home-ssh"} <= failed
    assert "conform.allow-domain.allowed-sandboxcheck-test" not in failed


PORTS = {"network": {"allowedDomains": ["allowed.sandboxcheck.test:{net_port}"], "deniedDomains": []},
         "filesystem": {"denyRead": [], "allowRead": [], "allowWrite": ["."], "denyWrite": []}}
SCOPED = "conform.allow-domain.allowed-sandboxcheck-test-net-port"
OTHER = "conform.other-port.allowed-sandboxcheck-test-net-alt-port"


@pytest.mark.parametrize("target, other_port", [("srt-net", "pass"),
                                                 pytest.param("bwrap-loose", "fail", marks=requires_bwrap)])
def test_a_port_scoped_entry_is_tested_on_its_port_and_another(tmp_path: Path, target: str, other_port: str) -> None:
    report, _ = run(tmp_path, target, PORTS)
    status = {r["id"]: r["status"] for r in report["results"]}
    assert (status[SCOPED], status[OTHER]) == ("pass", other_port)
