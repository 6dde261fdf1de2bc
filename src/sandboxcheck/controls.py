"""Fast unsandboxed control runs through a fork server.

A control run shows that a probe's action works where nothing stops it. Each
one runs the same probe program with the same interpreter and no confinement,
like the ``none`` target, but forked from a pre-started interpreter instead of
a fresh one, which halves the cost of a run. Probes whose result depends on a
fresh process image (reading the parent's /proc environ) are not sent here.
"""
from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from .observers import kill_tree
from .targets import DEFAULT_PATH

#: Probes whose control must run as a fresh process (their parent matters).
EXEC_ONLY_PROBES: frozenset[str] = frozenset({"read_proc_environ"})

_SERVER = Path(__file__).with_name("_forkserver.py")


class ForkServer:
    """A harness-owned interpreter that forks one child per control run."""

    def __init__(self, python: str, probes: Path) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [python, "-B", "-E", "-s", "-S", str(_SERVER), str(probes), str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), env={"PATH": DEFAULT_PATH}, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        theirs.close()
        self.sock = ours
        self._lock = threading.Lock()

    def run(self, argv: Sequence[str], env: dict[str, str], cwd: Path, timeout: float,
            on_start: callable = None  # type: ignore[valid-type]
            ) -> tuple[int | None, str, str, bool]:
        """Run ``argv`` (a probe) in a forked child; returns (rc, stdout, stderr, timed_out)."""
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        st_r, st_w = os.pipe2(os.O_CLOEXEC)
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            req = json.dumps({"argv": list(argv), "env": env, "cwd": str(cwd)}).encode()
            with self._lock:
                socket.send_fds(self.sock, [req], [null, out_w, err_w, st_w])
                reply = self.sock.recv(4096)
        finally:
            for fd in (out_w, err_w, st_w, null):
                os.close(fd)
        if not reply:
            for fd in (out_r, err_r, st_r):
                os.close(fd)
            raise OSError("the control fork server has gone")
        pid = int(json.loads(reply)["pid"])
        if on_start:
            on_start(pid)
        chunks: dict[int, list[bytes]] = {out_r: [], err_r: [], st_r: []}
        sel = selectors.DefaultSelector()
        for fd in chunks:
            sel.register(fd, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        timed_out = False
        try:
            while sel.get_map():
                left = deadline - time.monotonic()
                if left <= 0 and not timed_out:
                    timed_out = True
                    if not chunks[st_r] and st_r in sel.get_map():
                        kill_tree(pid)  # still running: its status pipe is open
                    deadline = time.monotonic() + 2
                    continue
                if left <= 0:
                    break
                for key, _ in sel.select(left):
                    data = os.read(key.fd, 65536)  # type: ignore[arg-type]
                    if data:
                        chunks[key.fd].append(data)  # type: ignore[index]
                    else:
                        sel.unregister(key.fd)
        finally:
            sel.close()
            for fd in chunks:
                os.close(fd)
        status = b"".join(chunks[st_r]).decode() or None
        rc = int(status) if status and status.lstrip("-").isdigit() else -9
        return (rc, b"".join(chunks[out_r]).decode("utf-8", "replace"),
                b"".join(chunks[err_r]).decode("utf-8", "replace"), timed_out)

    def close(self) -> None:
        """Stop the server (it exits when its socket closes)."""
        self.sock.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            kill_tree(self.proc.pid)
            self.proc.wait()
