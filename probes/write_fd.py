"""Write to an inherited file descriptor (the harness watches the file it was opened on)."""
import os
import sys
from _probe import args, emit

a = args(sys.argv[1:], {"fd": None, "content": ""})
action = "write inherited fd " + a["fd"]
try:
    os.write(int(a["fd"]), (a["content"] + "\n").encode())
except (OSError, ValueError) as exc:
    emit("write_fd", action, False, exc)
emit("write_fd", action, True)
