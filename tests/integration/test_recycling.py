"""Recycled roots: nothing of one check reaches the next.

A used root is renamed, reset and rewritten with a new token for a later
check (``runner._Roots``); these tests put a check's leftovers in its way.
"""
from __future__ import annotations

import socket
import time

import psutil
import pytest

from sandboxcheck.model import Check, EvidenceSpec
from sandboxcheck.run.harness import Harness
from sandboxcheck.run.options import RunOptions
from sandboxcheck.targets.registry import load_target

pytestmark = pytest.mark.integration


def running(needle: str) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["cmdline"]) if needle in " ".join(p.info["cmdline"] or [])]


def test_a_sink_socket_replaced_by_a_check_listens_again_after_recycling() -> None:
    with Harness(RunOptions(jobs=1)) as h:
        roots = h.roots
        root = roots.take()
        sock = root.run / "docker.sock"
        sock.unlink()  # the check removes the harness's socket and binds one of its own
        own = socket.socket(socket.AF_UNIX)
        own.bind(str(sock))
        own.listen(1)
        stray = socket.socket(socket.AF_UNIX)
        stray.bind(str(root.run / "left-behind.sock"))
        try:
            fresh = roots._recycle(root)
            assert fresh is not None and fresh.path != root.path
            assert not (fresh.run / "left-behind.sock").exists()
            h.sinks.watch(fresh.token)  # as an execution does: sinks keep only a running check's data
            c = socket.socket(socket.AF_UNIX)
            c.connect(str(fresh.run / "docker.sock"))
            c.sendall(f"ping {fresh.token}".encode())
            c.close()
            h.sinks.sync()
            assert [hit.sink for hit in h.sinks.hits(fresh.token)] == ["docker"]
            # The ssh-agent sink was never touched: it moved with the root and still listens.
            c = socket.socket(socket.AF_UNIX)
            c.connect(str(fresh.run / "ssh-agent.sock"))
            c.sendall(f"ping {fresh.token}".encode())
            c.close()
            h.sinks.sync()
            assert sorted(hit.sink for hit in h.sinks.hits(fresh.token)) == ["docker", "ssh-agent"]
            roots.discard(fresh)
        finally:
            own.close()
            stray.close()


def test_a_background_child_of_the_target_is_gone_before_the_root_is_reused() -> None:
    marker = "27.7182"
    # The target leaves a sleeper in its process group (no setsid) and then runs the probe.
    target = load_target(f"/bin/sh -c '(sleep {marker} </dev/null >/dev/null 2>&1 &); exec \"$@\"' sh {{cmd}}")
    check = Check(id="exec.interpreter", category="exec", title="run the interpreter", probe="hello",
                  args=(("left", "A"), ("right", "{token}")), expect="allowed",
                  evidence=EvidenceSpec(kind="marker", marker="A-{token}"))
    with Harness(RunOptions(jobs=1, preflight=False)) as h:
        ex = h.execute(check, target)
        assert ex.effect, ex
        deadline = time.monotonic() + 3
        while running(f"sleep {marker}") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not running(f"sleep {marker}")
