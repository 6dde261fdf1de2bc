"""Processes seen from outside: the signal witness, survivors, and ending a process tree."""
from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import psutil
from .files import _WITNESS



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
