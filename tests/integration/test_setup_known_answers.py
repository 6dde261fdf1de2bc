"""Known answers for checks with a setup step: the bundled 'preexisting' matrix on real sandboxes.

The harness plants a hard link and passes descriptors on the host; whether the
probe could use them is judged from outside (the outside file changed, its
canary in the target's output), never from the probe's word.
"""
from __future__ import annotations

import shutil

import pytest

from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.model import Observed, Status
from sandboxcheck.resources import resolve_matrix
from sandboxcheck.run.options import RunOptions
from sandboxcheck.run.schedule import run_matrix
from sandboxcheck.model import RunReport
from sandboxcheck.targets.registry import load_target

from marks import requires_bwrap

pytestmark = pytest.mark.integration
requires_firejail = pytest.mark.skipif(shutil.which("firejail") is None,
                                       reason="firejail not installed: apt-get install firejail")

HARDLINK, FD_READ, FD_WRITE = "fs.write.hardlink-preexisting", "fs.read.inherited-fd", "fs.write.inherited-fd"


def run(target: str) -> dict[str, object]:
    report: RunReport = run_matrix(load_matrix(resolve_matrix("preexisting")), load_target(target),
                                   RunOptions(jobs=2))
    return {r.id: r for r in report.results}


@pytest.mark.parametrize("target", ["none", pytest.param("bwrap-loose", marks=requires_bwrap)])
def test_hard_link_and_inherited_descriptors_reach_the_outside_file(target: str) -> None:
    results = run(target)
    hl = results[HARDLINK]
    assert (hl.observed, hl.status) == (Observed.ALLOWED, Status.FAIL), hl
    assert hl.evidence == ("{outside}/secret.txt changed on the host with the check's canary",)
    rd = results[FD_READ]
    assert (rd.observed, rd.status) == (Observed.ALLOWED, Status.FAIL), rd
    assert rd.evidence == ("canary of outside/secret.txt in the target's stdout",)
    wr = results[FD_WRITE]
    assert (wr.observed, wr.status) == (Observed.ALLOWED, Status.FAIL), wr
    assert wr.evidence == ("{outside}/fd-target.txt changed on the host with the check's canary",)


@requires_firejail
def test_firejail_closes_inherited_descriptors_but_not_hard_links() -> None:
    results = run("firejail")
    assert (results[FD_READ].observed, results[FD_READ].status) == (Observed.DENIED, Status.PASS)
    assert results[FD_READ].errno == "EBADF"
    assert (results[FD_WRITE].observed, results[FD_WRITE].status) == (Observed.DENIED, Status.PASS)
    assert (results[HARDLINK].observed, results[HARDLINK].status) == (Observed.ALLOWED, Status.FAIL)


def test_a_setup_step_that_fails_makes_the_check_inconclusive(tmp_path) -> None:
    m = tmp_path / "m.yaml"
    m.write_text("""\
checks:
  - id: fs.read.fd-missing
    category: fs-read
    title: pass a file that is not there
    setup:
      - pass_fd: "{outside}/missing.txt"
    probe: read_fd
    args: {fd: "{fd}"}
    expect: denied
""")
    report = run_matrix(load_matrix(m), load_target("none"), RunOptions(jobs=1))
    (r,) = report.results
    assert r.status is Status.INCONCLUSIVE
    assert r.reason.endswith("setup failed: pass_fd {root}/outside/missing.txt: No such file or directory")


def test_passed_descriptors_are_closed_after_the_run() -> None:
    import os

    before = set(os.listdir("/proc/self/fd"))
    results = run("none")
    assert results[FD_READ].status is Status.FAIL
    assert set(os.listdir("/proc/self/fd")) == before
