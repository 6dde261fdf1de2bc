"""Host-side observers: network and unix-socket sinks, a witness process, snapshots.

Everything here runs outside the sandbox and is owned by the harness. Sinks
listen on loopback or on unix sockets inside the throwaway root only.
"""
from __future__ import annotations

import hashlib
import os
import select
import selectors
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from . import safefs

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


# Handlers only record: a handler can run inside another one (Python checks
# signals between bytecodes), so all output happens in the main flow. SIGTERM
# (the harness's stop) stays blocked and is waited for, so the witness ends the
# moment it is told to, after the handlers of anything already delivered.
_WITNESS = (
    "import signal,sys\n"
    "got=[]\n"
    "def h(n,f): got.append(n)\n"
    "for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP): signal.signal(s, h)\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])\n"
    "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
    "signal.sigtimedwait([signal.SIGTERM], float(sys.argv[2]))\n"
    "sys.stdout.write(''.join('SIGNAL %d\\n' % n for n in got) + 'END\\n')\n"
)


def _python() -> str:
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


class Witness:
    """A harness-owned process outside the sandbox that records signals it receives.

    Its command line carries the check's canary, so reading it from inside the
    sandbox shows up as a leak.
    """

    def __init__(self, token_value: str, lifetime: float = 120.0) -> None:
        self.proc = subprocess.Popen(
            [_python(), "-S", "-E", "-s", "-c", _WITNESS, token_value, str(lifetime)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin"}, process_group=0)  # the harness's session: see sweep_orphans
        assert self.proc.stdout is not None
        self._out = self.proc.stdout.fileno()
        os.set_blocking(self._out, False)
        # 'ready': handlers installed. Bounded in time: the witness is within reach of the target.
        self._read_until(b"ready\n", time.monotonic() + 5)

    def _read_until(self, end: bytes, deadline: float) -> bytes:
        data = b""
        poller = select.poll()
        poller.register(self._out, select.POLLIN)
        while end not in data and len(data) < 4096:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(int(left * 1000)):
                break
            try:
                chunk = os.read(self._out, 4096)
            except BlockingIOError:
                continue
            if not chunk:
                break
            data += chunk
        return data

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> list[str]:
        """End the witness and return the signals it recorded.

        A signal the probe sent is already pending when the target exits;
        pending signals are handled in number order, so SIGUSR1/SIGHUP are
        recorded before the SIGTERM handler ends the witness.
        """
        if self.proc.returncode is not None:
            return []
        self.proc.terminate()
        out = self._read_until(b"END\n", time.monotonic() + 5)
        self.proc.kill()  # ended already, or stopped by the code under test
        self.proc.wait()
        self.proc.stdout.close()  # type: ignore[union-attr]
        return [line for line in out.decode("ascii", "replace").splitlines() if line.startswith("SIGNAL")]


@dataclass(frozen=True, slots=True)
class FileState:
    """A host path's state: whether it exists and a digest of its content."""

    exists: bool
    digest: str | None


#: Bytes of a watched file hashed at most (its size and mtime stand for the rest).
HASH_CAP = 16 << 20


def _digest_fd(fd: int, st: os.stat_result) -> str:
    h = hashlib.sha256()
    left = HASH_CAP
    while left > 0:
        data = os.read(fd, min(left, 1 << 16))
        if not data:
            break
        h.update(data)
        left -= len(data)
    if st.st_size > HASH_CAP:
        return f"{h.hexdigest()}:{st.st_size}:{st.st_mtime_ns}"
    return h.hexdigest()


def _state_at(dir_fd: int, name: str) -> FileState:
    try:
        st = safefs.lstat_at(dir_fd, name)
    except FileNotFoundError:
        return FileState(False, None)
    except OSError as exc:
        return FileState(True, f"unreadable:{exc.errno}")
    try:
        if stat.S_ISLNK(st.st_mode):
            return FileState(True, "symlink:" + os.readlink(name, dir_fd=dir_fd))
        if stat.S_ISDIR(st.st_mode):
            fd = safefs.open_dir(dir_fd, name)
            try:
                names = []
                with os.scandir(fd) as it:
                    for entry in it:
                        names.append(entry.name)
                        if len(names) > 10_000:
                            break
            finally:
                os.close(fd)
            return FileState(True, "dir:" + ",".join(sorted(names)))
        if not stat.S_ISREG(st.st_mode):
            return FileState(True, f"special:{stat.S_IFMT(st.st_mode):o}:{st.st_ino}")
        fd = safefs.open_regular(dir_fd, name)
        try:
            return FileState(True, _digest_fd(fd, st))
        finally:
            os.close(fd)
    except OSError as exc:
        return FileState(True, f"unreadable:{exc.errno}")


def file_state(path: Path, root_fd: int | None = None, root: Path | None = None) -> FileState:
    """Current state of ``path``: never following a symlink, never blocking, bounded.

    Inside a throwaway root (``root_fd`` and ``root`` given) every component
    is resolved through descriptors: a folder on the way replaced by a
    symlink is the state "missing" (the target cannot redirect the harness's
    reads). Elsewhere only the final component is not followed. A FIFO or a
    device is described, never opened.
    """
    rel = _relative(path, root) if root_fd is not None else None
    if rel is not None:
        parent, _, name = rel.rpartition("/")
        try:
            pfd = safefs.open_path(root_fd, parent) if parent else os.dup(root_fd)  # type: ignore[arg-type]
        except FileNotFoundError:
            return FileState(False, None)
        except OSError as exc:
            return FileState(False, None) if isinstance(exc, safefs.UnsafeEntry) else \
                FileState(True, f"unreadable:{exc.errno}")
        try:
            return _state_at(pfd, name) if name else FileState(True, "dir:root")
        finally:
            os.close(pfd)
    try:
        pfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return FileState(False, None)
    except OSError as exc:
        return FileState(True, f"unreadable:{exc.errno}")
    try:
        return _state_at(pfd, path.name)
    finally:
        os.close(pfd)


def _relative(path: Path, root: Path | None) -> str | None:
    if root is None:
        return None
    text, base = os.path.normpath(str(path)), str(root)
    if text == base:
        return ""
    if text.startswith(base + "/"):
        return text[len(base) + 1:]
    return None


def read_file(path: Path, cap: int, root_fd: int | None = None, root: Path | None = None) -> bytes | None:
    """The first ``cap`` bytes of a regular file (resolved like ``file_state``), None if not one."""
    rel = _relative(path, root) if root_fd is not None else None
    try:
        if rel:
            parent, _, name = rel.rpartition("/")
            pfd = safefs.open_path(root_fd, parent) if parent else os.dup(root_fd)  # type: ignore[arg-type]
            try:
                return safefs.read_regular(pfd, name, cap)
            finally:
                os.close(pfd)
        return safefs.read_host_file(str(path), cap)
    except OSError:
        return None


def tree_state(root_fd: int, rel: str) -> dict[str, tuple[int, int, int]]:
    """(size, mtime_ns, inode) of every regular file under ``rel`` of a root (nothing followed)."""
    out: dict[str, tuple[int, int, int]] = {}
    try:
        top = safefs.open_path(root_fd, rel)
    except OSError:
        return out
    try:
        for sub, _fd, _name, st in safefs.walk(top, max_entries=20_000):
            if stat.S_ISREG(st.st_mode):
                out[f"{rel}/{sub}"] = (st.st_size, st.st_mtime_ns, st.st_ino)
    finally:
        os.close(top)
    return out


def processes_with(needle: str, exclude: set[int]) -> list[psutil.Process]:
    """Live processes whose command line contains ``needle``.

    Reads ``/proc/PID/cmdline`` directly (a few times cheaper than asking psutil
    for every process); psutil takes over for the few that match.
    """
    if not os.path.isdir("/proc/self"):
        return [p for p in psutil.process_iter(["cmdline", "status"])
                if p.pid not in exclude and p.info["status"] != psutil.STATUS_ZOMBIE
                and any(needle in part for part in p.info["cmdline"] or ())]
    want = needle.encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                if want not in fh.read():
                    continue  # a zombie's command line is empty
            proc = psutil.Process(int(entry.name))
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def _alive(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_tree(pid: int) -> None:
    """Kill a process we started and every descendant it still has, by id."""
    try:
        parent = psutil.Process(pid)
        procs = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        procs = []
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    # Not all of them are our children (a daemon is reparented), so wait for
    # each to be gone or a zombie rather than for a reap we cannot do.
    deadline = time.monotonic() + 3
    while procs and time.monotonic() < deadline:
        procs = [p for p in procs if _alive(p)]
        if procs:
            time.sleep(0.005)
    try:
        os.killpg(pid, 9)  # the session/group we created for it
    except (ProcessLookupError, PermissionError):
        pass
