"""Read from an inherited file descriptor and print what was read (a canary that crosses shows a leak)."""
import os
import sys
from _probe import args, emit

a = args(sys.argv[1:], {"fd": None, "max-bytes": "65536"})
action = "read inherited fd " + a["fd"]
try:
    data = os.read(int(a["fd"]), int(a["max-bytes"]))
except (OSError, ValueError) as exc:
    emit("read_fd", action, False, exc)
emit("read_fd", action, True, size=len(data), data=data.decode("utf-8", "replace"))
