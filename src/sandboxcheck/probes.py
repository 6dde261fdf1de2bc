"""The probe catalogue as the harness knows it: arguments and default evidence.

The probe programs themselves live in ``probes/`` and run inside the sandbox;
this module never imports them.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .model import EvidenceSpec, ProbeReport


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """What a probe takes and how its effect is seen from outside by default."""

    name: str
    summary: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    evidence: EvidenceSpec
    passthrough: bool = False  # takes a trailing argv (``argv:`` list)
    #: Path arguments that must stay inside the throwaway root (the matrix loader refuses others).
    contained: tuple[str, ...] = ()
    #: Arguments whose only allowed value is the harness's own: (argument, value, why).
    fixed: tuple[tuple[str, str, str], ...] = ()
    #: A network probe: (host argument, port argument, the sink's port placeholder); it may
    #: only address that sink on 127.0.0.1.
    sink: tuple[str, str, str] | None = None
    #: The unsandboxed control must exec it, not fork it from the launch server (its
    #: evidence is its own process: what /proc shows of it).
    exec_only: bool = False
    #: Its evidence is the target process itself (its environment, a process outliving it),
    #: so it never shares a long-lived agent session with other checks.
    own_session: bool = False


PROBES: dict[str, ProbeSpec] = {p.name: p for p in (
    ProbeSpec("read_file", "read a file (through a symlink it creates first: via-symlink) and print it",
              ("path",), ("max-bytes", "via-symlink"),
              EvidenceSpec("leak")),
    ProbeSpec("read_fd", "read from a descriptor the target inherited (setup: pass_fd)", ("fd",),
              ("max-bytes",), EvidenceSpec("leak")),
    ProbeSpec("write_fd", "write to a descriptor the target inherited (setup: pass_fd)", ("fd",),
              ("content",), EvidenceSpec("file")),
    ProbeSpec("list_dir", "list a directory's entry names", ("path",), (), EvidenceSpec("leak")),
    ProbeSpec("write_file", "create, overwrite or append to a file (through a symlink: via-symlink)",
              ("path",), ("content", "mode", "via-symlink"), EvidenceSpec("file"), contained=("path",)),
    ProbeSpec("extract_tar", "extract a tar archive without checking member names",
              ("archive",), ("dest",), EvidenceSpec("file"), contained=("dest",)),
    ProbeSpec("read_env", "read the probe's own environment (values as digests)", (), (),
              EvidenceSpec("leak"), own_session=True),
    ProbeSpec("read_proc_environ", "read /proc/<pid>/environ (values as digests)", ("pid",), (),
              EvidenceSpec("leak"), exec_only=True, own_session=True),
    ProbeSpec("spawn", "run a program and print its output (exec: action or precondition)", (),
              ("exec",), EvidenceSpec("marker"), passthrough=True),
    ProbeSpec("hello", "print a marker joined from two parts", ("left", "right"), (),
              EvidenceSpec("marker")),
    ProbeSpec("tcp_send", "connect over TCP and send a payload", ("port", "payload"), ("host",),
              EvidenceSpec("sink", sink="tcp"), sink=("host", "port", "{tcp_port}")),
    ProbeSpec("udp_send", "send a UDP datagram", ("port", "payload"), ("host",),
              EvidenceSpec("sink", sink="udp"), sink=("host", "port", "{udp_port}")),
    ProbeSpec("dns_query", "send a DNS query for a name", ("name",), ("server", "port"),
              EvidenceSpec("sink", sink="dns"), sink=("server", "port", "{dns_port}")),
    ProbeSpec("http_get", "fetch an http:// or https:// URL through the proxy the environment names "
              "(as curl picks it), directly (via: direct), or through a given proxy",
              ("url",), ("via", "proxy", "socks-name", "socks-fallback"), EvidenceSpec("sink", sink="web")),
    ProbeSpec("relay_get", "fetch an http:// URL through a relay the probe starts inside the sandbox "
              "(a CONNECT proxy or a raw TCP forward on 127.0.0.1)",
              ("url",), ("mode", "upstream"), EvidenceSpec("sink", sink="web")),
    ProbeSpec("unix_send", "connect to a unix socket and send a payload", ("payload",),
              ("path", "env"), EvidenceSpec("sink"), contained=("path",)),
    ProbeSpec("daemon", "double-fork a daemon that tries to outlive the session", ("tag",),
              ("lifetime",), EvidenceSpec("survivor"), own_session=True),
    ProbeSpec("signal_pid", "send a signal to a process", ("pid",), ("signal",),
              EvidenceSpec("signal"), fixed=(("pid", "{witness_pid}",
                                             "signal_pid may only signal {witness_pid}, the harness's own "
                                             "witness process"),)),
)}

#: Probes whose controls must exec them (see ``ProbeSpec.exec_only``).
EXEC_ONLY_PROBES = frozenset(p.name for p in PROBES.values() if p.exec_only)
#: Probes that never share an agent session (see ``ProbeSpec.own_session``).
OWN_SESSION_PROBES = frozenset(p.name for p in PROBES.values() if p.own_session)

PROBE_PREFIX = "SANDBOXCHECK-PROBE "


def parse_probe_line(stdout: str) -> ProbeReport | None:
    """The probe's JSON line from the target's stdout, if it printed one."""
    import json

    for line in stdout.splitlines():
        idx = line.find(PROBE_PREFIX)
        if idx < 0:
            continue
        try:
            rec = json.loads(line[idx + len(PROBE_PREFIX):])
        except ValueError:
            continue
        if not isinstance(rec, dict):
            continue
        known = {"probe", "action", "attempted", "ok", "errno", "message", "errno_number", "precondition"}
        number, step = rec.get("errno_number"), rec.get("precondition")
        return ProbeReport(probe=str(rec.get("probe", "")), action=str(rec.get("action", "")),
                           attempted=bool(rec.get("attempted")), ok=bool(rec.get("ok")),
                           errno=rec.get("errno"), message=str(rec.get("message", "")),
                           data={k: v for k, v in rec.items() if k not in known},
                           errno_number=number if isinstance(number, int) and not isinstance(number, bool) else None,
                           precondition=str(step)[:300] if step else None)
    return None


def probe_argv(python: str, probes: str | Path, probe: str, args: Sequence[tuple[str, Any]],
               values: Mapping[str, str]) -> list[str]:
    """The argv that runs ``probe`` with a check's ``args`` (placeholders expanded from ``values``):
    the one way a probe is started, by the harness and by an agent's scripted step alike.

    ``python`` runs isolated from the caller's site and environment (-E -s -S) and writes no
    bytecode into the probes folder (-B). An ``--`` argument carries a trailing argv (``argv:``).
    """
    from . import placeholders

    argv = [python, "-B", "-E", "-s", "-S", str(Path(probes) / f"{probe}.py")]
    for key, val in args:
        if key == "--":
            argv += ["--", *[placeholders.expand(str(v), values) for v in val]]
        else:
            argv += [f"--{key}", placeholders.expand(str(val), values)]
    return argv
