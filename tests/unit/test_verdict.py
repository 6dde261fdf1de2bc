"""observe() and judge(): pure verdicts from hand-built executions."""
from __future__ import annotations

import dataclasses

import pytest

from sandboxcheck.model import Check, EvidenceSpec, Execution, Observed, ProbeReport, Status
from sandboxcheck.evidence.verdict import LAYERS, explain, judge, layer_for, observe

NEVER_RAN = "; a probe that did not run proves nothing"


def check(**kw) -> Check:
    base = dict(id="fs.read.absolute", category="fs-read", title="Read outside", probe="read_file",
                args=(("path", "{outside}/secret.txt"),), expect="denied",
                evidence=EvidenceSpec("leak"), severity="high")
    base.update(kw)
    return Check(**base)


def report(**kw) -> ProbeReport:
    base = dict(probe="read_file", action="open", attempted=True, ok=False, errno="EACCES",
                message="Permission denied")
    base.update(kw)
    return ProbeReport(**base)


def execution(**kw) -> Execution:
    base = dict(target="bwrap-strict", argv=("python3", "read_file.py"), returncode=1,
                timed_out=False, duration_s=0.25, stdout="", stderr="", probe=report(),
                evidence=(), effect=False)
    base.update(kw)
    return Execution(**base)


def allowed(**kw) -> Execution:
    """A run whose action took effect outside (the control's usual outcome)."""
    base = dict(target="none", returncode=0, probe=report(ok=True, errno=None, message="read"),
                evidence=("canary secret-file seen in stdout",), effect=True)
    base.update(kw)
    return execution(**base)


def denied(**kw) -> Execution:
    return execution(**kw)


# --- observe -------------------------------------------------------------------

def test_effect_is_allowed() -> None:
    assert observe(allowed()) is Observed.ALLOWED


@pytest.mark.parametrize("kw", [
    dict(probe=None),                                 # probe never reported
    dict(probe=report(ok=False, attempted=False)),    # probe says it did not even try
    dict(timed_out=True),
    dict(error="cannot launch: No such file or directory"),
    dict(returncode=127, probe=None),
])
def test_effect_outweighs_everything_the_probe_says(kw: dict) -> None:
    # Evidence outside is proof; the probe's own report only explains.
    assert observe(allowed(**kw)) is Observed.ALLOWED


def test_attempted_without_effect_is_denied() -> None:
    assert observe(denied()) is Observed.DENIED


def test_probe_claiming_success_without_effect_is_still_denied() -> None:
    assert observe(denied(probe=report(ok=True, errno=None))) is Observed.DENIED


@pytest.mark.parametrize("kw", [
    dict(probe=None, returncode=0),
    dict(probe=None, returncode=127, stderr="sh: 1: python3: not found\n"),
    dict(probe=report(attempted=False, errno=None)),
    dict(timed_out=True, returncode=None),
    dict(error="cannot launch target: [Errno 2] No such file or directory: 'bwrap'"),
])
def test_no_report_timeout_or_launch_error_is_unknown(kw: dict) -> None:
    assert observe(denied(**kw)) is Observed.UNKNOWN


# --- explain -------------------------------------------------------------------

def test_explain_allowed_joins_the_evidence() -> None:
    ex = allowed(evidence=("canary a seen in stdout", "file /o/x created"))
    assert explain(ex) == "canary a seen in stdout; file /o/x created"


def test_explain_denied_names_errno_and_layer() -> None:
    assert explain(denied(probe=report(action="open", errno="EROFS"))) == (
        "'open' failed with EROFS (read-only mount); nothing took effect outside")


def test_explain_denied_with_unknown_errno_has_no_layer() -> None:
    assert explain(denied(probe=report(action="connect", errno="EWEIRD"))) == (
        "'connect' failed with EWEIRD; nothing took effect outside")


def test_explain_private_view() -> None:
    assert explain(denied(probe=report(action="write", ok=True, errno=None))) == (
        "probe reported 'write' succeeded, but nothing took effect outside "
        "(it acted on a private view)")


