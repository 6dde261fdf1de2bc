"""Launching target processes: a keeper per launch, bounded output, a deadline for everything.

Every process a target starts is treated as hostile. Each launch goes
through the launch server (``_forkserver.py``), which gives it a keeper
process of its own: a child subreaper that stays the ancestor of everything
the launch starts (double-forked and setsid'd daemons included), lists those
processes when asked and kills and reaps all of them at the end of the
check, or as soon as the harness goes away. The harness reads the target's
output with a deadline and a byte cap (head and tail kept, canaries searched
while streaming), so no process that holds a pipe open, and no flood of
output, can stall a check beyond its timeout or grow the harness's memory.

A control run (the same probe with no confinement) can run its probe's code
in a plain fork of the server instead of a fresh interpreter, which halves
its cost; probes whose result depends on a fresh process image are not sent
that way.
"""
from __future__ import annotations

import json
import os
import select
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..targets.tools import DEFAULT_PATH

#: Bytes kept of each output stream: the first and the last half of this.
OUTPUT_CAP = 1 << 20
#: Occurrences of a watched string remembered per stream (with what follows each).
MAX_MATCHES = 256
_MATCH_TAIL = 96

_SERVER = Path(__file__).with_name("_forkserver.py")
#: Seconds the launch server may take to fork a keeper, and a keeper to end its launch.
SPAWN_TIMEOUT = 5.0
END_TIMEOUT = 5.0


_SUBREAPER = False


def become_subreaper() -> bool:
    """Make this process a child subreaper (for a process that is only a harness: the CLI).

    The launch server and every keeper are subreapers already; this catches what
    a target leaves when it kills both its keeper and the server: such orphans
    come back to the harness, and ``sweep_orphans`` ends them.
    """
    global _SUBREAPER
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        _SUBREAPER = libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        _SUBREAPER = False
    return _SUBREAPER


