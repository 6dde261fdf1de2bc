"""Read a file (optionally through a symlink it first creates) and print what was read."""
import sys
from _probe import args, emit, through_symlink

a = args(sys.argv[1:], {"path": None, "max-bytes": "65536", "via-symlink": ""})
action = "read " + a["path"] + (" through symlink " + a["via-symlink"] if a["via-symlink"] else "")
path = through_symlink("read_file", action, a["via-symlink"], a["path"])
try:
    with open(path, "rb") as fh:
        data = fh.read(int(a["max-bytes"]))
except OSError as exc:
    emit("read_file", action, False, exc)
emit("read_file", action, True, size=len(data), data=data.decode("utf-8", "replace"))
