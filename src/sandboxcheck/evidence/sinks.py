"""Sinks the harness owns: TCP, UDP and DNS on loopback, and unix sockets in the root."""
from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path



MAX_RECORD = 65536
#: Hits kept per check token, and connections served at once: a target flooding the
#: sinks cannot grow the harness's memory or use up its descriptors.
MAX_HITS_PER_TOKEN = 16
MAX_CONNECTIONS = 256
#: Seconds a sink connection is served at most.
CONNECTION_LIFETIME = 10.0


@dataclass(frozen=True, slots=True)
class Hit:
    """Data one sink received."""

    sink: str
    address: str
    data: bytes


def _dns_qname(packet: bytes) -> str:
    labels, i = [], 12
    while i < len(packet) and packet[i]:
        n = packet[i]
        labels.append(packet[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    return ".".join(labels)


def _dns_answer(packet: bytes) -> bytes:
    # NXDOMAIN with the question echoed, so a resolver stops waiting.
    if len(packet) < 12:
        return b""
    qid = packet[:2]
    return qid + struct.pack(">HHHHH", 0x8183, 1, 0, 0, 0) + packet[12:]


class Sinks:
    """TCP, UDP and DNS sinks on 127.0.0.1 plus unix-socket sinks, served by one thread."""

    def __init__(self) -> None:
        self._sel = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._hits: list[Hit] = []
        #: Tokens of the checks running now: only data carrying one of them is kept.
        self._tokens: dict[bytes, int] = {}
        self._buffers: dict[socket.socket, tuple[str, str, bytearray]] = {}
        self._opened: dict[socket.socket, float] = {}
        self._wake_r, self._wake_w = socket.socketpair()
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", ""))
        self._pending: list[tuple[str, object]] = []
        self._sync: list[threading.Event] = []
        self._stop = False
        self.ports: dict[str, int] = {}
        self._unix: dict[str, socket.socket] = {}
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(64)
        tcp.setblocking(False)
        self._sel.register(tcp, selectors.EVENT_READ, ("listen", "tcp"))
        self.ports["tcp"] = tcp.getsockname()[1]
        for name in ("udp", "dns"):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("127.0.0.1", 0))
            u.setblocking(False)
            self._sel.register(u, selectors.EVENT_READ, ("dgram", name))
            self.ports[name] = u.getsockname()[1]
        self._thread = threading.Thread(target=self._loop, name="sandboxcheck-sinks", daemon=True)
        self._thread.start()

    def add_unix(self, name: str, path: Path, bind: str | None = None) -> None:
        """Listen on a unix socket at ``path`` under the sink name ``name``.

        ``bind`` is the address actually bound when it differs from ``path``:
        ``/proc/self/fd/N/name``, through a descriptor of the folder, so that
        no symlink on the way to ``path`` is followed.
        """
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(bind or str(path))
        except OSError:
            s.close()
            raise
        s.listen(16)
        s.setblocking(False)
        self._command("add", (s, name, str(path)))

    def remove_unix(self, path: Path) -> None:
        """Stop listening on the unix socket at ``path``."""
        self._command("remove", str(path))

    def _command(self, what: str, arg: object) -> None:
        with self._lock:
            self._pending.append((what, arg))
        self._wake_w.send(b"c")

    def sync(self, timeout: float = 2.0) -> None:
        """Return once everything already queued in the kernel has been read."""
        ev = threading.Event()
        with self._lock:
            self._sync.append(ev)
        self._wake_w.send(b"s")
        ev.wait(timeout)

    def watch(self, token: str) -> None:
        """Keep what the sinks receive with ``token`` (a check's) from now on."""
        with self._lock:
            self._tokens.setdefault(token.encode(), 0)

    def forget(self, token: str) -> None:
        """Drop ``token``'s hits and stop keeping new ones (its check has been judged)."""
        b = token.encode()
        with self._lock:
            self._tokens.pop(b, None)
            self._hits = [h for h in self._hits if b not in h.data]

    def hits(self, needle: str, addresses: set[str] | None = None) -> list[Hit]:
        """Hits whose data contains ``needle`` (optionally only at these addresses)."""
        b = needle.encode()
        with self._lock:
            return [h for h in self._hits if b in h.data and (addresses is None or h.address in addresses)]

    def address(self, name: str) -> str:
        """A printable address for a loopback sink."""
        return f"127.0.0.1:{self.ports[name]}"

    def close(self) -> None:
        """Stop the thread and close every socket."""
        self._stop = True
        self._wake_w.send(b"x")
        self._thread.join(2)
        for key in list(self._sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._sel.close()
        self._wake_w.close()

    def _record(self, name: str, address: str, data: bytes) -> None:
        data = bytes(data[:MAX_RECORD])
        with self._lock:
            for token, count in self._tokens.items():
                if token in data and count < MAX_HITS_PER_TOKEN:
                    self._tokens[token] = count + 1
                    self._hits.append(Hit(name, address, data))
                    return

    def _run_commands(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for what, arg in pending:
            if what == "add":
                s, name, path = arg  # type: ignore[misc]
                self._unix[path] = s
                self._sel.register(s, selectors.EVENT_READ, ("listen", name, path))
            elif what == "remove":
                s = self._unix.pop(arg, None)  # type: ignore[arg-type]
                if s is not None:
                    self._sel.unregister(s)
                    s.close()

    def _loop(self) -> None:
        while not self._stop:
            events = self._sel.select(0.5)
            self._handle(events)
            self._expire(time.monotonic())
            with self._lock:
                waiting = bool(self._sync)
            if waiting:
                # Drain whatever is already readable before releasing the waiters.
                for _ in range(20):
                    more = self._sel.select(0)
                    if len([e for e in more if e[0].data[0] != "wake"]) == 0:
                        break
                    self._handle(more)
                with self._lock:
                    syncs, self._sync = self._sync, []
                for ev in syncs:
                    ev.set()

    def _expire(self, now: float) -> None:
        """Close connections open longer than ``CONNECTION_LIFETIME``: a target holding many
        idle ones cannot keep the sinks from serving other checks."""
        for conn, opened in list(self._opened.items()):
            if now - opened > CONNECTION_LIFETIME:
                name, address, buf = self._buffers.pop(conn)
                del self._opened[conn]
                self._sel.unregister(conn)
                conn.close()
                if buf:
                    self._record(name, address, bytes(buf))

    def _handle(self, events: list) -> None:  # type: ignore[type-arg]
        for key, _ in events:
            kind = key.data[0]
            sock = key.fileobj
            if kind == "wake":
                try:
                    sock.recv(4096)  # type: ignore[union-attr]
                except BlockingIOError:
                    pass
                self._run_commands()
            elif kind == "listen":
                try:
                    conn, _addr = sock.accept()  # type: ignore[union-attr]
                except OSError:
                    continue
                if len(self._buffers) >= MAX_CONNECTIONS:
                    conn.close()  # a flood of connections: served no further
                    continue
                conn.setblocking(False)
                name = key.data[1]
                address = key.data[2] if len(key.data) > 2 else self.address(name)
                self._buffers[conn] = (name, address, bytearray())
                self._opened[conn] = time.monotonic()
                self._sel.register(conn, selectors.EVENT_READ, ("conn", name))
            elif kind == "conn":
                name, address, buf = self._buffers[sock]  # type: ignore[index]
                try:
                    chunk = sock.recv(65536)  # type: ignore[union-attr]
                except OSError:
                    chunk = b""
                if chunk and len(buf) < MAX_RECORD:
                    buf.extend(chunk)
                if not chunk:
                    self._sel.unregister(sock)
                    sock.close()  # type: ignore[union-attr]
                    del self._buffers[sock]  # type: ignore[arg-type]
                    self._opened.pop(sock, None)  # type: ignore[call-overload]
                    self._record(name, address, bytes(buf) or b"")
                elif b"\n" in buf:
                    # A line is a complete payload: record now, keep reading.
                    self._record(name, address, bytes(buf))
                    buf.clear()
            elif kind == "dgram":
                name = key.data[1]
                try:
                    data, peer = sock.recvfrom(65536)  # type: ignore[union-attr]
                except OSError:
                    continue
                if name == "dns":
                    self._record("dns", self.address("dns"), _dns_qname(data).encode())
                    try:
                        sock.sendto(_dns_answer(data), peer)  # type: ignore[union-attr]
                    except OSError:
                        pass
                else:
                    self._record(name, self.address(name), data)