@pytest.mark.parametrize("kw, reason", [
    (dict(probe=None, returncode=127, stderr="\n  sh: 1: python3: not found  \nmore\n"),
     "the probe never reported (exit 127 (command not found)): sh: 1: python3: not found" + NEVER_RAN),
    (dict(probe=None, returncode=126, stderr="permission denied"),
     "the probe never reported (exit 126 (could not execute)): permission denied" + NEVER_RAN),
    (dict(probe=None, returncode=0, stderr=""),
     "the probe never reported (exit 0)" + NEVER_RAN),
    (dict(timed_out=True, returncode=None, duration_s=10.04),
     "timed out after 10.0s; the target's process tree was killed"),
    (dict(error="cannot launch: bwrap: No such file or directory"),
     "cannot launch: bwrap: No such file or directory"),
])
def test_explain_unknown(kw: dict, reason: str) -> None:
    assert explain(denied(**kw)) == reason


def test_explain_unknown_truncates_stderr_to_200_chars() -> None:
    reason = explain(denied(probe=None, returncode=1, stderr="x" * 500))
    assert reason == "the probe never reported (exit 1): " + "x" * 200 + NEVER_RAN


# --- layer_for -----------------------------------------------------------------

@pytest.mark.parametrize("errno, layer", [
    ("EACCES", "policy (LSM such as Landlock/AppArmor, or permissions)"),
    ("EPERM", "policy (seccomp, LSM or capability check)"),
    ("EROFS", "read-only mount"),
    ("ENOENT", "path absent from the sandbox's view (mount namespace)"),
    ("ENETUNREACH", "no network: separate network namespace"),
    ("ESRCH", "process not visible: separate pid namespace"),
    ("NOVAR", "variable removed from the environment"),
    ("EWEIRD", None),
    (None, None),
    ("", None),
])
def test_layer_for(errno: str | None, layer: str | None) -> None:
    assert layer_for(errno) == layer


# --- judge ---------------------------------------------------------------------

def test_denied_as_expected_with_a_working_control_passes() -> None:
    r = judge(check(), denied(), allowed())
    assert r.status is Status.PASS
    assert r.observed is Observed.DENIED
    assert r.control == "allowed"
    assert r.errno == "EACCES"
    assert r.layer == LAYERS["EACCES"]
    assert r.reason == ("'open' failed with EACCES (policy (LSM such as Landlock/AppArmor, "
                        "or permissions)); nothing took effect outside")
    assert (r.id, r.category, r.title, r.expect, r.severity) == (
        "fs.read.absolute", "fs-read", "Read outside", "denied", "high")
    assert (r.target, r.probe_action, r.duration_s, r.evidence) == ("bwrap-strict", "open", 0.25, ())


def test_effect_where_denial_was_expected_fails_with_the_evidence() -> None:
    ex = allowed(target="bwrap-loose", evidence=("canary secret-file seen in stdout",))
    r = judge(check(), ex, allowed())
    assert r.status is Status.FAIL
    assert r.observed is Observed.ALLOWED
    assert r.evidence == ("canary secret-file seen in stdout",)
    assert r.reason == "canary secret-file seen in stdout"
    assert r.layer is None  # a layer is only named for a denial
    assert r.target == "bwrap-loose"


def test_expected_allowed_but_denied_fails() -> None:
    r = judge(check(expect="allowed"), denied(probe=report(errno="ENOENT")), allowed())
    assert r.status is Status.FAIL
    assert r.observed is Observed.DENIED
    assert r.expect == "allowed"
    assert r.layer == "path absent from the sandbox's view (mount namespace)"


def test_expected_allowed_and_allowed_passes() -> None:
    r = judge(check(expect="allowed"), allowed(), allowed())
    assert r.status is Status.PASS
    assert r.observed is Observed.ALLOWED


@pytest.mark.parametrize("expect", ["allowed", "denied"])
@pytest.mark.parametrize("kw", [
    dict(probe=None, returncode=127, stderr="python3: not found"),
    dict(timed_out=True, returncode=None),
    dict(error="cannot launch: boom"),
    dict(probe=report(attempted=False)),
])
def test_unknown_is_inconclusive_whatever_was_expected(expect: str, kw: dict) -> None:
    r = judge(check(expect=expect), denied(**kw), allowed())
    assert r.status is Status.INCONCLUSIVE
    assert r.observed is Observed.UNKNOWN
    assert r.layer is None
    assert r.reason == explain(denied(**kw))


