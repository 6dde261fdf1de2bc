"""Preflight: is the sandbox really on? What a target enforces, seen from inside and outside."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from ..model import Check, EvidenceSpec
from ..targets.base import Target
from ..targets.tools import landlock_abi

#: The preflight probe as a check the harness can execute (it is not a matrix probe).
PREFLIGHT_CHECK = Check(id="preflight", category="exec", title="preflight", probe="preflight",
                        args=(("workspace", "{workspace}"), ("home", "{home}")), expect="allowed",
                        evidence=EvidenceSpec("leak", labels=("none",)), timeout=60.0)


@dataclass(frozen=True, slots=True)
class Preflight:
    """The effective isolation of a target, compared with the host."""

    ran: bool
    isolated: bool
    layers: tuple[str, ...]
    details: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {"ran": self.ran, "isolated": self.isolated, "layers": list(self.layers),
                "reason": self.reason, **self.details}

    def summary(self) -> str:
        """One line for people."""
        if not self.ran:
            return f"preflight could not run: {self.reason}"
        if not self.isolated:
            return ("NO ISOLATION DETECTED: the command ran like an unsandboxed process "
                    "(same namespaces, no seccomp, no NoNewPrivs, same capabilities, host processes visible)")
        return "isolation seen: " + ", ".join(self.layers)


def host_view() -> dict[str, Any]:
    """The same facts for the harness's own process."""
    ns = {}
    for name in ("user", "pid", "net", "mnt", "ipc", "uts", "cgroup"):
        try:
            ns[name] = os.readlink(f"/proc/self/ns/{name}")
        except OSError:
            ns[name] = None
    status = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("Seccomp", "NoNewPrivs", "CapEff", "Uid"):
                status[key] = value.strip()
    procs = sum(1 for d in os.listdir("/proc") if d.isdigit())
    uname = os.uname()
    return {"namespaces": ns, "status": status, "processes": procs,
            "kernel": {"release": uname.release, "version": uname.version}}


#: The kernel version string gVisor's Sentry reports (it emulates Linux 4.4.0).
GVISOR_UNAME_VERSION = "#1 SMP Sun Jan 10 15:06:54 PST 2016"


def kernel_layer(inside: dict[str, Any], host: dict[str, Any]) -> str | None:
    """A user-space or guest kernel: the command saw another kernel than the host runs."""
    seen, own = inside.get("kernel") or {}, host.get("kernel") or {}
    if not seen or not own or seen == own:
        return None
    release = seen.get("release", "?")
    if seen.get("version") == GVISOR_UNAME_VERSION:
        return f"user-space kernel (gVisor, reports Linux {release}; host {own.get('release')})"
    return f"another kernel (reports Linux {release}; host {own.get('release')})"


def judge_preflight(inside: dict[str, Any] | None, host: dict[str, Any], why: str = "") -> Preflight:
    """Which isolation layers differ from the host (a pure function)."""
    if inside is None:
        return Preflight(False, False, (), {"host": host}, why or "the preflight probe did not report")
    layers = []
    own_ns = [n for n, v in inside.get("namespaces", {}).items()
              if host["namespaces"].get(n) and v != host["namespaces"].get(n)]
    if own_ns:
        layers.append("own namespaces: " + ", ".join(sorted(own_ns)))
    st, hst = inside.get("status", {}), host["status"]
    if st.get("Seccomp", "0") not in ("0", hst.get("Seccomp", "0")):
        layers.append(f"seccomp mode {st['Seccomp']}")
    if st.get("NoNewPrivs") == "1" and hst.get("NoNewPrivs") != "1":
        layers.append("NoNewPrivs")
    if st.get("CapEff") and st.get("CapEff") != hst.get("CapEff"):
        layers.append(f"capabilities {st['CapEff']} (host {hst.get('CapEff')})")
    kernel = kernel_layer(inside, host)
    if kernel:
        layers.append(kernel)
    if not inside.get("home_visible", True):
        layers.append("fake home hidden")
    procs = inside.get("processes", -1)
    if 0 <= procs < host["processes"] // 2:
        layers.append(f"{procs} processes visible (host {host['processes']})")
    details = {"inside": inside, "host": host, "landlock_abi": landlock_abi(),
               "workspace_visible": inside.get("workspace_visible"),
               "home_visible": inside.get("home_visible")}
    return Preflight(True, bool(layers), tuple(layers), details)


def run_preflight(harness: Any, target: Target) -> Preflight:
    """Run the preflight probe through ``target`` and compare with the host."""
    host = host_view()
    try:
        ex = harness.execute(PREFLIGHT_CHECK, target)
    except OSError as exc:
        return judge_preflight(None, host, f"could not start: {exc}")
    if ex.probe is None:
        first = next((ln for ln in ex.stderr.splitlines() if ln.strip()), "")
        return judge_preflight(None, host, f"exit {ex.returncode}: {first[:200]}")
    return judge_preflight(ex.probe.data, host)
