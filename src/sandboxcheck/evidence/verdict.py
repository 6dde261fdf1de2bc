"""Judge one check from what was observed: a pure function, no I/O."""
from __future__ import annotations

import os
from typing import Any

from ..model import WAITED_PROBE, Check, Execution, Observed, ProbeReport, Result, Status

#: What an errno most likely says about the layer that stopped the probe.
LAYERS: dict[str, str] = {
    "EACCES": "policy (LSM such as Landlock/AppArmor, or permissions)",
    "EPERM": "policy (seccomp, LSM or capability check)",
    "EROFS": "read-only mount",
    "ENOENT": "path absent from the sandbox's view (mount namespace)",
    "ENOTDIR": "path absent from the sandbox's view (mount namespace)",
    "ECONNREFUSED": "nothing listening: separate network namespace",
    "ENETUNREACH": "no network: separate network namespace",
    "EHOSTUNREACH": "no network: separate network namespace",
    "ESRCH": "process not visible: separate pid namespace",
    "EAFNOSUPPORT": "socket family blocked (seccomp)",
    "ECONNRESET": "connection reset",
    "ETIMEDOUT": "packets dropped",
    "EAI_AGAIN": "name lookup failed: no resolver reachable (separate network namespace)",
    "EAI_NONAME": "name unknown in the sandbox's view",
    "PROXY_REFUSED": "refused by the sandbox's proxy: its domain filter",
    "NOVAR": "variable removed from the environment",
    # Agent targets: the harness's scripted model saw the agent refuse the call.
    "AGENT_DENIED": "the agent's permission check (it would have asked the user)",
    "AGENT_REFUSED": "the agent refused to start (its sandbox unavailable, or the folder not trusted)",
}


#: The layer of a denial where the probe succeeded inside but nothing happened outside.
PRIVATE_VIEW = "private view: the action worked inside the sandbox only"
#: The layer of a denial where the action was the agent's own start (an interactive
#: session that sat waiting for the user) and what the check watches never happened.
AGENT_WAITED = "the agent: it started and waited for the user; nothing the check watches ran"


def layer_for(errno: str | None) -> str | None:
    """The layer an errno points to, if known."""
    return LAYERS.get(errno) if errno else None


def observe(ex: Execution) -> Observed:
    """allowed when the action took effect, denied when attempted without effect, else unknown."""
    if ex.effect:
        return Observed.ALLOWED
    if ex.error or ex.probe is None or ex.timed_out or not ex.probe.attempted:
        return Observed.UNKNOWN
    return Observed.DENIED


def _first_line(text: Any) -> str:
    """The first non-blank line of ``text``, bounded (a spawned program's stderr)."""
    if not isinstance(text, str):
        return ""
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")[:200]


def _exit_status(p: ProbeReport) -> int | None:
    rc = p.data.get("returncode")
    return rc if isinstance(rc, int) and not isinstance(rc, bool) else None


def failure(p: ProbeReport) -> str:
    """How a probe's step failed, in its own words: ``EACCES [errno 13] (layer)``, or a
    spawned program's ``exit status 1, stderr: '...'`` / ``killed by SIGSYS``."""
    if p.errno:
        layer = layer_for(p.errno)
        return (f"with {p.errno}" + (f" [errno {p.errno_number}]" if p.errno_number else "")
                + (f" ({layer})" if layer else ""))
    rc, sig = _exit_status(p), p.data.get("signal")
    if rc is None and not sig:
        return "with no errno reported" + (f": {p.message}" if p.message else "")
    how = f"killed by {sig}" if sig else f"exit status {rc}"
    first = _first_line(p.data.get("stderr"))
    return f"({how}" + (f", stderr: {first!r}" if first else ", nothing on stderr") + ")"


def probe_report(p: ProbeReport | None) -> dict[str, Any] | None:
    """The JSON record of a probe's failure or failed precondition (None when it succeeded)."""
    if p is None or (p.ok and p.attempted):
        return None
    rc = _exit_status(p)
    return {"errno": p.errno, "errno_number": p.errno_number,
            "strerror": _strerror(p.errno_number), "message": p.message,
            "exit_status": rc, "signal": p.data.get("signal"),
            "stderr": _first_line(p.data.get("stderr")) if rc is not None else None,
            "precondition": p.precondition}