def _stat_fields(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read(1024)
    except OSError:
        return []
    return data[data.rfind(b")") + 2:].split()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out.extend(int(k) for k in fh.read().split())
        except (OSError, ValueError):
            continue
    return out


def sweep_orphans(deadline: float = 5.0) -> int:
    """End the orphans that came back to this (subreaper) process; how many.

    Every process the harness starts itself stays in its session (the launch
    server and the witness get a process group of their own, not a session);
    every target calls setsid. So a child in another session is something a
    target left behind: it is stopped, killed with its descendants, and reaped,
    pass after pass until a pass finds nothing (a process that keeps forking
    and exiting hands its children back here between passes), for at most
    ``deadline`` seconds.
    """
    if not _SUBREAPER:
        return 0
    me, my_sid = os.getpid(), os.getsid(0)
    ended = 0
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        found = False
        for pid in _children(me):
            fields = _stat_fields(pid)
            if len(fields) < 4 or int(fields[3]) == my_sid:
                continue  # the harness's own (its session), or gone
            found = True
            if fields[0] != b"Z":
                tree = [pid]
                i = 0
                while i < len(tree) and len(tree) < 10_000:
                    tree.extend(_children(tree[i]))
                    i += 1
                for sig in (signal.SIGSTOP, signal.SIGKILL):
                    for p in tree:
                        try:
                            os.kill(p, sig)
                        except OSError:
                            pass
                ended += 1
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        if not found:
            break
        time.sleep(0.001)
    return ended


class Capture:
    """One output stream, bounded: its head and tail, and every watched string seen anywhere.

    ``needles`` are searched in the whole stream as it arrives (across chunk
    boundaries), so a canary printed in the middle of gigabytes of output is
    still found; each match is kept with the text that follows it (a canary's
    label).
    """

    def __init__(self, needles: Iterable[str] = (), cap: int = OUTPUT_CAP) -> None:
        self.needles = sorted({n.encode() for n in needles if n}, key=len)
        self._keep = max((len(n) for n in self.needles), default=0) + _MATCH_TAIL
        self.half = cap // 2
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.matches: list[bytes] = []
        self._carry = b""
        self._seen: set[int] = set()  # stream offsets of the matches recorded

    def feed(self, data: bytes) -> None:
        """Take the next chunk of the stream."""
        self.total += len(data)
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
        self.tail += data
        if len(self.tail) > self.half:
            del self.tail[:len(self.tail) - self.half]
        if self.needles:
            window = self._carry + data
            self._scan(window, self.total - len(window), final=False)
            self._carry = window[-self._keep:]

    def _scan(self, window: bytes, offset: int, final: bool) -> None:
        """Record each watched string in ``window`` (at ``offset`` in the stream) once, with
        the text after it; one too close to the end waits for the next chunk (it is in the
        carried-over part), unless the stream has ended."""
        for needle in self.needles:
            at = window.find(needle)
            while at >= 0 and len(self.matches) < MAX_MATCHES:
                end = at + len(needle) + _MATCH_TAIL
                if (end <= len(window) or final) and offset + at not in self._seen:
                    self._seen.add(offset + at)
                    self.matches.append(bytes(window[at:end]))
                at = window.find(needle, at + 1)

    def _flush(self) -> None:
        if self.needles and self._carry:
            self._scan(self._carry, self.total - len(self._carry), final=True)

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + (len(self.tail) if self.total > self.half else 0)

    def text(self) -> str:
        """What a report shows: the head, a note of what was left out, the tail."""
        if self.total <= self.half:
            return bytes(self.head).decode("utf-8", "replace")
        if not self.truncated:
            overlap = len(self.head) + len(self.tail) - self.total
            return (bytes(self.head) + bytes(self.tail[overlap:])).decode("utf-8", "replace")
        skipped = self.total - len(self.head) - len(self.tail)
        return (bytes(self.head).decode("utf-8", "replace")
                + f"\n[... {skipped} bytes not kept by sandboxcheck ...]\n"
                + bytes(self.tail).decode("utf-8", "replace"))

    def searchable(self) -> str:
        """The kept text plus every match found anywhere: what evidence is searched in."""
        self._flush()
        text = self.text()
        if self.matches and self.truncated:
            text += "\n" + "\n".join(m.decode("utf-8", "replace") for m in self.matches)
        return text


@dataclass(slots=True)
class LaunchResult:
    """What one launch gave: exit code, bounded output, and what it left behind."""

    returncode: int | None
    stdout: Capture
    stderr: Capture
    timed_out: bool
    duration: float
    error: str | None = None
    #: Processes of the launch still alive after its main process exited: (pid, command line).
    survivors: list[tuple[int, str]] = field(default_factory=list)
    #: How many processes the keeper had to kill at the end.
    killed: int = 0


class Keeper:
    """The harness's side of one launch: its control socket and the target's pid."""

    def __init__(self, ctl: socket.socket, keeper_pid: int) -> None:
        self.ctl = ctl
        self.keeper_pid = keeper_pid
        self.pid: int | None = None
        self.returncode: int | None = None
        self.ended = False
        self._replies: list[dict] = []  # type: ignore[type-arg]
        self._lock = threading.Lock()
        self._poll = select.poll()
        self._poll.register(ctl, select.POLLIN)
        #: A pidfd of the keeper: it can be killed without any risk of a reused pid.
        self._pidfd = -1
        #: Set by ``kill`` (the harness is stopping): whoever waits on the launch stops waiting.
        self.killed = False
        try:
            self._pidfd = os.pidfd_open(keeper_pid)
        except (OSError, AttributeError):
            pass

    def _read(self, timeout: float | None) -> bool:
        """Read one message into state; False when nothing came in time or the socket closed."""
        if timeout is not None and not self._poll.poll(max(0, int(timeout * 1000))):
            return False
        try:
            msg = self.ctl.recv(1 << 20)
        except OSError:
            msg = b""
        if not msg:
            self.ended = True
            if self.pid is not None and self.returncode is None:
                self.returncode = -9
            return False
        try:
            rec = json.loads(msg)
        except ValueError:
            return True
        if "pid" in rec:
            self.pid = int(rec["pid"])
        elif "exit" in rec:
            self.returncode = int(rec["exit"])
            if "ended" in rec:
                self._replies.append({"ended": rec["ended"]})  # it ended on its own: nothing was left
        else:
            self._replies.append(rec)
        return True

    def started(self, timeout: float = 10.0) -> int | None:
        """The target's pid, once the keeper started it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self.pid is None and not self.ended and self._read(deadline - time.monotonic()):
                pass
        return self.pid

    def poll(self) -> int | None:
        """The target's exit code, or None while it runs."""
        with self._lock:
            while self.returncode is None and not self.ended and self._read(0):
                pass
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the target to exit; its code, or None at the timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self.returncode is None and not self.ended:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._read(left)
        return self.returncode

    def _ask(self, what: bytes, key: str, timeout: float) -> dict | None:  # type: ignore[type-arg]
        deadline = time.monotonic() + timeout
        with self._lock:
            for rec in self._replies:
                if key in rec:
                    self._replies.remove(rec)
                    return rec
            if self.ended:
                return None
            try:
                self.ctl.send(what)
            except OSError:
                return None
            while not self.ended and time.monotonic() < deadline:
                for rec in self._replies:
                    if key in rec:
                        self._replies.remove(rec)
                        return rec
                del self._replies[:-8]  # a keeper that chatters cannot grow this
                self._read(deadline - time.monotonic())
        return None

    def survivors(self) -> list[tuple[int, str]]:
        """The launch's processes still alive: (pid, command line)."""
        rec = self._ask(b"survivors", "survivors", 5.0)
        return [(int(p), str(c)) for p, c in (rec or {}).get("survivors", [])]

    def end(self) -> int:
        """Kill and reap every process of the launch; how many there were. Idempotent.

        A keeper that does not answer in time (stopped, or busy) is killed by its
        pidfd: what it kept then falls to the launch server, a subreaper too,
        which ends every process that is not a keeper.
        """
        rec = self._ask(b"end", "ended", END_TIMEOUT)
        if rec is None:
            self._kill_keeper()
        self.close()
        return int((rec or {}).get("ended", 0))

    def _kill_keeper(self) -> None:
        if self._pidfd >= 0:
            try:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            except OSError:
                pass

    def kill(self) -> None:
        """Tell the keeper to end everything now (from any thread; never waits)."""
        self.killed = True
        try:
            self.ctl.send(b"end")
        except OSError:
            pass

    def close(self) -> None:
        """Drop the control socket (the keeper then ends everything on its own)."""
        with self._lock:
            self.ended = True
            try:
                self.ctl.close()
            except OSError:
                pass
            if self._pidfd >= 0:
                os.close(self._pidfd)
                self._pidfd = -1


def _read_into(sel: selectors.BaseSelector, fd: int, caps: dict[int, Capture]) -> None:
    """One read of a ready output pipe into its capture; at its end, stop watching it."""
    data = os.read(fd, 1 << 16)
    if data:
        caps[fd].feed(data)
    else:
        sel.unregister(fd)


class ForkServer:
    """A harness-owned launch server: one keeper per launch (see the module's docstring)."""

    def __init__(self, python: str, probes: Path) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [python, "-B", "-E", "-s", "-S", str(_SERVER), str(probes), str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), env={"PATH": DEFAULT_PATH}, stdin=subprocess.DEVNULL,
            # Its own process group (Ctrl-C is the harness's to handle) but the harness's
            # session: ``sweep_orphans`` tells the harness's own processes by their session.
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0)
        theirs.close()
        self.sock = ours
        self._lock = threading.Lock()
        self._server_poll = select.poll()
        self._server_poll.register(ours, select.POLLIN)

    def spawn(self, argv: Sequence[str], env: dict[str, str], cwd: Path, stdin: int, stdout: int,
              stderr: int, fork: bool = False, wait_started: bool = True,
              pass_fds: Mapping[int, int] | None = None) -> Keeper:
        """Start ``argv`` under a keeper; the descriptors are the target's stdio.

        ``pass_fds`` maps a number the target inherits to a descriptor of the harness's.
        """
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.set_inheritable(False)
        extra = sorted((pass_fds or {}).items())
        try:
            req = json.dumps({"argv": list(argv), "env": env, "cwd": str(cwd), "fork": fork,
                              "pass": [n for n, _ in extra]}).encode()
            with self._lock:
                socket.send_fds(self.sock, [req], [stdin, stdout, stderr, theirs.fileno(),
                                                   *(fd for _, fd in extra)])
                # The server is within reach of a leaky target (it may be stopped or
                # killed): never wait for it without a deadline.
                reply = self.sock.recv(4096) if self._server_poll.poll(int(SPAWN_TIMEOUT * 1000)) else None
                if reply is None:
                    self.proc.kill()  # our own child; a new one is started for the next launch
                    self.proc.wait()
                    raise OSError("the launch server did not answer (stopped by the code under test?)")
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        if not reply:
            ours.close()
            raise OSError("the launch server has gone")
        kpid = int(json.loads(reply)["keeper"])
        if kpid <= 0:
            ours.close()
            raise OSError("the launch server could not hand the launch to a keeper")
        keeper = Keeper(ours, kpid)
        if wait_started and keeper.started() is None:
            keeper._kill_keeper()
            keeper.close()
            raise OSError("the launch server could not start the target")
        return keeper

    def run(self, argv: Sequence[str], env: dict[str, str], cwd: Path, timeout: float,
            on_start: callable = None,  # type: ignore[valid-type]
            fork: bool = False, needles: Iterable[str] = (), want_survivors: bool | str = False,
            pass_fds: Mapping[int, int] | None = None) -> LaunchResult:
        """Run ``argv`` to its end or ``timeout``: bounded output, everything it started ended.

        ``pass_fds``: descriptors the target inherits (see ``spawn``)."""
        start = time.monotonic()
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # Not waiting for the start: the pump below reads the keeper's messages anyway.
            keeper = self.spawn(argv, env, cwd, null, out_w, err_w, fork=fork, wait_started=False,
                                pass_fds=pass_fds)
        except BaseException:
            for fd in (out_r, err_r):
                os.close(fd)
            raise
        finally:
            for fd in (out_w, err_w, null):
                os.close(fd)
        if on_start:
            on_start(keeper)
        needles = list(needles)
        caps = {out_r: Capture(needles), err_r: Capture(needles)}
        result = LaunchResult(None, caps[out_r], caps[err_r], False, 0.0)
        try:
            self._pump(keeper, caps, start + timeout, result)
            if keeper.returncode is not None and not result.timed_out and want_survivors:
                # A pid namespace torn down with its init still has members for a moment:
                # a survivor is one that is still there a little later.
                first = keeper.survivors()
                for step in range(10):  # 50 ms at most, less when the set settles sooner
                    if not first:
                        break
                    time.sleep(0.005)
                    again = dict(keeper.survivors())
                    result.survivors = [(p, again[p]) for p, _ in first if p in again]
                    if not result.survivors:
                        break  # all of them were on their way out
                    if step >= 3 and isinstance(want_survivors, str) and \
                            all(want_survivors in c for _, c in result.survivors):
                        break  # 20 ms on, every one carries the tag (exec'd by now) and lives on
            result.killed = keeper.end()
            # Everything of the launch is dead now: only what is already in the pipes is left.
            self._drain(caps, time.monotonic() + 1.0)
        except BaseException:
            keeper.end()
            raise
        finally:
            for fd in caps:
                os.close(fd)
        result.returncode = keeper.returncode
        result.duration = time.monotonic() - start
        return result

    @staticmethod
    def _pump(keeper: Keeper, caps: dict[int, Capture], deadline: float, result: LaunchResult) -> None:
        """Read output until the target exits or the deadline passes."""
        sel = selectors.DefaultSelector()
        try:
            for fd in caps:
                sel.register(fd, selectors.EVENT_READ)
            sel.register(keeper.ctl, selectors.EVENT_READ)
            while keeper.returncode is None and not keeper.ended:
                left = deadline - time.monotonic()
                if left <= 0 or keeper.killed:
                    result.timed_out = True
                    return
                for key, _ in sel.select(min(left, 0.25)):
                    if key.fileobj is keeper.ctl:
                        keeper.poll()
                        if keeper.ended:
                            sel.unregister(keeper.ctl)
                        continue
                    _read_into(sel, key.fd, caps)  # type: ignore[arg-type]
        finally:
            sel.close()

    @staticmethod
    def _drain(caps: dict[int, Capture], deadline: float) -> None:
        sel = selectors.DefaultSelector()
        try:
            for fd in caps:
                sel.register(fd, selectors.EVENT_READ)
            while sel.get_map():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                for key, _ in sel.select(left):
                    _read_into(sel, key.fd, caps)  # type: ignore[arg-type]
        finally:
            sel.close()

    def close(self) -> None:
        """Stop the server (it exits when its socket closes; keepers end when their sockets do)."""
        self.sock.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_LAUNCH = ["/bin/sh", "-c", '"$@"; exit $?', "sandboxcheck-launch"]


def _server_python() -> str:
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
