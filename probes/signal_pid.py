"""Send a signal to a process by id."""
import os
import signal
import sys
from _probe import args, emit

a = args(sys.argv[1:], {"pid": None, "signal": "USR1"})
sig = getattr(signal, "SIG" + a["signal"]) if not a["signal"].isdigit() else int(a["signal"])
action = "kill -%s %s" % (a["signal"], a["pid"])
try:
    os.kill(int(a["pid"]), sig)
except OSError as exc:
    emit("signal_pid", action, False, exc)
emit("signal_pid", action, True)
