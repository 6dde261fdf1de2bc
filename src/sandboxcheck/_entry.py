"""Console entry point: a clean process, and Ctrl-C that exits 130 at any moment.

A leaky sandbox can read the harness's own ``/proc/PID/environ``, which
holds the environment the harness was started with (a CI job's tokens, a
developer's keys) whatever the program later does to ``os.environ``. So
before anything else the harness re-executes itself with only the variables
it needs. The caller's full environment reaches the new process through an
anonymous memory file, never through its environment or command line: it is
used to redact the caller's values from reports and for a target's declared
``pass_env``.

Nothing heavy is imported here, so that Ctrl-C during start-up is handled
too.
"""
from __future__ import annotations

import os
import signal
import sys

#: Variables the harness keeps in its own environment: none can carry a credential
#: (proxies can, so npm gets them from the caller's environment held in memory instead).
KEEP = frozenset({
    "PATH", "HOME", "TMPDIR", "LANG", "LANGUAGE", "TERM", "COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR",
    "TZ", "PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV", "USER", "LOGNAME",
    "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "NODE_EXTRA_CA_CERTS", "SSL_CERT_FILE", "SSL_CERT_DIR",
    "GITHUB_STEP_SUMMARY", "CI",
})
#: The harness's own settings kept besides (flags and paths, never secrets). Every ``envvar=``
#: of an option in cli.py must be here, or the option silently ignores it (a unit test checks).
KEEP_OWN = frozenset({
    "SANDBOXCHECK_DEBUG", "SANDBOXCHECK_TOOLS", "SANDBOXCHECK_CACHE", "SANDBOXCHECK_TARGET", "SANDBOXCHECK_JOBS",
    "SANDBOXCHECK_MATRIX", "SANDBOXCHECK_NO_REEXEC", "SANDBOXCHECK_FORMAT", "SANDBOXCHECK_OUTPUT",
    "SANDBOXCHECK_TIMEOUT", "SANDBOXCHECK_SHARD", "SANDBOXCHECK_ANONYMISE_HOST", "SANDBOXCHECK_ADVISORIES",
    "SANDBOXCHECK_SARIF_BASE",
})
_FD_VAR = "SANDBOXCHECK_CALLER_ENV_FD"


def kept(name: str) -> bool:
    """Whether the harness keeps the caller's variable ``name`` in its own environment."""
    return name in KEEP or name in KEEP_OWN or name.startswith("LC_")


#: Command lines that only print text (help, version): they start no target and read no
#: file, so they skip the re-execution and start in one interpreter instead of two.
_HELP_WORDS = frozenset({"--help", "-h", "--version"})


def only_prints_help(argv: list[str]) -> bool:
    """Whether ``argv`` (without the program) asks only for help or the version.

    Exactly ``[]``, ``[--help]``, ``[--version]`` or ``[COMMAND, --help]``:
    anything longer might give ``--help`` as the value of an option and run.
    """
    return (not argv or (len(argv) == 1 and argv[0] in _HELP_WORDS)
            or (len(argv) == 2 and not argv[0].startswith("-") and argv[1] in ("--help", "-h")))


#: Commands that only read and write reports and matrices: they launch no target, so no
#: sandbox can read this process's environment, and they start in one interpreter too
#: (a fleet merges its shards' reports with ``merge``).
_NO_TARGET_COMMANDS = frozenset({"merge", "diff", "validate"})


def launches_no_target(argv: list[str]) -> bool:
    """Whether ``argv`` (without the program) names a command that starts no target."""
    rest = list(argv)
    while rest and rest[0] == "--debug":  # the only option before the command that is no help
        rest.pop(0)
    return bool(rest) and rest[0] in _NO_TARGET_COMMANDS


def reexec_clean() -> None:
    """Re-execute this process with only the variables it needs (no-op when already clean)."""
    if only_prints_help(sys.argv[1:]) or launches_no_target(sys.argv[1:]):
        return
    import json

    from . import redact

    fd_text = os.environ.pop(_FD_VAR, None)
    if fd_text is not None:
        try:
            fd = int(fd_text)
            with os.fdopen(fd, "rb") as fh:
                redact.set_caller_environ(json.loads(fh.read(16 << 20)))
        except (OSError, ValueError):
            redact.set_caller_environ({})
        return
    if all(kept(name) for name in os.environ) or os.environ.get("SANDBOXCHECK_NO_REEXEC") == "1":
        return
    try:
        fd = os.memfd_create("sandboxcheck-caller-env", 0)
    except (AttributeError, OSError):
        return  # no memfd: run as we are (the target still gets a synthetic environment)
    os.write(fd, json.dumps(dict(os.environ)).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    env = {name: value for name, value in os.environ.items() if kept(name)}
    env[_FD_VAR] = str(fd)
    argv = [sys.executable, "-m", "sandboxcheck", *sys.argv[1:]]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        # Blocked across the exec (the mask is inherited): a Ctrl-C while the new interpreter
        # starts stays pending until ``main`` can turn it into a clean exit 130.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        os.execve(sys.executable, argv, env)
    except OSError:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        os.close(fd)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    """Start the CLI in a clean process; exit 130 on Ctrl-C, imports included."""
    try:
        reexec_clean()
        signal.signal(signal.SIGTERM, _interrupt)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        if sys.argv[1:] == ["--version"]:  # answered without loading the command line at all
            from . import __version__

            sys.stdout.write(f"sandboxcheck, version {__version__}\n")
            sys.exit(0)
        # The commands that launch targets make this process a child subreaper (cli._harness).
        from .cli import entry
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    entry()
