"""Where a report was made: the host's facts, and a digest of the matrix it ran.

Reports from many machines are only comparable when each says what it ran
on (OS release, kernel, architecture, Landlock ABI, user namespaces, root or
not, tool versions) and what it ran (the matrix digest). ``--anonymise-host``
replaces the host name with a salted hash that stays the same on one machine
and says nothing of its name.
"""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from . import __version__
from .model import matrix_digest
from .redact import caller_environ

if TYPE_CHECKING:
    from .model import RunReport
    from .targets.base import Target

__all__ = ["matrix_digest"]  # re-exported: a report's matrix digest is made in model

#: Environment variable holding the salt of anonymised host ids (a fleet shares one salt).
SALT_ENV = "SANDBOXCHECK_HOST_SALT"
#: Environment variable naming the host in a fleet instead of its host name: CI jobs that
#: run the shards of one runner image each land on another machine with another name.
LABEL_ENV = "SANDBOXCHECK_HOST_LABEL"
_DEFAULT_SALT = "sandboxcheck-host-id-v1"
_CLONE_NEWUSER = 0x10000000
#: The child that tries unshare(CLONE_NEWUSER): the program of this process, so the same
#: confinement (an AppArmor profile applies per executable) answers as for the harness.
_UNSHARE_CHILD = ("import ctypes, sys; sys.exit(0 if ctypes.CDLL(None, use_errno=True)"
                  f".unshare({_CLONE_NEWUSER:#x}) == 0 else 1)")
#: Hex digits of a matrix digest shown in one-line summaries.
SHORT_DIGEST = 12


def os_release(path: str = "/etc/os-release") -> dict[str, str]:
    """PRETTY_NAME, ID and VERSION_ID of the host's OS release file (those it has)."""
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.strip().partition("=")
                if sep and key in ("PRETTY_NAME", "ID", "VERSION_ID"):
                    out[key.lower()] = value.strip().strip('"').strip("'")
    except OSError:
        pass
    return out


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read().strip()
    except OSError:
        return None


@lru_cache(maxsize=1)
def _can_unshare_user() -> bool:
    """Whether this process may create a user namespace (tried in a new program that exits at once).

    A bare fork() of a process with threads may deadlock in the child on a lock
    another thread held, so the attempt runs in a freshly executed interpreter
    (``unshare --user true`` when there is none).
    """
    from .targets.tools import DEFAULT_PATH

    if sys.executable:
        argv = [sys.executable, "-I", "-S", "-c", _UNSHARE_CHILD]
    else:
        unshare = shutil.which("unshare", path=DEFAULT_PATH)
        if unshare is None:
            return False
        argv = [unshare, "--user", "true"]
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={"PATH": DEFAULT_PATH}, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def user_namespaces() -> dict[str, Any]:
    """Whether user namespaces can be created here, and the settings that restrict them."""
    def number(path: str) -> int | None:
        text = _read(path)
        return int(text) if text is not None and text.lstrip("-").isdigit() else None

    return {"available": _can_unshare_user(),
            "max_user_namespaces": number("/proc/sys/user/max_user_namespaces"),
            "unprivileged_userns_clone": number("/proc/sys/kernel/unprivileged_userns_clone"),
            "apparmor_restrict_unprivileged_userns":
                number("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")}


def anonymous_id(name: str | None = None, salt: str | None = None) -> str:
    """A stable id for this host that does not reveal its name: a salted hash.

    The machine id joins the name when it can be read, so a guessed host
    name alone does not give the id away; ``$SANDBOXCHECK_HOST_SALT`` sets the
    salt (give every host of a fleet the same one).
    """
    name = socket.gethostname() if name is None else name
    salt = caller_environ().get(SALT_ENV, _DEFAULT_SALT) if salt is None else salt
    machine = _read("/etc/machine-id") or ""
    return "host-" + hashlib.sha256(f"{salt}\0{name}\0{machine}".encode()).hexdigest()[:16]


