"""Run a program (for example /bin/sh -c) and print what it printed."""
import subprocess
import sys
from _probe import args, emit

a = args(sys.argv[1:], {"--": None})
argv = a["--"]
action = "spawn " + argv[0]
try:
    out = subprocess.run(argv, capture_output=True, timeout=10, check=False)
except (OSError, subprocess.SubprocessError) as exc:
    emit("spawn", action, False, exc)
emit("spawn", action, out.returncode == 0, returncode=out.returncode,
     stdout=out.stdout.decode("utf-8", "replace")[:2000],
     stderr=out.stderr.decode("utf-8", "replace")[:500])
