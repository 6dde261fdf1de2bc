"""Keep the caller's secrets out of reports.

The target never gets the caller's environment, but a leaky sandbox can read
host files that hold the same values (a shell profile, a CI runner's files)
and print them. Any text copied from a target into a report goes through a
``Redactor`` holding the values of the caller's environment that could be
secrets.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

#: Variables whose values are not secrets and too common to redact (paths, locale, terminal).
HARMLESS = frozenset({
    "PATH", "HOME", "PWD", "OLDPWD", "SHELL", "USER", "LOGNAME", "LANG", "LANGUAGE", "TERM", "TMPDIR",
    "SHLVL", "HOSTNAME", "COLUMNS", "LINES", "_", "EDITOR", "PAGER", "TZ", "DISPLAY", "MAIL",
    "VIRTUAL_ENV", "PYTHONPATH", "PYENV_ROOT", "PYENV_VERSION", "NODE_PATH", "DEBIAN_FRONTEND",
    "CI", "GITHUB_ACTIONS", "GITHUB_WORKSPACE", "GITHUB_REPOSITORY", "GITHUB_REF", "GITHUB_SHA",
    "RUNNER_OS", "RUNNER_TEMP", "RUNNER_TOOL_CACHE", "XDG_CACHE_HOME", "XDG_CONFIG_HOME",
    "XDG_DATA_HOME", "XDG_RUNTIME_DIR", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT", "PYTEST_ADDOPTS",
})
#: Shorter values are too likely to occur by chance (and too weak to be secrets).
MIN_LENGTH = 8
MASK = "[redacted]"


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values of ``environ`` that a report must never show."""
    out = set()
    for name, value in environ.items():
        if name in HARMLESS or name.startswith("LC_") or len(value) < MIN_LENGTH:
            continue
        if value.lower() in ("true", "false") or value.isdigit() or _is_paths(value):
            continue
        out.add(value)
    return sorted(out, key=len, reverse=True)  # longest first: a value inside another goes with it


def _is_paths(value: str) -> bool:
    """A folder or file name, or a list of them (a search path): no secret, and common in output."""
    parts = [p for p in value.split(os.pathsep) if p]
    return bool(parts) and all(p.startswith(("/", "~", "./")) and " " not in p and "@" not in p for p in parts)


class Redactor:
    """Replaces known secret values in text with a mask."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values = [v for v in values if v]

    def __call__(self, text: str) -> str:
        if not text or not self.values:
            return text
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return text


#: The caller's environment when the process was re-executed without it (see ``_entry``):
#: kept in memory only, never in this process's own environment.
_CALLER: dict[str, str] | None = None


def set_caller_environ(environ: Mapping[str, str]) -> None:
    """Record the caller's environment (called once at start-up after the re-exec)."""
    global _CALLER
    _CALLER = {str(k): str(v) for k, v in environ.items()}


def caller_environ() -> Mapping[str, str]:
    """The environment the caller started sandboxcheck with."""
    return _CALLER if _CALLER is not None else os.environ


def default_redactor() -> Redactor:
    """A redactor for the caller's environment."""
    return Redactor(secret_values(caller_environ()))


def scrub_initial_environ() -> bool:
    """Blank this process's start-up environment block, which ``/proc/PID/environ`` shows.

    For a harness that cannot re-execute itself (the pytest plugin runs in the
    test process, whose environment the tests need): ``os.environ`` keeps
    every variable and children still inherit them (the C environment is
    rebuilt on the heap first), but a leaky sandbox reading the harness's
    ``/proc/PID/environ`` finds nothing. True when done.
    """
    import ctypes

    try:
        with open("/proc/self/stat", "rb") as fh:
            data = fh.read()
        fields = data[data.rfind(b")") + 2:].split()
        start, end = int(fields[47]), int(fields[48])  # env_start, env_end (proc(5) fields 50, 51)
        libc = ctypes.CDLL(None)
    except (OSError, ValueError, IndexError):
        return False
    if not start or end <= start:
        return False
    if libc.clearenv() != 0:
        return False
    for name, value in os.environ.items():
        os.putenv(name, value)  # fresh heap copies: the old block can go
    ctypes.memset(start, 0, end - start)
    return True
