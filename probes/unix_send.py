"""Connect to a unix socket (a path, or one named by an environment variable) and send a payload."""
import os
import socket
import sys
from _probe import args, emit

a = args(sys.argv[1:], {"path": "", "env": "", "payload": None})
path = os.environ.get(a["env"], "") if a["env"] else a["path"]
action = "unix connect " + (("$" + a["env"] + "=") if a["env"] else "") + path
if not path:
    emit("unix_send", action, False, errno="NOVAR", message="socket path is empty")
try:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect(path)
        s.sendall(a["payload"].encode() + b"\n")
except OSError as exc:
    emit("unix_send", action, False, exc)
emit("unix_send", action, True)
