"""The host facts as reports show them (one line, flat properties), and the user-namespace test."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pytest

from sandboxcheck import __version__, hostfacts
from sandboxcheck.hostfacts import (anonymised, facts_line, flat_facts, host_facts, host_line, short_digest,
                                    user_namespaces)
from sandboxcheck.targets.tools import landlock_abi

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.fixture(scope="module")
def facts() -> dict:
    return host_facts()


def test_facts_line_names_what_makes_hosts_differ(facts: dict) -> None:
    line = facts_line(facts)
    osr = facts["os"]
    assert line.startswith((osr.get("pretty_name") or osr.get("id") or "unknown OS") + ", ")
    assert f"kernel {os.uname().release}, {os.uname().machine}, Landlock ABI {landlock_abi()}, " in line
    assert ("userns yes" if facts["user_namespaces"]["available"] else "userns no") in line
    assert line.endswith(("root" if os.geteuid() == 0 else "not root") + f", sandboxcheck {__version__}")
    assert facts_line({}) == ("unknown OS, kernel ?, ?, Landlock ABI ?, userns no, not root, sandboxcheck ?")


def test_short_digest_keeps_the_algorithm_and_twelve_hex_digits() -> None:
    assert short_digest(DIGEST) == "sha256:0123456789ab"
    assert short_digest(None) == "?" and short_digest("") == "?"


def test_host_line_names_the_host_or_only_its_id(facts: dict) -> None:
    named = host_line(facts, DIGEST)
    assert named == f"host {facts['name']}: {facts_line(facts)}; matrix sha256:0123456789ab"
    anon = anonymised(facts)
    line = host_line(anon, DIGEST)
    assert line.startswith(f"host {anon['id']}: ") and facts["name"] not in line.split(":")[0]
    assert host_line({**anon, "label": "ubuntu-24.04"}, DIGEST).startswith(f"host ubuntu-24.04 ({anon['id']}): ")
    assert host_line(None, DIGEST) == "host: unknown; matrix sha256:0123456789ab"


def test_flat_facts_are_dotted_text_pairs(facts: dict) -> None:
    pairs = flat_facts(facts, DIGEST)
    flat = dict(pairs)
    assert len(flat) == len(pairs)  # no name twice
    assert flat["host.kernel"] == os.uname().release and flat["host.name"] == facts["name"]
    assert flat["host.user_namespaces.available"] in ("true", "false")
    assert flat["host.root"] == ("true" if os.geteuid() == 0 else "false")
    assert flat["host.tools"] == ", ".join(facts["tools"]) and flat["matrix.digest"] == DIGEST
    assert all(isinstance(v, str) for v in flat.values())
    unknown = [k for k, v in facts["user_namespaces"].items() if v is None]
    assert not any(f"host.user_namespaces.{k}" in flat for k in unknown)  # unknown values left out
    assert flat_facts(None, None) == []


def _probe_in_userns(limit: bool) -> str:
    """The answer of the user-namespace test run in a user namespace of its own, whose
    max_user_namespaces is set to 0 when ``limit`` (the kernel then refuses any new one)."""
    code = "from sandboxcheck.hostfacts import _can_unshare_user as f; print(f())"
    script = ("echo 0 > /proc/sys/user/max_user_namespaces && " if limit else "") + 'exec "$@"'
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c", script, "sh",
                           sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare(1) not installed (util-linux)")
def test_user_namespace_test_answers_as_the_kernel_does(monkeypatch: pytest.MonkeyPatch) -> None:
    oracle = subprocess.run(["unshare", "--user", "true"], capture_output=True, timeout=30).returncode == 0
    hostfacts._can_unshare_user.cache_clear()

    def no_fork() -> int:
        raise AssertionError("os.fork() in a process that may have threads")

    monkeypatch.setattr(os, "fork", no_fork)
    try:
        start = time.monotonic()
        assert user_namespaces()["available"] is oracle
        assert time.monotonic() - start < 5
    finally:
        hostfacts._can_unshare_user.cache_clear()
    if not oracle:
        pytest.skip("no user namespaces here: the limited and unlimited cases cannot be told apart")
    assert _probe_in_userns(limit=False) == "True"
    assert _probe_in_userns(limit=True) == "False"
