"""Read another process's environment through /proc; values leave only as digests."""
import os
import sys
from _probe import args, digest, emit

a = args(sys.argv[1:], {"pid": None})
pid = str(os.getppid()) if a["pid"] == "ppid" else a["pid"]
path = "/proc/%s/environ" % pid
try:
    with open(path, "rb") as fh:
        raw = fh.read()
except OSError as exc:
    emit("read_proc_environ", "read " + path, False, exc, pid=pid)
entries = {}
for item in raw.split(b"\0"):
    if b"=" in item:
        k, v = item.split(b"=", 1)
        entries[k.decode("utf-8", "replace")] = digest(v)
emit("read_proc_environ", "read " + path, True, pid=pid, entries=entries)
