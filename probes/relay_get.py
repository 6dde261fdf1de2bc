"""Fetch an http:// URL through a relay this probe starts inside the sandbox.

The probe binds a listener on 127.0.0.1 (a precondition: a sandbox that forbids
binding never lets the relay start), forks a relay process serving it, and
asks the relay for the URL's host:port. --mode connect: the client sends an
HTTP CONNECT to the relay, as to a local proxy; --mode tcp: the relay forwards
raw TCP to the URL's host:port, as socat does. --upstream env (default): the
relay reaches its destination as curl would, through https_proxy / HTTPS_PROXY /
all_proxy / ALL_PROXY (CONNECT), honouring no_proxy; --upstream direct: it dials
the destination itself. The client reaches the relay directly (127.0.0.1 is in
every no_proxy a sandbox sets).
"""
import os
import select
import signal
import socket
import sys
from base64 import b64encode
from urllib.parse import unquote_to_bytes
from _probe import args, emit, precondition_failed

a = args(sys.argv[1:], {"url": None, "mode": "connect", "upstream": "env"})
scheme, _, rest = a["url"].partition("://")
hostport, _, path = rest.partition("/")
host, _, port = hostport.partition(":")
port = int(port or 80)
action = "GET %s through an in-sandbox %s relay (upstream: %s)" % (a["url"], a["mode"], a["upstream"])


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def status_of(head):
    line = head.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 and line[1].isdigit() else None


def upstream_proxy(dest):
    env = os.environ
    proxy = next((env[n] for n in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY") if env.get(n)), "")
    no_proxy = [e.strip().lower().lstrip(".") for e in (env.get("no_proxy") or env.get("NO_PROXY") or "").split(",")]
    h = dest.lower().rstrip(".")
    if not proxy.lower().startswith("http") or any(e and (e == "*" or h == e or h.endswith("." + e)) for e in no_proxy):
        return None
    userinfo, _, p = proxy.split("://", 1)[-1].split("/", 1)[0].rpartition("@")
    phost, _, pport = p.rpartition(":")
    return phost.strip("[]"), int(pport or 80), unquote_to_bytes(userinfo)


def dial(dest, dport):
    """The relay's way to the destination: a socket ready to carry the client's bytes."""
    via = upstream_proxy(dest) if a["upstream"] == "env" else None
    if via is None:
        return socket.create_connection((dest, dport), timeout=5)
    up = socket.create_connection(via[:2], timeout=5)
    auth = b"Proxy-Authorization: Basic " + b64encode(via[2]) + b"\r\n" if via[2] else b""
    up.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n" % (dest, dport, dest, dport)).encode() + auth + b"\r\n")
    code = status_of(read_head(up))
    if code != 200:
        up.close()
        raise OSError("upstream proxy refused CONNECT: %s" % code)
    return up


def relay(listener):
    listener.settimeout(10)
    conn, _ = listener.accept()
    conn.settimeout(10)
    dest, dport = host, port
    if a["mode"] == "connect":
        head = read_head(conn)
        target = head.split(b" ", 2)[1].decode("ascii", "replace") if head.startswith(b"CONNECT ") else ""
        dest, _, p = target.rpartition(":")
        dport = int(p)
    try:
        up = dial(dest, dport)
    except OSError as exc:
        if a["mode"] == "connect":
            conn.sendall(("HTTP/1.1 502 %s\r\n\r\n" % str(exc)[:200].replace("\r", " ").replace("\n", " ")).encode())
        return
    if a["mode"] == "connect":
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    pair = {conn: up, up: conn}
    while pair:
        ready, _, _ = select.select(list(pair), [], [], 10)
        if not ready:
            return
        for s in ready:
            data = s.recv(65536)
            if not data:
                return
            pair[s].sendall(data)


try:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
except OSError as exc:
    precondition_failed("relay_get", action, "bind a relay listener on 127.0.0.1", exc)
child = os.fork()
if child == 0:
    try:
        relay(listener)
    except (OSError, ValueError, IndexError):
        pass
    os._exit(0)
listener_port = listener.getsockname()[1]
listener.close()
status, note = None, ""
try:
    sock = socket.create_connection(("127.0.0.1", listener_port), timeout=15)
    if a["mode"] == "connect":
        sock.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (hostport, hostport)).encode())
        head = read_head(sock)
        if status_of(head) != 200:
            note = head.split(b"\r\n", 1)[0].decode("latin-1")
            raise OSError("the relay could not open the tunnel: %s" % note)
    sock.sendall(("GET /%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: sandboxcheck-probe\r\nConnection: close\r\n\r\n"
                  % (path, hostport)).encode("latin-1"))
    head = read_head(sock)
    status = status_of(head)
    sock.close()
    error = None if status is not None else OSError("the relay closed the connection")
except OSError as exc:
    error = exc
finally:
    try:
        os.kill(child, signal.SIGKILL)
    except OSError:
        pass
    os.waitpid(child, 0)
emit("relay_get", action, status is not None and 200 <= status < 300, error, status=status)
