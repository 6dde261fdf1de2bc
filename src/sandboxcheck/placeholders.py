"""Placeholder expansion for matrices and target templates.

``{name}`` (lowercase letters and underscores) is a placeholder; ``{{name}}``
stands for the literal text ``{name}``. Every other brace is literal, so JSON
such as ``{"a": {"b": 1}}`` needs no escaping.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

_TOKEN = re.compile(r"\{\{([a-z_]+)\}\}|\{([a-z_]+)\}")

#: Placeholders a matrix may use in probe arguments and evidence paths.
MATRIX_PLACEHOLDERS: frozenset[str] = frozenset({
    "workspace", "home", "outside", "root", "run", "probes", "python", "tmp",
    "token", "tcp_port", "udp_port", "dns_port", "witness_pid", "fd",
    "net_port", "net_alt_port", "net_allowed_ip", "net_other_ip", "net_dns_ip", "net_domain",
})
#: What each matrix placeholder stands for (the matrix reference is generated from this).
MATRIX_MEANINGS: dict[str, str] = {
    "workspace": "the check's workspace folder (the sandbox's working folder)",
    "home": "the fake HOME, seeded with dummy credentials",
    "outside": "a folder beside the workspace that the sandbox should not reach (outside/secret.txt, outside/.env)",
    "root": "the throwaway root holding workspace/, home/, outside/ and run/",
    "run": "the root's run/ folder (the harness's unix-socket sinks: ssh-agent.sock, docker.sock)",
    "probes": "the read-only folder of probe programs",
    "python": "the interpreter the target runs probes with",
    "tmp": "the host's temp folder",
    "token": "the check's random token (part of every canary of the check)",
    "tcp_port": "the port of the harness's TCP sink on 127.0.0.1",
    "udp_port": "the port of the harness's UDP sink on 127.0.0.1",
    "dns_port": "the port of the harness's DNS sink on 127.0.0.1",
    "witness_pid": "the pid of the harness's witness process (signal evidence)",
    "fd": "the number of the check's first pass_fd descriptor (setup)",
    "net_port": "the port of the harness's web sinks (HTTP, TLS, CONNECT, SOCKS5) on each of its addresses; "
                "using any net_ placeholder runs the target inside the harness's own name space",
    "net_alt_port": "a second port of the same web sinks (a port an allowlist scoped to {net_port} does not "
                    "name)",
    "net_allowed_ip": "the loopback address that allowed.sandboxcheck.test and *.allowed.sandboxcheck.test "
                      "resolve to",
    "net_other_ip": "the loopback address every other name under sandboxcheck.test resolves to",
    "net_dns_ip": "the loopback address of the harness's DNS sink (port 53; the target's resolv.conf names it)",
    "net_domain": "the harness's test domain, sandboxcheck.test",
}
#: Where a ``setup:`` step's path may start: folders of the throwaway root.
SETUP_ROOTS: tuple[str, ...] = ("{root}", "{workspace}", "{home}", "{outside}", "{run}")
#: Target options: placeholders whose value the caller sets with ``--target-opt
#: NAME=VALUE``, else the target's ``options:`` default (``settings``: a sandbox's
#: own settings file, such as srt's ``--settings``).
TARGET_OPTIONS: frozenset[str] = frozenset({"settings"})
#: Placeholders a target's command template may use. ``state`` is a stable
#: folder of the target's own outside the temp folder (tools such as codex
#: refuse a home under it). ``cmd_json`` is the probe argv as a JSON array (for
#: an OCI bundle's ``process.args``); ``launch_id`` is unique to one launch (a
#: container id).
TARGET_PLACEHOLDERS: frozenset[str] = frozenset({
    "workspace", "home", "root", "probes", "python", "cmd", "cmd_shell", "cmd_json", "run", "outside",
    "state", "version", "launch_id", *TARGET_OPTIONS,
    "net_port", "net_alt_port", "net_allowed_ip", "net_other_ip", "net_dns_ip", "net_domain",
})


class PlaceholderError(ValueError):
    """A template names a placeholder that has no value."""


def names(template: str) -> set[str]:
    """Placeholder names used in ``template``."""
    return {m.group(2) for m in _TOKEN.finditer(template) if m.group(2)}


def expand(template: str, values: Mapping[str, str]) -> str:
    """Replace every ``{name}`` with its value; unknown names raise PlaceholderError."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1):
            return "{" + m.group(1) + "}"
        key = m.group(2)
        if key not in values:
            raise PlaceholderError(f"unknown placeholder {{{key}}}")
        return str(values[key])

    return _TOKEN.sub(sub, template)