def _strerror(number: int | None) -> str | None:
    return os.strerror(number) if number else None


def _why_unknown(ex: Execution) -> str:
    if ex.error:
        return ex.error
    if ex.timed_out:
        return f"timed out after {ex.duration_s:.1f}s; the target's process tree was killed"
    p = ex.probe
    if p is not None and p.precondition:
        return (f"precondition failed: '{p.precondition}' failed {failure(p)}; "
                f"'{p.action}' never ran, so this proves nothing")
    if p is not None and not p.attempted:
        return f"the probe did not attempt '{p.action}'" + (f": {p.message}" if p.message else "")
    first = next((ln.strip() for ln in ex.stderr.splitlines() if ln.strip()), "")
    rc = ex.returncode
    hint = " (command not found)" if rc == 127 else " (could not execute)" if rc == 126 else ""
    return (f"the probe never reported (exit {rc}{hint})" + (f": {first[:200]}" if first else "")
            + "; a probe that did not run proves nothing")


def explain(ex: Execution) -> str:
    """One line saying what happened in one execution."""
    obs = observe(ex)
    if obs is Observed.ALLOWED:
        return "; ".join(ex.evidence)
    if obs is Observed.UNKNOWN:
        return _why_unknown(ex)
    p = ex.probe
    assert p is not None
    if p.ok and p.probe == WAITED_PROBE:
        return f"'{p.action}' went through and nothing took effect outside; {p.message}"
    if p.ok:
        return (f"probe reported '{p.action}' succeeded, but nothing took effect outside "
                "(it acted on a private view)")
    return f"'{p.action}' failed {failure(p)}; nothing took effect outside"


def judge(check: Check, ex: Execution | None, control: Execution | None,
          unavailable: str | None = None, not_applicable: str | None = None) -> Result:
    """The result of one check, from its execution and its control's.

    ``not_applicable`` says why the target cannot run this kind of check at all
    (an agent check on a plain sandbox, a Read step on an agent without one):
    a skip, unlike an ``unavailable`` target, which is inconclusive.
    """
    base = dict(id=check.id, category=check.category, title=check.title, expect=check.expect,
                severity=check.severity)
    if check.skip:
        return Result(**base, observed=Observed.UNKNOWN, status=Status.SKIP, errno=None,
                      evidence=(), reason=f"skipped: {check.skip}", duration_s=0.0)
    if not_applicable and not unavailable:
        return Result(**base, observed=Observed.UNKNOWN, status=Status.SKIP, errno=None,
                      evidence=(), reason=f"not for this target: {not_applicable}", duration_s=0.0)
    if unavailable or ex is None:
        return Result(**base, observed=Observed.UNKNOWN, status=Status.INCONCLUSIVE, errno=None,
                      evidence=(), reason=f"target unavailable: {unavailable}", duration_s=0.0)
    obs = observe(ex)
    errno = ex.probe.errno if ex.probe else None
    reason = explain(ex)
    control_obs = observe(control) if control is not None else None
    if obs is Observed.UNKNOWN:
        status = Status.INCONCLUSIVE
    elif control is not None and control_obs is not Observed.ALLOWED and not (
            obs is Observed.ALLOWED and check.expect == "denied"):
        # The control proves a denial means something; an escape seen outside
        # is proof on its own, so only that case survives a failed control.
        status = Status.INCONCLUSIVE
        reason = (f"control without a sandbox could not do it either ({explain(control)}); "
                  f"target: {reason}")
    else:
        status = Status.PASS if obs.value == check.expect else Status.FAIL
    if control is None and check.control_reason:
        reason += f" [no control: {check.control_reason}]"
    return Result(**base, observed=obs, status=status, errno=errno, evidence=ex.evidence,
                  reason=reason, duration_s=ex.duration_s, target=ex.target,
                  control=control_obs.value if control_obs else None,
                  probe_action=ex.probe.action if ex.probe else "",
                  layer=_denial_layer(ex) if obs is Observed.DENIED else None,
                  probe_report=probe_report(ex.probe))


def _denial_layer(ex: Execution) -> str | None:
    if ex.probe is not None and ex.probe.ok:
        return AGENT_WAITED if ex.probe.probe == WAITED_PROBE else PRIVATE_VIEW
    return layer_for(ex.probe.errno if ex.probe else None)
