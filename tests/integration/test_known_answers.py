"""Known answers: the baseline matrix against real sandboxes on this machine.

These assert what each real sandbox does, check by check. When a sandbox
changes behaviour, the failing assertion names exactly which checks moved.
"""
from __future__ import annotations

import os

import pytest

from sandboxcheck.model import Matrix, Observed, Status
from sandboxcheck.run.options import RunOptions
from sandboxcheck.run.schedule import run_matrix
from sandboxcheck.model import RunReport
from sandboxcheck.targets.registry import load_target

from marks import requires_bwrap, requires_landlock

pytestmark = pytest.mark.integration
JOBS = os.cpu_count() or 2


def run(matrix: Matrix, target: str) -> RunReport:
    return run_matrix(matrix, load_target(target), RunOptions(jobs=JOBS))


def by_status(report: RunReport, status: Status) -> set[str]:
    return {r.id for r in report.results if r.status is status}


def denied_ids(matrix: Matrix) -> set[str]:
    return {c.id for c in matrix.checks if c.expect == "denied"}


def test_none_fails_every_denied_check(baseline: Matrix) -> None:
    report = run(baseline, "none")
    # env.proc-1 has no control: without a pid namespace, pid 1 is the host's
    # init, which never carries the check's canary, so nothing leaks there.
    assert by_status(report, Status.FAIL) == denied_ids(baseline) - {"env.proc-1"}
    assert by_status(report, Status.PASS) == {c.id for c in baseline.checks if c.expect == "allowed"} | {"env.proc-1"}
    assert report.exit_code() == 1
    for r in report.results:
        if r.status is Status.FAIL:
            assert r.observed is Observed.ALLOWED and r.evidence, r


@requires_bwrap
def test_bwrap_strict_passes_everything(baseline: Matrix) -> None:
    report = run(baseline, "bwrap-strict")
    bad = {r.id: r.reason for r in report.results if r.status is not Status.PASS}
    assert bad == {}
    assert report.exit_code() == 0
    # Denials are explained by the probe's errno, never proven by it.
    reasons = {r.id: r for r in report.results}
    assert reasons["credentials.ssh-key"].errno == "ENOENT"
    assert reasons["network.tcp"].errno in {"ENETUNREACH", "ECONNREFUSED"}
    assert reasons["tamper.git-hook"].errno == "EROFS"
    assert reasons["process.signal-host"].errno == "ESRCH"
    # No /etc in the sandbox: names do not resolve; the harness's address is unreachable.
    assert reasons["network.http"].errno == reasons["network.https"].errno == "EAI_AGAIN"
    assert reasons["network.http-direct"].errno == "ECONNREFUSED"


BWRAP_LOOSE_FAILS = {
    "fs.read.absolute", "fs.read.relative", "fs.read.symlink", "fs.read.proc-root",
    "fs.read.list-outside", "credentials.ssh-key", "credentials.aws", "credentials.gcloud",
    "credentials.kube", "credentials.netrc", "credentials.docker", "credentials.git",
    "credentials.npmrc", "credentials.pypirc", "credentials.dotenv-outside", "env.own",
    "env.proc-ppid", "exec.shell", "network.tcp", "network.udp", "network.dns",
    "network.http", "network.https", "network.http-direct", "process.daemon", "process.signal-host",
    "process.cmdline-host", "ipc.ssh-agent", "ipc.docker-sock", "tamper.git-hook", "tamper.git-config", "tamper.claude-settings",
    "tamper.codex-config",
}


@requires_bwrap
def test_bwrap_loose_is_caught(baseline: Matrix) -> None:
    report = run(baseline, "bwrap-loose")
    assert by_status(report, Status.FAIL) == BWRAP_LOOSE_FAILS
    results = {r.id: r for r in report.results}
    assert any("~/.ssh/id_ed25519" in e for e in results["credentials.ssh-key"].evidence)
    assert any("tcp sink" in e for e in results["network.tcp"].evidence)
    # No proxy named: the probe goes straight to the harness's web sink, as curl would.
    assert any("web sink" in e and "TLS server name 'egress.sandboxcheck.test'" in e
               for e in results["network.https"].evidence)
    assert any("$GITHUB_TOKEN" in e for e in results["env.own"].evidence)
    # Writes outside the workspace hit the read-only root: denied with EROFS.
    assert results["fs.write.outside"].status is Status.PASS
    assert results["fs.write.outside"].errno == "EROFS"


LANDLOCK_FAILS = {
    # Landlock confines paths and TCP, not the environment, UDP, unix path
    # sockets, process lifetime or the workspace's own dot-folders.
    "env.own", "env.proc-ppid", "exec.shell", "network.udp", "network.dns", "process.daemon",
    "process.cmdline-host", "ipc.ssh-agent", "ipc.docker-sock", "tamper.git-hook",
    "tamper.git-config", "tamper.claude-settings", "tamper.codex-config",
}


@requires_landlock
def test_landlock_behaves_as_its_rules_say(baseline: Matrix) -> None:
    report = run(baseline, "landlock")
    assert by_status(report, Status.FAIL) == LANDLOCK_FAILS
    results = {r.id: r for r in report.results}
    assert results["fs.read.absolute"].errno == "EACCES"
    assert results["network.tcp"].errno == "EACCES"  # ABI >= 4 handles TCP connect
    assert results["network.http"].errno == results["network.http-direct"].errno == "EACCES"
    assert results["process.signal-host"].errno == "EPERM"  # ABI >= 6 scopes signals
    assert results["fs.write.workspace"].status is Status.PASS
