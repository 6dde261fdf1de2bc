"""Protocol sinks on loopback: a web sink that speaks HTTP, CONNECT, TLS and SOCKS5, and a DNS sink.

A web sink listens on one port of each of the harness's loopback addresses
and works out, from the first bytes of each connection, which protocol the
client speaks; layers nest (a SOCKS5 or CONNECT tunnel carrying TLS carrying
HTTP), and every layer's routing data is kept: the CONNECT target, the TLS
ClientHello's server name, the SOCKS5 destination exactly as sent (a NUL byte
included). The DNS sink logs every query name and answers names under the
harness's own test domain with the harness's addresses; everything else gets
NXDOMAIN. Nothing here ever dials out.
"""
from __future__ import annotations

import errno
import shutil
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

#: The harness's own test domain (RFC 2606 reserves ``.test``): every name a check uses is under it.
DOMAIN = "sandboxcheck.test"
#: The body every HTTP request gets: a client can tell the sink answered.
SINK_BODY = b"sandboxcheck-web-sink\n"
HEAD_CAP = 16384
HITS_KEPT = 4096
MAX_CONNECTIONS = 64
#: Seconds a connection may stay silent before the sink gives up on it.
IDLE = 5.0


@dataclass(frozen=True, slots=True)
class NetHit:
    """What reached a protocol sink on one connection (or in one DNS query).

    ``sink`` is ``web`` or ``dns``; ``role`` names the harness address that
    was reached (``allowed``, ``other``, ``ipv6``, ``dns``); ``layers`` lists
    the protocols in the order they were unwrapped (``socks``, ``connect``,
    ``tls``, ``http``); ``data`` is the HTTP request head or the query name.
    """

    sink: str
    role: str
    layers: tuple[str, ...]
    data: bytes
    sni: str | None = None
    connect_target: str | None = None
    socks_destination: bytes | None = None
    peer: str = ""
    #: The name of the local process that opened the connection (a proxy's, or the probe's own).
    client: str | None = None

    def carries(self, needle: bytes) -> bool:
        """Whether ``needle`` (a check's token) arrived in any layer of this hit."""
        texts = [self.data, (self.sni or "").encode(), (self.connect_target or "").encode(),
                 self.socks_destination or b""]
        return any(needle in t or needle.lower() in t.lower() for t in texts)

    def describe(self, token: str = "") -> str:
        """A line for a report; ``token`` is shown as ``{token}`` and no port is named, so runs compare."""
        parts = ["over " + " in ".join(reversed(self.layers))] if self.layers else []
        if self.socks_destination is not None:
            # The port is left out: it differs from run to run.
            name = self.socks_destination.rpartition(b":")[0] or self.socks_destination
            shown = name.decode("ascii", "backslashreplace").replace("\x00", "\\x00")
            parts.append(f"SOCKS5 destination {shown!r}")
        if self.sni:
            parts.append(f"TLS server name {self.sni!r}")
        if self.client:
            parts.append(f"connected from a {self.client!r} process")
        text = f"{self.sink} sink at the harness's {self.role} address" + (" " + ", ".join(parts) if parts else "")
        return text.replace(token, "{token}") if token else text


