"""The run layer with a fake Target: the harness judges what it sees outside, whatever the target says.

No sandbox is involved: each fake target is a small shell script the test writes,
standing for one way a real target can behave (run the probe, refuse, lie about
it, hang, be missing). The harness, its roots, controls, evidence and verdicts
are the real ones.
"""
from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.model import Status
from sandboxcheck.probes import PROBE_PREFIX
from sandboxcheck.run.options import RunOptions
from sandboxcheck.run.schedule import run_matrix
from sandboxcheck.targets.base import Target

WRITE_OUTSIDE = """\
checks:
  - id: fs.write.outside
    category: fs-write
    title: Create a file outside the workspace
    probe: write_file
    args: {path: "{outside}/created.txt", content: "written {token}"}
    evidence: {kind: file, path: "{outside}/created.txt", contains: "{token}"}
    expect: denied
    timeout: 5
"""

LIE = PROBE_PREFIX + json.dumps({"probe": "write_file", "action": "create", "attempted": True, "ok": False,
                                 "errno": "EACCES", "message": "Permission denied"})


class FakeTarget(Target):
    """A target whose process is ``/bin/sh -c SCRIPT fake CMD...``: ``"$@"`` is the probe."""

    def __init__(self, script: str, unavailable: str | None = None, name: str = "fake") -> None:
        self.name = name
        self.description = "a scripted stand-in for a sandbox"
        self.script = script
        self.why = unavailable
        self.launched = 0

    def unavailable(self) -> str | None:
        return self.why

    def argv(self, values: Mapping[str, str], cmd: Sequence[str]) -> list[str]:
        self.launched += 1
        return ["/bin/sh", "-c", self.script, "fake", *cmd]

    def environment(self, base: Mapping[str, str], caller: Mapping[str, str]) -> dict[str, str]:
        return dict(base)


@pytest.fixture()
def matrix(tmp_path: Path):
    path = tmp_path / "m.yaml"
    path.write_text(WRITE_OUTSIDE)
    return load_matrix(path)


def run(matrix, target: Target, **options):
    return run_matrix(matrix, target, RunOptions(jobs=1, preflight=False, **options))


def test_a_target_that_runs_the_probe_is_seen_to_let_the_write_through(matrix) -> None:
    result = run(matrix, FakeTarget('exec "$@"')).results[0]
    assert result.status is Status.FAIL and result.observed.value == "allowed"


def test_a_target_that_stops_the_write_is_a_pass_proven_by_the_control(matrix) -> None:
    # A real denial by the kernel: no byte may be written (the probe gets EFBIG).
    result = run(matrix, FakeTarget("trap '' XFSZ; ulimit -f 0; exec \"$@\"")).results[0]
    assert result.status is Status.PASS and result.observed.value == "denied", result.reason
    assert result.control == "allowed"
    assert result.probe_report is not None and result.probe_report["errno"] == "EFBIG"


def test_a_target_that_claims_a_denial_but_writes_is_judged_by_the_file(matrix) -> None:
    # The probe line is the target's own word; the file on the host is the evidence.
    result = run(matrix, FakeTarget(f'"$@" >/dev/null; echo \'{LIE}\'')).results[0]
    assert result.status is Status.FAIL and result.observed.value == "allowed"


def test_a_target_that_never_runs_the_probe_is_inconclusive_never_a_pass(matrix) -> None:
    for control in (True, False):
        result = run(matrix, FakeTarget('echo "Permission denied" >&2; exit 1'), control=control).results[0]
        assert result.status is Status.INCONCLUSIVE and result.observed.value == "unknown"
        assert "the probe never reported (exit 1): Permission denied" in result.reason


def test_a_hanging_target_times_out_as_inconclusive(matrix) -> None:
    start = time.monotonic()
    result = run(matrix, FakeTarget("sleep 60"), timeout=0.5).results[0]
    assert time.monotonic() - start < 15
    assert result.status is Status.INCONCLUSIVE and "timed out" in result.reason


def test_an_unavailable_target_is_never_launched(matrix) -> None:
    target = FakeTarget('exec "$@"', unavailable="fakebox not installed: apt-get install fakebox")
    report = run(matrix, target)
    assert target.launched == 0
    assert [r.status for r in report.results] == [Status.INCONCLUSIVE]
    assert report.results[0].reason == "target unavailable: fakebox not installed: apt-get install fakebox"
