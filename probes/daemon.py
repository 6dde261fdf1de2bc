"""Double-fork a daemon that tries to outlive the session (it exits by itself later)."""
import os
import sys
from _probe import args, emit

a = args(sys.argv[1:], {"tag": None, "lifetime": "30"})
r, w = os.pipe()
try:
    pid = os.fork()
except OSError as exc:
    emit("daemon", "double fork", False, exc)
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        os.close(r)
        # Let go of the session's stdio, as a real daemon does, so the launcher can exit.
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.write(w, b"1")
        os.close(w)
        # Re-exec so the survivor's command line carries the tag the harness looks for.
        os.execv(sys.executable, [sys.executable, "-S", "-c",
                                  "import time; time.sleep(%d)" % int(a["lifetime"]),
                                  "sandboxcheck-daemon", a["tag"]])
    os._exit(0)
os.close(w)
os.waitpid(pid, 0)
started = os.read(r, 1) == b"1"
emit("daemon", "double fork a daemon", started)
