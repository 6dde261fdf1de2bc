"""Where a report was made: the host's facts, and a digest of the matrix it ran.

Reports from many machines are only comparable when each says what it ran
on (OS release, kernel, architecture, Landlock ABI, user namespaces, root or
not, tool versions) and what it ran (the matrix digest). ``--anonymise-host``
replaces the host name with a salted hash that stays the same on one machine
and says nothing of its name.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import socket
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from . import __version__
from .model import matrix_digest
from .redact import caller_environ

if TYPE_CHECKING:
    from .targets.base import Target

__all__ = ["matrix_digest"]  # re-exported: a report's matrix digest is made in model

#: Environment variable holding the salt of anonymised host ids (a fleet shares one salt).
SALT_ENV = "SANDBOXCHECK_HOST_SALT"
#: Environment variable naming the host in a fleet instead of its host name: CI jobs that
#: run the shards of one runner image each land on another machine with another name.
LABEL_ENV = "SANDBOXCHECK_HOST_LABEL"
_DEFAULT_SALT = "sandboxcheck-host-id-v1"
_CLONE_NEWUSER = 0x10000000


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
    """Whether this process may create a user namespace (tried in a child that exits at once)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pid = os.fork()
    except OSError:
        return False
    if pid == 0:  # the child only calls unshare and leaves: nothing else may run after a fork
        os._exit(0 if libc.unshare(_CLONE_NEWUSER) == 0 else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


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
