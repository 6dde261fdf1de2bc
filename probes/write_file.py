"""Create, overwrite or append to a file."""
import os
import sys
from _probe import args, emit

a = args(sys.argv[1:], {"path": None, "content": "", "mode": "write"})
flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if a["mode"] == "append" else os.O_TRUNC)
action = "%s %s" % (a["mode"], a["path"])
try:
    fd = os.open(a["path"], flags, 0o644)
    try:
        os.write(fd, (a["content"] + "\n").encode())
    finally:
        os.close(fd)
except OSError as exc:
    emit("write_file", action, False, exc)
emit("write_file", action, True)
