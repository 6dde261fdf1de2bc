"""Read a file and print what was read (a canary that crosses shows a leak)."""
import sys
from _probe import args, emit

a = args(sys.argv[1:], {"path": None, "max-bytes": "65536"})
try:
    with open(a["path"], "rb") as fh:
        data = fh.read(int(a["max-bytes"]))
except OSError as exc:
    emit("read_file", "read " + a["path"], False, exc)
emit("read_file", "read " + a["path"], True, size=len(data),
     data=data.decode("utf-8", "replace"))