def make_certificate(folder: Path) -> tuple[Path, Path] | None:
    """A throwaway self-signed certificate for ``*.sandboxcheck.test`` made with the openssl CLI.

    None when openssl is not installed: the TLS layer then records the
    ClientHello's server name and closes without a handshake.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    key, cert = folder / "sink.key", folder / "sink.crt"
    done = subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "2", "-subj", f"/CN={DOMAIN}", "-addext", f"subjectAltName=DNS:{DOMAIN},DNS:*.{DOMAIN}",
         "-keyout", str(key), "-out", str(cert)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30, check=False)
    if done.returncode != 0 or not cert.exists():
        return None
    return cert, key


def client_hello_sni(data: bytes) -> str | None:
    """The server_name of a TLS ClientHello record (None if absent or malformed)."""
    try:
        if len(data) < 5 or data[0] != 0x16:
            return None
        body = data[5:5 + struct.unpack(">H", data[3:5])[0]]
        if not body or body[0] != 0x01:
            return None
        i = 4 + 2 + 32  # handshake header, client version, random
        i += 1 + body[i]  # session id
        i += 2 + struct.unpack(">H", body[i:i + 2])[0]  # cipher suites
        i += 1 + body[i]  # compression methods
        end = i + 2 + struct.unpack(">H", body[i:i + 2])[0]
        i += 2
        while i + 4 <= end:
            ext_type, ext_len = struct.unpack(">HH", body[i:i + 4])
            ext = body[i + 4:i + 4 + ext_len]
            if ext_type == 0:  # server_name: list length, type, name length, name
                name_len = struct.unpack(">H", ext[3:5])[0]
                return ext[5:5 + name_len].decode("ascii", "replace")
            i += 4 + ext_len
    except (IndexError, struct.error):
        return None
    return None


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed early")
        data += chunk
    return data


def _read_head(conn: socket.socket | ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data and len(data) < HEAD_CAP:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _peek_record(conn: socket.socket) -> bytes:
    """A whole TLS record (the ClientHello) without taking it, so the TLS layer still reads it."""
    deadline = time.monotonic() + IDLE
    data, still = b"", 0
    while time.monotonic() < deadline and still < 50:
        more = conn.recv(HEAD_CAP + 5, socket.MSG_PEEK)
        if not more or (len(more) >= 5 and len(more) >= 5 + struct.unpack(">H", more[3:5])[0]):
            return more
        still = still + 1 if len(more) == len(data) else 0  # nothing new for half a second: take what came
        data = more
        time.sleep(0.01)  # the rest of the record is on its way
    return data


def _socks5_server_side(conn: socket.socket) -> bytes:
    """Answer a SOCKS5 greeting (no auth, or username/password accepted blindly) and a CONNECT.

    Returns the destination as sent: the raw domain bytes, or the address's text form.
    """
    ver, count = _recv_exact(conn, 2)
    methods = _recv_exact(conn, count)
    if 0 in methods:
        conn.sendall(b"\x05\x00")
    elif 2 in methods:
        conn.sendall(b"\x05\x02")
        _, ulen = _recv_exact(conn, 2)
        _recv_exact(conn, ulen)
        (plen,) = _recv_exact(conn, 1)
        _recv_exact(conn, plen)
        conn.sendall(b"\x01\x00")
    else:
        conn.sendall(b"\x05\xff")
        raise ConnectionError("no acceptable SOCKS5 method")
    _ver, cmd, _rsv, atyp = _recv_exact(conn, 4)
    if atyp == 1:
        dest = socket.inet_ntop(socket.AF_INET, _recv_exact(conn, 4)).encode()
    elif atyp == 4:
        dest = socket.inet_ntop(socket.AF_INET6, _recv_exact(conn, 16)).encode()
    elif atyp == 3:
        (n,) = _recv_exact(conn, 1)
        dest = _recv_exact(conn, n)
    else:
        raise ConnectionError("bad SOCKS5 address type")
    port = struct.unpack(">H", _recv_exact(conn, 2))[0]
    ok = cmd == 1
    conn.sendall(b"\x05" + (b"\x00" if ok else b"\x07") + b"\x00\x01" + b"\x00" * 6)
    if not ok:
        raise ConnectionError("SOCKS5 command other than CONNECT")
    return dest + b":" + str(port).encode()


class ProtocolSinks:
    """Web sinks on each harness address (one port shared by all) and a DNS sink.

    ``addresses`` maps a role to a loopback address (``allowed``:
    ``127.a.b.1``); ``dns`` is the address whose UDP port 53 answers queries
    (None: no DNS sink); ``resolve`` maps a query name to the address the
    DNS sink answers with (None: NXDOMAIN).
    """

    def __init__(self, addresses: Mapping[str, str], folder: Path, dns: str | None = None,
                 resolve: Callable[[str], str | None] | None = None,
                 attribute: Callable[[str], str | None] | None = None) -> None:
        self.addresses = dict(addresses)
        self._hits: deque[NetHit] = deque(maxlen=HITS_KEPT)
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        #: Connections being served now; ``settle`` waits for them to be recorded.
        self._active = 0
        self._idle = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.cert = make_certificate(folder)
        self._tls: ssl.SSLContext | None = None
        if self.cert is not None:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(str(self.cert[0]), str(self.cert[1]))
        self.web_port = self._bind_web()
        #: The same sinks on a second port: one an allowlist scoped to ``web_port`` does not name.
        self.alt_port = self._bind_web()
        self.dns_address: str | None = None
        self.dns_problem: str | None = None
        self._resolve = resolve or (lambda name: None)
        self._attribute = attribute
        if dns is not None:
            self._bind_dns(dns)

    # -- set-up ---------------------------------------------------------
    def _bind_web(self) -> int:
        """One port free on every address: the first address picks it, the others follow or all retry."""
        last: OSError | None = None
        for _ in range(20):
            socks: list[tuple[str, socket.socket]] = []
            port = 0
            try:
                for role, addr in self.addresses.items():
                    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
                    s = socket.socket(family, socket.SOCK_STREAM)
                    socks.append((role, s))
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind((addr, port))
                    port = s.getsockname()[1]
                    s.listen(32)
            except OSError as exc:
                last = exc
                for _, s in socks:
                    s.close()
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            for role, s in socks:
                self._listeners.append(s)
                self._start(self._accept_loop, s, role)
            return port
        raise OSError(errno.EADDRINUSE, f"no port free on every harness address: {last}")

    def _bind_dns(self, address: str) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((address, 53))
        except OSError as exc:
            s.close()
            self.dns_problem = f"the DNS sink cannot listen on {address}:53 ({exc.strerror})"
            return
        s.settimeout(0.5)
        self._listeners.append(s)
        self.dns_address = address
        self._start(self._dns_loop, s, "dns")

    def _start(self, fn: Callable[[socket.socket, str], None], s: socket.socket, role: str) -> None:
        t = threading.Thread(target=fn, args=(s, role), name=f"sandboxcheck-net-{role}", daemon=True)
        t.start()
        self._threads.append(t)

    # -- queries --------------------------------------------------------
    def hits(self, token: str) -> list[NetHit]:
        """Every hit that carried ``token`` in any layer."""
        needle = token.encode()
        with self._lock:
            return [h for h in self._hits if h.carries(needle)]

    def settle(self, timeout: float = 2.0) -> None:
        """Return once every connection accepted so far has been recorded (or ``timeout`` passed)."""
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout)

    def forget(self, token: str) -> None:
        """Drop ``token``'s hits (its check has been judged)."""
        needle = token.encode()
        with self._lock:
            kept = [h for h in self._hits if not h.carries(needle)]
            self._hits.clear()
            self._hits.extend(kept)

    def close(self) -> None:
        """Stop every listener and wait for the threads."""
        self._stop.set()
        for s in self._listeners:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self._threads:
            t.join(2)

    def _record(self, hit: NetHit) -> None:
        with self._lock:
            self._hits.append(hit)

    # -- serving --------------------------------------------------------
    def _accept_loop(self, listener: socket.socket, role: str) -> None:
        listener.settimeout(0.5)
        while not self._stop.is_set():
            try:
                conn, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                conn.close()  # a flood: served no further
                continue
            with self._lock:
                self._active += 1
            threading.Thread(target=self._serve, args=(conn, role, peer), daemon=True).start()

    def _serve(self, conn: socket.socket, role: str, peer: tuple) -> None:  # type: ignore[type-arg]
        layers: list[str] = []
        found: dict[str, object] = {}
        stream: socket.socket | ssl.SSLSocket = conn
        head = b""
        peer_text = f"{peer[0]}:{peer[1]}"
        client = None
        try:
            # While the connection is open: afterwards its owner cannot be found.
            client = self._attribute(peer_text) if self._attribute else None
            conn.settimeout(IDLE)
            for _ in range(4):  # socks or connect, then tls, then http at most
                if isinstance(stream, ssl.SSLSocket):
                    head = _read_head(stream)
                    first = head[:1]
                else:
                    first = conn.recv(1, socket.MSG_PEEK)
                if not first:
                    break
                if first == b"\x05" and not layers:
                    found["socks"] = _socks5_server_side(conn)
                    layers.append("socks")
                    continue
                if first == b"\x16" and "tls" not in layers and not isinstance(stream, ssl.SSLSocket):
                    hello = _peek_record(conn)
                    found["sni"] = client_hello_sni(hello)
                    layers.append("tls")
                    if self._tls is None:
                        break
                    try:
                        stream = self._tls.wrap_socket(conn, server_side=True)
                    except (ssl.SSLError, OSError):
                        break  # the client refused the certificate: the server name is what arrived
                    continue
                if not isinstance(stream, ssl.SSLSocket):
                    head = _read_head(conn)
                if head.startswith(b"CONNECT ") and "connect" not in layers and "tls" not in layers:
                    found["connect"] = head.split(b" ", 2)[1].decode("ascii", "replace")
                    layers.append("connect")
                    stream.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    head = b""
                    continue
                if head:
                    layers.append("http")
                    stream.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                                   + str(len(SINK_BODY)).encode() + b"\r\nConnection: close\r\n\r\n" + SINK_BODY)
                break
        except (OSError, ConnectionError, ValueError):
            pass
        finally:
            if layers or head:
                self._record(NetHit(
                    "web", role, tuple(layers), head[:HEAD_CAP], sni=found.get("sni"),  # type: ignore[arg-type]
                    connect_target=found.get("connect"),  # type: ignore[arg-type]
                    socks_destination=found.get("socks"),  # type: ignore[arg-type]
                    peer=peer_text, client=client))
            try:
                stream.close()
            except OSError:
                pass
            self._slots.release()
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def _dns_loop(self, sock: socket.socket, role: str) -> None:
        while not self._stop.is_set():
            try:
                packet, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            name, qtype, end = parse_query(packet)
            if name is None:
                continue
            self._record(NetHit("dns", role, ("dns",), name.encode("ascii", "backslashreplace"),
                                peer=f"{peer[0]}:{peer[1]}"))
            try:
                sock.sendto(dns_answer(packet, end, qtype, self._resolve(name)), peer)
            except OSError:
                pass


def parse_query(packet: bytes) -> tuple[str | None, int, int]:
    """A DNS query's first question: its name (labels as sent, NUL kept), its type, where it ends."""
    try:
        labels, i = [], 12
        while packet[i]:
            n = packet[i]
            if n & 0xC0:
                return None, 0, 0
            labels.append(packet[i + 1:i + 1 + n].decode("latin-1"))
            i += 1 + n
        qtype = struct.unpack(">H", packet[i + 1:i + 3])[0]
        return ".".join(labels), qtype, i + 5
    except (IndexError, struct.error):
        return None, 0, 0


def dns_answer(packet: bytes, end: int, qtype: int, address: str | None) -> bytes:
    """An answer to ``packet``: an A record for ``address``, NOERROR with no record for other
    types of a known name, NXDOMAIN for an unknown one."""
    question = packet[12:end]
    header = packet[:2]
    if address is None:
        return header + struct.pack(">HHHHH", 0x8183, 1, 0, 0, 0) + question
    if qtype != 1:
        return header + struct.pack(">HHHHH", 0x8180, 1, 0, 0, 0) + question
    answer = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 5, 4) + socket.inet_aton(address)
    return header + struct.pack(">HHHHH", 0x8180, 1, 1, 0, 0) + question + answer
