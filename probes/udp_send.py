"""Send one UDP datagram."""
import socket
import sys
from _probe import args, emit

a = args(sys.argv[1:], {"host": "127.0.0.1", "port": None, "payload": None})
action = "udp send %s:%s" % (a["host"], a["port"])
try:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(a["payload"].encode(), (a["host"], int(a["port"])))
except OSError as exc:
    emit("udp_send", action, False, exc)
emit("udp_send", action, True)