def host_facts(targets: Iterable[Target] = (), anonymise: bool = False) -> dict[str, Any]:
    """The facts of this host for a report's ``host`` entry.

    ``tools`` holds the versions of the tools the given targets require.
    With ``anonymise`` the entry has an ``id`` and no ``name``; ``$SANDBOXCHECK_HOST_LABEL``
    adds a ``label`` that names the host in a fleet view.
    """
    uname = os.uname()
    facts: dict[str, Any] = ({"id": anonymous_id(uname.nodename), "anonymised": True} if anonymise
                             else {"name": uname.nodename, "anonymised": False})
    label = caller_environ().get(LABEL_ENV, "").strip()
    if label:
        facts["label"] = label
    from .targets.base import requirement_versions
    from .targets.tools import landlock_abi

    tools = sorted({v for t in targets for v in requirement_versions(t)})
    facts.update({
        "os": os_release(), "system": platform.system(), "kernel": uname.release,
        "machine": uname.machine, "python": platform.python_version(),
        "landlock_abi": landlock_abi(), "user_namespaces": user_namespaces(),
        "root": os.geteuid() == 0, "tools": tools, "sandboxcheck": __version__,
    })
    return facts


def anonymised(facts: Mapping[str, Any]) -> dict[str, Any]:
    """``facts`` with the host name replaced by its anonymous id (unchanged when already anonymous)."""
    out = dict(facts)
    if "name" in out:
        out["id"] = anonymous_id(str(out.pop("name")))
        out["anonymised"] = True
    return out


def host_key(facts: Mapping[str, Any]) -> str:
    """What names a host in a fleet: its label, else its name, else its anonymous id."""
    return str(facts.get("label") or facts.get("name") or facts.get("id") or "unknown host")


def facts_line(facts: Mapping[str, Any]) -> str:
    """The host's facts in one line: OS, kernel, architecture, Landlock ABI, user namespaces, root, version."""
    osr = facts.get("os") or {}
    userns = facts.get("user_namespaces") or {}
    bits = [osr.get("pretty_name") or osr.get("id") or "unknown OS", f"kernel {facts.get('kernel', '?')}",
            str(facts.get("machine", "?")), f"Landlock ABI {facts.get('landlock_abi', '?')}",
            "userns " + ("yes" if userns.get("available") else "no"),
            "root" if facts.get("root") else "not root", f"sandboxcheck {facts.get('sandboxcheck', '?')}"]
    return ", ".join(bits)


def short_digest(digest: str | None) -> str:
    """A matrix digest cut to its algorithm and first hex digits (``sha256:0123456789ab``)."""
    if not digest:
        return "?"
    algo, sep, hexdigits = digest.partition(":")
    return f"{algo}:{hexdigits[:SHORT_DIGEST]}" if sep else digest[:SHORT_DIGEST]


def report_digest(report: RunReport) -> str:
    """The digest of the matrix a run report ran (the whole matrix's for a shard), as in its JSON."""
    return report.matrix_digest or matrix_digest(report.matrix)


def host_line(facts: Mapping[str, Any] | None, digest: str | None) -> str:
    """Where a report was made and of what, in one line: the host (its name, or its
    anonymous id), its facts (:func:`facts_line`) and the short matrix digest."""
    if not facts:
        return f"host: unknown; matrix {short_digest(digest)}"
    who = str(facts.get("name") or facts.get("id") or "unknown host")
    label = facts.get("label")
    if label and label != who:
        who = f"{label} ({who})"
    return f"host {who}: {facts_line(facts)}; matrix {short_digest(digest)}"


def flat_facts(facts: Mapping[str, Any] | None, digest: str | None) -> list[tuple[str, str]]:
    """The host's facts and the matrix digest as dotted name/value pairs in text
    (``host.kernel``, ``host.os.id``, ``host.user_namespaces.available``, ``matrix.digest``),
    for formats whose properties are flat; lists are joined with ", ", unknown values left out."""
    out: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, sub in value.items():
                walk(f"{prefix}.{key}", sub)
        elif isinstance(value, bool):
            out.append((prefix, "true" if value else "false"))
        elif isinstance(value, (list, tuple)):
            out.append((prefix, ", ".join(str(v) for v in value)))
        elif value is not None:
            out.append((prefix, str(value)))

    walk("host", facts or {})
    if digest:
        out.append(("matrix.digest", digest))
    return out