def test_unknown_keeps_the_errno_the_probe_gave_but_names_no_layer() -> None:
    r = judge(check(), denied(probe=report(attempted=False, errno="ENOENT")), allowed())
    assert r.status is Status.INCONCLUSIVE
    assert (r.errno, r.layer) == ("ENOENT", None)


@pytest.mark.parametrize("control, control_obs", [
    (denied(target="none"), "denied"),
    (denied(target="none", probe=None, returncode=127), "unknown"),
    (denied(target="none", timed_out=True), "unknown"),
])
def test_control_that_did_not_succeed_is_inconclusive_never_pass(control: Execution,
                                                                 control_obs: str) -> None:
    r = judge(check(), denied(), control)
    assert r.status is Status.INCONCLUSIVE  # would be PASS with a working control
    assert r.observed is Observed.DENIED
    assert r.control == control_obs
    assert r.reason == (f"control without a sandbox could not do it either ({explain(control)}); "
                        f"target: {explain(denied())}")


def test_no_control_with_reason_is_judged_and_says_why() -> None:
    c = check(control=False, control_reason="pid 1 is the host's init without a pid namespace")
    r = judge(c, denied(), None)
    assert r.status is Status.PASS
    assert r.control is None
    assert r.reason.endswith(" [no control: pid 1 is the host's init without a pid namespace]")
    assert r.reason.startswith("'open' failed with EACCES")


def test_no_control_without_reason_adds_nothing() -> None:
    r = judge(check(), denied(), None)
    assert r.status is Status.PASS
    assert r.control is None
    assert "[no control" not in r.reason


def test_skip_wins_over_everything() -> None:
    c = check(skip="needs a second user")
    for ex, unavailable in [(allowed(), None), (None, "bwrap not found on PATH"), (denied(), None)]:
        r = judge(c, ex, allowed(), unavailable)
        assert r.status is Status.SKIP
        assert r.observed is Observed.UNKNOWN
        assert r.reason == "skipped: needs a second user"
        assert (r.evidence, r.duration_s, r.errno, r.control) == ((), 0.0, None, None)


def test_target_unavailable_is_inconclusive_with_the_hint() -> None:
    hint = "bwrap not found on PATH: apt-get install bubblewrap"
    r = judge(check(), None, None, hint)
    assert r.status is Status.INCONCLUSIVE
    assert r.observed is Observed.UNKNOWN
    assert r.reason == f"target unavailable: {hint}"
    assert r.duration_s == 0.0


def test_unavailable_wins_even_if_an_execution_is_given() -> None:
    r = judge(check(), allowed(), allowed(), "no landlock")
    assert r.status is Status.INCONCLUSIVE
    assert r.reason == "target unavailable: no landlock"


def test_result_to_dict_round_trips_the_verdict() -> None:
    d = judge(check(), denied(duration_s=0.123456), allowed()).to_dict()
    assert d["status"] == "pass"
    assert d["observed"] == "denied"
    assert d["control"] == "allowed"
    assert d["duration_s"] == 0.1235
    assert d["layer"] == LAYERS["EACCES"]
    assert d["evidence"] == []


def test_judge_is_pure() -> None:
    ex, ctl, c = denied(), allowed(), check()
    snapshot = (dataclasses.asdict(ex), dataclasses.asdict(ctl))
    first = judge(c, ex, ctl)
    assert judge(c, ex, ctl) == first
    assert (dataclasses.asdict(ex), dataclasses.asdict(ctl)) == snapshot


# --- denials explained: errno numbers, a spawned program's exit, failed preconditions ----------

def test_denial_reason_and_report_carry_the_errno_name_and_number() -> None:
    r = judge(check(), denied(probe=report(errno="EACCES", errno_number=13,
                                           message="[Errno 13] Permission denied: '/o/secret.txt'")),
              allowed())
    assert r.status is Status.PASS and r.errno == "EACCES"
    assert r.reason.startswith("'open' failed with EACCES [errno 13] (policy ")
    assert r.to_dict()["probe_report"] == {
        "errno": "EACCES", "errno_number": 13, "strerror": "Permission denied",
        "message": "[Errno 13] Permission denied: '/o/secret.txt'", "exit_status": None,
        "signal": None, "stderr": None, "precondition": None}


