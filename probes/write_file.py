"""Create, overwrite or append to a file (optionally through a symlink it first creates)."""
import os
import sys
from _probe import args, emit, through_symlink

a = args(sys.argv[1:], {"path": None, "content": "", "mode": "write", "via-symlink": ""})
flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if a["mode"] == "append" else os.O_TRUNC)
action = "%s %s" % (a["mode"], a["path"]) + (" through symlink " + a["via-symlink"] if a["via-symlink"] else "")
path = through_symlink("write_file", action, a["via-symlink"], a["path"])
try:
    fd = os.open(path, flags, 0o644)
    try:
        os.write(fd, (a["content"] + "\n").encode())
    finally:
        os.close(fd)
except OSError as exc:
    emit("write_file", action, False, exc)
emit("write_file", action, True)
