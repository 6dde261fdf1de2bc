"""Known answers: the baseline matrix in gVisor's user-space kernel (runsc, apt).

Measured on Debian 12 with runsc 0.0~20221219 (as root, --ignore-cgroups,
--network=none). ``gvisor`` is ``runsc do`` as people run it for a quick
sandbox; ``gvisor-strict`` an OCI bundle the harness writes. ``.ci/run``
installs runsc, so nothing here skips in CI.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from sandboxcheck.model import Matrix, Observed, Status
from sandboxcheck.run.options import RunOptions
from sandboxcheck.run.schedule import run_matrix
from sandboxcheck.model import RunReport
from test_real_sandboxes import HOME_CREDENTIALS, READS_OUTSIDE, available

pytestmark = pytest.mark.integration

# Writes that "succeed" inside gVisor's in-memory overlay and never reach the host.
OVERLAY_WRITES = {"fs.write.outside", "fs.write.symlink", "fs.write.tar-traversal", "fs.write.host-tmp",
                  "fs.write.home", "tamper.git-hook", "tamper.git-config", "tamper.claude-settings",
                  "tamper.codex-config", "tamper.bashrc", "fs.write.workspace"}


STATE = Path("/var/run/runsc")  # runsc's default --root


def state_entries() -> set[str]:
    return set(os.listdir(STATE)) if STATE.is_dir() else set()


@pytest.fixture(scope="module")
def reports(baseline: Matrix) -> dict[str, RunReport]:
    before = state_entries()
    out = {name: run_matrix(baseline, available(name), RunOptions(jobs=2))
           for name in ("gvisor", "gvisor-strict")}
    out["state left in /var/run/runsc"] = state_entries() - before  # type: ignore[assignment]
    return out


def by_status(report: RunReport, status: Status) -> set[str]:
    return {r.id for r in report.results if r.status is status}


def test_gvisor_do_reads_the_host_and_keeps_every_write_to_itself(reports: dict[str, RunReport]) -> None:
    report = reports["gvisor"]
    reasons = {r.id: r.reason for r in report.results if r.status is not Status.PASS}
    assert by_status(report, Status.FAIL) == {
        # `runsc do` shows the whole host root (read-only) to the command: every
        # outside file and dummy credential is readable.
        *READS_OUTSIDE, *HOME_CREDENTIALS,
        # The caller's environment is passed through, and the command is pid 1
        # of the sandbox, so /proc/1/environ is its own environment.
        "env.own", "env.proc-1",
        # Nothing restricts exec.
        "exec.shell",
        # The overlay takes the workspace's writes too: an agent's edits vanish.
        "fs.write.workspace",
    }, reasons
    assert by_status(report, Status.INCONCLUSIVE) == set(), reasons
    for r in report.results:
        if r.id in OVERLAY_WRITES:
            # The probe's write succeeded inside; the harness saw nothing change outside.
            assert r.observed is Observed.DENIED and "private view" in r.reason, r
    assert any("gVisor" in layer for layer in report.preflight["layers"]), report.preflight
    assert report.exit_code() == 1


def test_gvisor_strict_bundle_holds_the_baseline(reports: dict[str, RunReport]) -> None:
    report = reports["gvisor-strict"]
    reasons = {r.id: r.reason for r in report.results if r.status is not Status.PASS}
    assert by_status(report, Status.FAIL) == set(), reasons
    assert by_status(report, Status.INCONCLUSIVE) == set(), reasons
    result = {r.id: r for r in report.results}
    # Only the workspace is bound: outside files are absent, not refused.
    assert result["credentials.ssh-key"].errno == "ENOENT"
    # .git and the agents' settings are bound read-only, the shells masked.
    assert result["tamper.git-hook"].errno == "EROFS"
    assert result["exec.shell"].observed is Observed.DENIED
    # The workspace bind is real: the write reached the host.
    assert result["fs.write.workspace"].observed is Observed.ALLOWED
    layers = report.preflight["layers"]
    assert any("gVisor" in layer for layer in layers) and "fake home hidden" in layers, layers
    assert report.exit_code() == 0


def test_runsc_keeps_no_state_outside_the_root(reports: dict[str, RunReport]) -> None:
    # Both presets point runsc's --root into the throwaway root, removed with it.
    assert reports["state left in /var/run/runsc"] == set()


def test_runsc_version_keeps_its_snapshot_date() -> None:
    from sandboxcheck.targets.tools import installed_version

    available("gvisor")
    version = installed_version("runsc")
    # Debian's runsc prints "runsc version 0.0~20221219.0": the release is the date.
    assert version is not None and re.fullmatch(r"runsc \d+(\.\d+)+(~\d+(\.\d+)*)?", version), version
    assert "~" in version or not version.startswith("runsc 0.0"), version
