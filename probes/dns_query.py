"""Send a DNS A query for a name to a given server."""
import socket
import struct
import sys
from _probe import args, emit

a = args(sys.argv[1:], {"server": "127.0.0.1", "port": "53", "name": None})
qname = b"".join(bytes([len(p)]) + p.encode() for p in a["name"].strip(".").split(".")) + b"\0"
packet = struct.pack(">HHHHHH", 0x5C5C, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
action = "dns query %s at %s:%s" % (a["name"], a["server"], a["port"])
try:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.02)
        s.sendto(packet, (a["server"], int(a["port"])))
        try:
            answered = len(s.recv(512)) > 0
        except socket.timeout:
            answered = False
except OSError as exc:
    emit("dns_query", action, False, exc)
emit("dns_query", action, True, answered=answered)
