"""Connect over TCP and send a payload."""
import socket
import sys
from _probe import args, emit

a = args(sys.argv[1:], {"host": "127.0.0.1", "port": None, "payload": None})
action = "tcp connect %s:%s" % (a["host"], a["port"])
try:
    with socket.create_connection((a["host"], int(a["port"])), timeout=3) as s:
        s.sendall(a["payload"].encode() + b"\n")
except OSError as exc:
    emit("tcp_send", action, False, exc)
emit("tcp_send", action, True)
