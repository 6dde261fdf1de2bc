"""List a directory and print the entry names."""
import os
import sys
from _probe import args, emit

a = args(sys.argv[1:], {"path": None})
try:
    names = sorted(os.listdir(a["path"]))
except OSError as exc:
    emit("list_dir", "list " + a["path"], False, exc)
emit("list_dir", "list " + a["path"], True, entries=names[:500])
