"""The probe catalogue as the harness knows it: arguments and default evidence.

The probe programs themselves live in ``probes/`` and run inside the sandbox;
this module never imports them.
"""
from __future__ import annotations

from dataclasses import dataclass

from .model import EvidenceSpec


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """What a probe takes and how its effect is seen from outside by default."""

    name: str
    summary: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    evidence: EvidenceSpec
    passthrough: bool = False  # takes a trailing argv (``argv:`` list)


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
              ("path",), ("content", "mode", "via-symlink"), EvidenceSpec("file")),
    ProbeSpec("extract_tar", "extract a tar archive without checking member names",
              ("archive",), ("dest",), EvidenceSpec("file")),
    ProbeSpec("read_env", "read the probe's own environment (values as digests)", (), (),
              EvidenceSpec("leak")),
    ProbeSpec("read_proc_environ", "read /proc/<pid>/environ (values as digests)", ("pid",), (),
              EvidenceSpec("leak")),
    ProbeSpec("spawn", "run a program and print its output (exec: action or precondition)", (),
              ("exec",), EvidenceSpec("marker"), passthrough=True),
    ProbeSpec("hello", "print a marker joined from two parts", ("left", "right"), (),
              EvidenceSpec("marker")),
    ProbeSpec("tcp_send", "connect over TCP and send a payload", ("port", "payload"), ("host",),
              EvidenceSpec("sink", sink="tcp")),
    ProbeSpec("udp_send", "send a UDP datagram", ("port", "payload"), ("host",),
              EvidenceSpec("sink", sink="udp")),
    ProbeSpec("dns_query", "send a DNS query for a name", ("name",), ("server", "port"),
              EvidenceSpec("sink", sink="dns")),
    ProbeSpec("http_get", "fetch an http:// or https:// URL through the proxy the environment names "
              "(as curl picks it), directly (via: direct), or through a given proxy",
              ("url",), ("via", "proxy", "socks-name", "socks-fallback"), EvidenceSpec("sink", sink="web")),
    ProbeSpec("unix_send", "connect to a unix socket and send a payload", ("payload",),
              ("path", "env"), EvidenceSpec("sink")),
    ProbeSpec("daemon", "double-fork a daemon that tries to outlive the session", ("tag",),
              ("lifetime",), EvidenceSpec("survivor")),
    ProbeSpec("signal_pid", "send a signal to a process", ("pid",), ("signal",),
              EvidenceSpec("signal")),
)}
