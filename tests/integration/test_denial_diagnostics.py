"""Known answers for denial diagnostics on real sandboxes.

A denial carries the probe's own errno (name and number) or, for a spawned
program, its exit status and first stderr line; a check whose precondition
failed (a symlink the sandbox would not let the probe make, a shell it masks)
is inconclusive with that reason, never a pass.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.model import Matrix, Observed, Result, Status
from sandboxcheck.run.options import RunOptions
from sandboxcheck.run.schedule import run_matrix
from sandboxcheck.targets.registry import load_target

from marks import requires_bwrap, requires_landlock

pytestmark = pytest.mark.integration

MATRIX = r"""
version: 1
name: diagnostics
checks:
  - id: diag.ssh-link-in-workspace
    category: credentials
    title: Read the SSH key through a symlink the probe makes in the workspace
    probe: read_file
    args: {path: "{home}/.ssh/id_ed25519", via-symlink: "{workspace}/ssh-key-link"}
    expect: denied
  - id: diag.ssh-link-outside
    category: credentials
    title: Read the SSH key through a symlink the probe makes outside the workspace
    probe: read_file
    args: {path: "{home}/.ssh/id_ed25519", via-symlink: "{outside}/ssh-key-link"}
    expect: denied
  - id: diag.ssh-cat
    category: credentials
    title: Read the SSH key with cat, started by a shell
    probe: spawn
    args: {exec: precondition}
    argv: ["/bin/sh", "-c", "cat {home}/.ssh/id_ed25519"]
    evidence: {kind: leak}
    expect: denied
  - id: diag.shell
    category: exec
    title: Spawn a shell
    probe: spawn
    argv: ["/bin/sh", "-c", "printf '%s-%s\\n' SPAWNED {token}"]
    evidence: {kind: marker, marker: "SPAWNED-{token}"}
    expect: denied
"""
SECRET = "sk-diagnostics-0123456789abcdef"


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Matrix:
    path = tmp_path_factory.mktemp("diag") / "diagnostics.yaml"
    path.write_text(MATRIX)
    return load_matrix(path)


def results(matrix: Matrix, target: str) -> dict[str, Result]:
    t = load_target(target)
    if t.unavailable():
        pytest.skip(f"{target} is not installed here: {t.unavailable()}")
    report = run_matrix(matrix, t, RunOptions(jobs=2, preflight=False))
    return {r.id: r for r in report.results}


def assert_precondition(r: Result, step: str, errno: str, number: int) -> None:
    assert (r.status, r.observed) == (Status.INCONCLUSIVE, Observed.UNKNOWN), r
    assert r.reason.startswith(f"precondition failed: '{step}' failed with {errno} [errno {number}]"), r.reason
    assert r.reason.endswith("never ran, so this proves nothing")
    rep = r.to_dict()["probe_report"]
    assert (rep["precondition"], rep["errno"], rep["errno_number"]) == (step, errno, number)


LINK_STEP = "symlink {root}/%s/ssh-key-link -> {root}/home/.ssh/id_ed25519"


@requires_landlock
def test_landlock_link_refused_outside_is_inconclusive_and_allowed_inside_is_a_denial(matrix: Matrix) -> None:
    got = results(matrix, "landlock")
    inside = got["diag.ssh-link-in-workspace"]
    assert (inside.status, inside.errno, inside.layer) == (Status.PASS, "EACCES", "policy (LSM such as "
                                                           "Landlock/AppArmor, or permissions)")
    assert inside.reason.startswith("'read {root}/home/.ssh/id_ed25519 through symlink "
                                    "{root}/workspace/ssh-key-link' failed with EACCES [errno 13] (policy ")
    assert inside.to_dict()["probe_report"]["errno_number"] == 13
    assert_precondition(got["diag.ssh-link-outside"], LINK_STEP % "outside", "EACCES", 13)
    # The shell runs; cat is refused: the denial names cat's exit and its stderr.
    cat = got["diag.ssh-cat"]
    assert cat.status is Status.PASS and cat.errno is None
    assert cat.reason == ("'spawn /bin/sh' failed (exit status 1, stderr: 'cat: {root}/home/.ssh/id_ed25519: "
                          "Permission denied'); nothing took effect outside")
    rep = cat.to_dict()["probe_report"]
    assert (rep["exit_status"], rep["signal"], rep["precondition"]) == (1, None, None)


@requires_bwrap
def test_bwrap_strict_masked_shell_is_a_failed_precondition_unless_the_shell_is_the_point(matrix: Matrix) -> None:
    got = results(matrix, "bwrap-strict")
    assert_precondition(got["diag.ssh-cat"], "start /bin/sh", "EACCES", 13)
    shell = got["diag.shell"]  # exec.shell's own question: the masked shell is the denial
    assert (shell.status, shell.errno) == (Status.PASS, "EACCES")
    assert shell.reason.startswith("'spawn /bin/sh' failed with EACCES [errno 13] (policy ")
    inside = got["diag.ssh-link-in-workspace"]
    assert (inside.status, inside.errno, inside.to_dict()["probe_report"]["errno_number"]) == (
        Status.PASS, "ENOENT", 2)
    assert_precondition(got["diag.ssh-link-outside"], LINK_STEP % "outside", "ENOENT", 2)


def test_srt_read_only_workspace_makes_the_symlink_check_inconclusive_not_a_pass(matrix: Matrix) -> None:
    # srt's defaults allow writes nowhere: the link is never made, so the read never happens.
    got = results(matrix, "srt")
    assert_precondition(got["diag.ssh-link-in-workspace"], LINK_STEP % "workspace", "EROFS", 30)
    # srt reads everywhere: the same key read by cat leaks, and the leak is what counts.
    assert (got["diag.ssh-cat"].status, got["diag.ssh-cat"].observed) == (Status.FAIL, Observed.ALLOWED)


def test_a_spawned_programs_stderr_is_redacted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller's secret printed on the program's stderr never reaches the report."""
    monkeypatch.setenv("SANDBOXCHECK_DIAG_SECRET", SECRET)
    path = tmp_path / "m.yaml"
    path.write_text(f"""
version: 1
name: redaction
checks:
  - id: diag.stderr-secret
    category: exec
    title: A program that prints a secret on stderr and fails
    probe: spawn
    argv: ["/bin/sh", "-c", "echo 'token {SECRET[:10]}''{SECRET[10:]}' >&2; exit 2"]
    evidence: {{kind: marker, marker: "NEVER-{{token}}"}}
    expect: denied
    no_control: the program fails everywhere; only its report is under test
""")
    report = run_matrix(load_matrix(path), load_target("none"), RunOptions(preflight=False))
    (r,) = report.results
    assert r.reason == "'spawn /bin/sh' failed (exit status 2, stderr: 'token [redacted]'); nothing took effect outside " \
                       "[no control: the program fails everywhere; only its report is under test]"
    assert SECRET not in repr(r.to_dict())
    assert r.to_dict()["probe_report"]["stderr"] == "token [redacted]"
