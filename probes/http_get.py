"""Fetch an http:// or https:// URL, through the proxy the environment names, as curl chooses it.

--via env (default): http_proxy for http (lower case only, as curl), https_proxy or
HTTPS_PROXY for https, then all_proxy / ALL_PROXY; no_proxy / NO_PROXY exempts hosts.
--via direct: ignore every proxy variable.
--via socks: the first socks5/socks5h proxy among ALL_PROXY, all_proxy, FTP_PROXY,
ftp_proxy, else --socks-fallback (a SOCKS5 server outside the sandbox: reaching it at
all is egress), else the action cannot run.
--proxy URL: use this proxy (http://, socks5://, socks5h://).
--socks-name NAME: the SOCKS5 domain to send instead of the URL's host,
percent-decoded (so %00 is a NUL byte).
TLS certificates are not verified: the harness's sink signs its own.
"""
import os
import socket
import struct
import sys
from base64 import b64encode
from urllib.parse import unquote_to_bytes
from _probe import args, emit, precondition_failed

a = args(sys.argv[1:], {"url": None, "via": "env", "proxy": "", "socks-name": "", "socks-fallback": ""})


def split_url(url):
    scheme, _, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, _, hostport = netloc.rpartition("@")
    if hostport.startswith("["):
        host, _, port = hostport[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = hostport.partition(":")
    default = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}.get(scheme.lower(), 80)
    return scheme.lower(), unquote_to_bytes(userinfo).decode("latin-1"), host, int(port or default), slash + path


def exempt(host, no_proxy):
    if not no_proxy.strip():
        return False
    import ipaddress  # only here: a request with no exemptions need not pay for the import

    h = host.lower().rstrip(".")
    try:
        ip = ipaddress.ip_address(h.strip("[]"))
    except ValueError:
        ip = None
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if entry == "*":
            return True
        if not entry:
            continue
        if ip is not None:
            # As curl: an address host matches address and CIDR entries only.
            try:
                if ip in ipaddress.ip_network(entry.strip("[]"), strict=False):
                    return True
            except ValueError:
                pass
            continue
        entry = entry.lstrip(".")
        if h == entry or h.endswith("." + entry):
            return True
    return False


def choose_proxy(scheme, host):
    env = os.environ
    names = ["http_proxy"] if scheme == "http" else ["https_proxy", "HTTPS_PROXY"]
    proxy = next((env[n] for n in names + ["all_proxy", "ALL_PROXY"] if env.get(n)), "")
    no_proxy = env.get("no_proxy") or env.get("NO_PROXY") or ""
    if proxy and exempt(host, no_proxy):
        return ""
    return proxy


def auth(userinfo):
    return ("Proxy-Authorization: Basic %s\r\n" % b64encode(userinfo.encode("latin-1")).decode()) if userinfo else ""


def read_status(sock):
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    line = data.split(b"\r\n", 1)[0].split()
    return (int(line[1]) if len(line) > 1 and line[1].isdigit() else None), data


class Refused(OSError):
    """A proxy (HTTP or SOCKS5) refused the destination."""


def socks5(sock, userinfo, dest, port):
    sock.sendall(b"\x05\x02\x00\x02" if userinfo else b"\x05\x01\x00")
    method = sock.recv(2)
    if method[1:2] == b"\x02":
        user, _, pw = userinfo.partition(":")
        u, p = user.encode("latin-1"), pw.encode("latin-1")
        sock.sendall(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
        if sock.recv(2)[1:2] != b"\x00":
            raise OSError("SOCKS5 authentication refused")
    elif method[1:2] != b"\x00":
        raise OSError("SOCKS5 method refused")
    if isinstance(dest, bytes):
        addr = b"\x03" + bytes([len(dest)]) + dest
    elif ":" in dest:
        addr = b"\x04" + socket.inet_pton(socket.AF_INET6, dest)
    else:
        addr = b"\x01" + socket.inet_aton(dest)
    sock.sendall(b"\x05\x01\x00" + addr + struct.pack(">H", port))
    reply = sock.recv(262)
    if reply[1:2] != b"\x00":
        raise Refused("SOCKS5 CONNECT refused (reply %d)" % (reply[1] if len(reply) > 1 else -1))


def socks_from_env():
    for name in ("ALL_PROXY", "all_proxy", "FTP_PROXY", "ftp_proxy"):
        if os.environ.get(name, "").lower().startswith("socks5"):
            return os.environ[name]
    return ""


scheme, _, host, port, path = split_url(a["url"])
action = "GET %s" % a["url"]
if a["via"] == "socks" and not a["proxy"]:
    a["proxy"] = socks_from_env() or a["socks-fallback"]
    if not a["proxy"]:
        precondition_failed("http_get", action, "a SOCKS5 proxy named by the environment")
proxy = a["proxy"] or ("" if a["via"] == "direct" else choose_proxy(scheme, host))
hostport = ("[%s]" % host if ":" in host else host) + ":%d" % port
route = "direct"
try:
    if proxy:
        pscheme, userinfo, phost, pport, _ = split_url(proxy if "://" in proxy else "http://" + proxy)
        route = "%s proxy %s:%d" % (pscheme, phost, pport)
        sock = socket.create_connection((phost, pport), timeout=5)
        if pscheme in ("socks5", "socks5h"):
            if a["socks-name"]:
                dest = unquote_to_bytes(a["socks-name"])
            elif pscheme == "socks5h":
                dest = host.encode("latin-1")
            else:
                dest = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0]
            socks5(sock, userinfo, dest, port)
            tunnel = True
        elif pscheme in ("http", "https"):
            tunnel = scheme == "https"
            if tunnel:
                request = "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (hostport, hostport, auth(userinfo))
                sock.sendall(request.encode())
                status, _ = read_status(sock)
                if status != 200:
                    emit("http_get", action, False, Refused("proxy refused CONNECT: %s" % status),
                         route=route, status=status, errno="PROXY_REFUSED")
        else:
            precondition_failed("http_get", action, "a proxy scheme this probe speaks: %s" % pscheme)
    else:
        sock = socket.create_connection((host, port), timeout=5)
        tunnel = True
    if scheme == "https":
        import ssl  # only for TLS: a plain request need not pay for the import

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        sock = ctx.wrap_socket(sock, server_hostname=None if ":" in host else host.rstrip(".") or None)
    target = path if tunnel else a["url"]
    extra = "" if tunnel else auth(userinfo)
    sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n%sUser-Agent: sandboxcheck-probe\r\nConnection: close\r\n\r\n"
                  % (target, hostport, extra)).encode("latin-1"))
    status, data = read_status(sock)
    sock.close()
except (OSError, ValueError, IndexError) as exc:
    refused = {"errno": "PROXY_REFUSED"} if isinstance(exc, Refused) else {}
    emit("http_get", action, False, exc, route=route, **refused)
ok = status is not None and 200 <= status < 300
answered = b"sandboxcheck-web-sink" in data
if proxy and not ok and not answered:
    # The proxy answered for itself (a refusal page), not the host behind it.
    emit("http_get", action, False, Refused("the proxy answered %s" % status), route=route, status=status,
         sink_answered=False, errno="PROXY_REFUSED")
emit("http_get", action, ok, route=route, status=status, sink_answered=answered)
