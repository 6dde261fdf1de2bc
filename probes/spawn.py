"""Run a program (for example /bin/sh -c) and print what it printed.

``--exec action`` (the default): failing to start the program is the denial
the check is about. ``--exec precondition``: the check is about what the
program does, so failing to start it (or a shell's 126/127, "cannot execute"
and "not found") is a failed precondition, not a denial.
"""
import signal
import subprocess
import sys
from _probe import args, emit, precondition_failed

a = args(sys.argv[1:], {"exec": "action", "--": None})
argv = a["--"]
action = "spawn " + argv[0]
start = "start " + argv[0]
try:
    out = subprocess.run(argv, capture_output=True, timeout=10, check=False)
except (OSError, subprocess.SubprocessError) as exc:
    if a["exec"] == "precondition" and isinstance(exc, OSError):
        precondition_failed("spawn", action, start, exc)
    emit("spawn", action, False, exc)
rc = out.returncode
report = {"returncode": rc,
          "signal": signal.Signals(-rc).name if rc < 0 and -rc in signal.valid_signals() else None,
          "stdout": out.stdout.decode("utf-8", "replace")[:2000],
          "stderr": out.stderr.decode("utf-8", "replace")[:500]}
if a["exec"] == "precondition" and rc in (126, 127):
    precondition_failed("spawn", action, start + " (a command it runs could not be executed)", **report)
emit("spawn", action, rc == 0, **report)
