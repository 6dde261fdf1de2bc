"""A deliberately leaky egress proxy around a command: a known-bad target for the network checks.

    _leaky_proxy.py --allow NAME [--deny NAME] [--flaw F ...] -- CMD...

CMD runs in a network namespace of its own (loopback only; needs root) with
HTTP_PROXY, HTTPS_PROXY and ALL_PROXY naming a port there that leads, through
a unix socket, to this proxy outside. The proxy speaks HTTP (absolute-form and
CONNECT) and SOCKS5 and allows NAME and its subdomains, minus --deny, except
where a flaw says otherwise:
  suffix      a name matches when it merely ends with NAME (evilNAME passes)
  socks-nul   host names are not checked for bytes a name cannot hold: a SOCKS5 domain
              passes the suffix check whole, and the resolver reads it up to its
              first NUL byte (C strings; Python's getaddrinfo does the same)
  plain-http  plain HTTP requests are not checked at all, only CONNECT and SOCKS5
Standard library only; it never dials anything but what a request names, and
the harness runs it where every name it may dial resolves to loopback.
"""
import ctypes
import fcntl
import os
import select
import socket
import struct
import sys
import tempfile
import threading

CLONE_NEWNET = 0x40000000


def parse(argv):
    opts = {"allow": [], "deny": [], "flaw": []}
    while argv and argv[0] != "--":
        key = argv.pop(0)[2:]
        opts[key].append(argv.pop(0))
    return opts, argv[1:]


OPTS, CMD = parse(sys.argv[1:])


HOST_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-_:[]")


def allowed(name):
    n = name.lower().rstrip(".")
    if "socks-nul" not in OPTS["flaw"] and not set(n) <= HOST_CHARS:
        return False
    if any(n == d or n.endswith("." + d) for d in OPTS["deny"]):
        return False
    if "suffix" in OPTS["flaw"]:
        return any(n.endswith(d) for d in OPTS["allow"])
    return any(n == d or n.endswith("." + d) for d in OPTS["allow"])


def pipe(a, b):
    socks = [a, b]
    try:
        while True:
            ready, _, _ = select.select(socks, [], [], 10)
            if not ready:
                return
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def serve_socks(conn):
    _, n = recv_exact(conn, 2)
    recv_exact(conn, n)
    conn.sendall(b"\x05\x00")
    _, cmd, _, atyp = recv_exact(conn, 4)
    if atyp == 3:
        raw = recv_exact(conn, recv_exact(conn, 1)[0])
    elif atyp == 1:
        raw = socket.inet_ntoa(recv_exact(conn, 4)).encode()
    else:
        raw = socket.inet_ntop(socket.AF_INET6, recv_exact(conn, 16)).encode()
    port = struct.unpack(">H", recv_exact(conn, 2))[0]
    name = raw.decode("latin-1")
    if cmd != 1 or not allowed(name):
        conn.sendall(b"\x05\x02\x00\x01" + b"\0" * 6)
        return conn.close()
    if "socks-nul" in OPTS["flaw"]:
        name = name.split("\0", 1)[0]
    try:
        upstream = socket.create_connection((name, port), timeout=5)
    except (OSError, ValueError):
        conn.sendall(b"\x05\x04\x00\x01" + b"\0" * 6)
        return conn.close()
    conn.sendall(b"\x05\x00\x00\x01" + b"\0" * 6)
    pipe(conn, upstream)


def serve_http(conn):
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 16384:
        chunk = conn.recv(4096)
        if not chunk:
            return conn.close()
        head += chunk
    method, target = head.split(b" ", 2)[:2]
    if method == b"CONNECT":
        host, _, port = target.decode("latin-1").rpartition(":")
        host = host.strip("[]")
        rest = b""
    else:
        url = target.decode("latin-1")
        hostport = url.split("://", 1)[-1].split("/", 1)[0]
        if hostport.startswith("["):
            host, _, port = hostport[1:].partition("]")
            port = port.lstrip(":") or "80"
        else:
            host, _, port = hostport.partition(":")
            port = port or "80"
        path = "/" + url.split("://", 1)[-1].partition("/")[2]
        rest = head.replace(target, path.encode("latin-1"), 1)
    check = method == b"CONNECT" or "plain-http" not in OPTS["flaw"]
    if check and not allowed(host):
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return conn.close()
    try:
        upstream = socket.create_connection((host, int(port)), timeout=5)
    except (OSError, ValueError):
        conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return conn.close()
    if method == b"CONNECT":
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    else:
        upstream.sendall(rest)
    pipe(conn, upstream)


def serve(conn):
    try:
        conn.settimeout(10)
        first = conn.recv(1, socket.MSG_PEEK)
        (serve_socks if first == b"\x05" else serve_http)(conn)
    except (OSError, ValueError, IndexError):
        conn.close()


def accept_forever(listener, handler):
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def loopback_up():
    # SIOCGIFFLAGS / SIOCSIFFLAGS on "lo": a new network namespace starts with it down.
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    req = struct.pack("16sH14s", b"lo", 0, b"")
    flags = struct.unpack("16sH14s", fcntl.ioctl(s, 0x8913, req))[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags | 1, b""))
    s.close()


def forward(unix_path):
    def handler(conn):
        up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            up.connect(unix_path)
        except OSError:
            return conn.close()
        pipe(conn, up)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(32)
    threading.Thread(target=accept_forever, args=(listener, handler), daemon=True).start()
    return listener.getsockname()[1]


def main():
    if not CMD or not OPTS["allow"]:
        sys.exit("usage: _leaky_proxy.py --allow NAME [--deny NAME] [--flaw F] -- CMD...")
    folder = tempfile.mkdtemp(prefix="sandboxcheck-leaky-")
    path = os.path.join(folder, "proxy.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(32)
    child = os.fork()
    if child == 0:
        server.close()
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNET) != 0:
            sys.stderr.write("leaky proxy: unshare(CLONE_NEWNET): %s\n" % os.strerror(ctypes.get_errno()))
            os._exit(125)
        loopback_up()
        port = forward(path)
        url = "http://127.0.0.1:%d" % port
        env = dict(os.environ)
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
            env[name] = url
        env["ALL_PROXY"] = env["all_proxy"] = "socks5h://127.0.0.1:%d" % port
        env["NO_PROXY"] = env["no_proxy"] = "localhost,127.0.0.1,::1"
        grandchild = os.fork()
        if grandchild == 0:
            try:
                os.execvpe(CMD[0], CMD, env)
            except OSError as exc:
                sys.stderr.write("leaky proxy: %s: %s\n" % (CMD[0], exc))
                os._exit(127)
        _, status = os.waitpid(grandchild, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    threading.Thread(target=accept_forever, args=(server, serve), daemon=True).start()
    _, status = os.waitpid(child, 0)
    server.close()
    os.unlink(path)
    os.rmdir(folder)
    sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)


main()