def spawned(returncode: int, stderr: str, signal: str | None = None, **kw) -> ProbeReport:
    return report(probe="spawn", action="spawn /usr/bin/python3", errno=None, message="",
                  data={"returncode": returncode, "signal": signal, "stdout": "", "stderr": stderr}, **kw)


def test_spawn_denial_names_the_exit_status_and_first_stderr_line() -> None:
    c = check(probe="spawn", evidence=EvidenceSpec("marker", marker="RAN-{token}"))
    stderr = "\n  Traceback (most recent call last):\n  File x\nPermissionError: denied\n"
    r = judge(c, denied(probe=spawned(1, stderr)), allowed())
    assert r.status is Status.PASS and "None" not in r.reason
    assert r.reason == ("'spawn /usr/bin/python3' failed (exit status 1, stderr: "
                        "'Traceback (most recent call last):'); nothing took effect outside")
    rep = r.to_dict()["probe_report"]
    assert (rep["exit_status"], rep["signal"], rep["stderr"], rep["errno"]) == (
        1, None, "Traceback (most recent call last):", None)


def test_spawn_killed_by_a_signal_says_which() -> None:
    r = judge(check(probe="spawn"), denied(probe=spawned(-31, "", signal="SIGSYS")), allowed())
    assert r.reason == ("'spawn /usr/bin/python3' failed (killed by SIGSYS, nothing on stderr); "
                        "nothing took effect outside")
    assert r.to_dict()["probe_report"]["signal"] == "SIGSYS"


def test_a_failure_without_errno_or_exit_says_so() -> None:
    r = judge(check(probe="daemon"), denied(probe=report(action="double fork a daemon", errno=None, message="")),
              allowed())
    assert r.reason == "'double fork a daemon' failed with no errno reported; nothing took effect outside"


def precondition(**kw) -> ProbeReport:
    base = dict(action="read ~/.ssh/id_ed25519 through symlink {root}/workspace/link", attempted=False,
                errno="EROFS", errno_number=30, message="[Errno 30] Read-only file system",
                precondition="symlink {root}/workspace/link -> ~/.ssh/id_ed25519")
    base.update(kw)
    return report(**base)


def test_a_failed_precondition_is_inconclusive_with_its_reason_never_a_pass() -> None:
    r = judge(check(), denied(probe=precondition()), allowed())
    assert (r.status, r.observed, r.layer) == (Status.INCONCLUSIVE, Observed.UNKNOWN, None)
    assert r.reason == ("precondition failed: 'symlink {root}/workspace/link -> ~/.ssh/id_ed25519' failed "
                        "with EROFS [errno 30] (read-only mount); 'read ~/.ssh/id_ed25519 through symlink "
                        "{root}/workspace/link' never ran, so this proves nothing")
    rep = r.to_dict()["probe_report"]
    assert (rep["precondition"], rep["errno"], rep["errno_number"]) == (
        "symlink {root}/workspace/link -> ~/.ssh/id_ed25519", "EROFS", 30)


def test_a_failed_precondition_of_a_spawned_shell_shows_its_exit() -> None:
    p = spawned(127, "sh: 1: cat: not found\n", attempted=False, precondition="start /bin/sh (a command it "
                "runs could not be executed)")
    r = judge(check(probe="spawn"), denied(probe=p), allowed())
    assert r.status is Status.INCONCLUSIVE
    assert r.reason.startswith("precondition failed: 'start /bin/sh (a command it runs could not be executed)' "
                               "failed (exit status 127, stderr: 'sh: 1: cat: not found'); ")


def test_an_escape_seen_outside_wins_over_a_reported_precondition() -> None:
    # The probe's word never overrides evidence: a leak is a leak.
    r = judge(check(), allowed(probe=precondition()), allowed())
    assert (r.status, r.observed) == (Status.FAIL, Observed.ALLOWED)


def test_a_control_whose_precondition_failed_makes_the_check_inconclusive() -> None:
    r = judge(check(), denied(), denied(probe=precondition()))
    assert r.status is Status.INCONCLUSIVE
    assert r.reason.startswith("control without a sandbox could not do it either (precondition failed: ")


def test_a_probe_that_did_not_attempt_without_a_precondition_says_so() -> None:
    r = judge(check(), denied(probe=report(attempted=False, errno=None, message="no path given")), allowed())
    assert r.status is Status.INCONCLUSIVE
    assert r.reason == "the probe did not attempt 'open': no path given"
