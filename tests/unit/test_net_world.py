"""The harness's own name space: names resolve to its sinks inside the wrapper, the host's files never change."""
from __future__ import annotations

import hashlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxcheck.network.world import NetworkUnavailable, OwnedNetwork

HOST_FILES = ("/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf")


def digests() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in HOST_FILES:
        try:
            out[name] = hashlib.sha256(Path(name).read_bytes()).hexdigest()
        except OSError:
            out[name] = None
    return out


@pytest.fixture()
def net() -> Iterator[OwnedNetwork]:
    try:
        n = OwnedNetwork()
    except NetworkUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield n
    finally:
        n.close()


def inside(net: OwnedNetwork, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(net.wrap(["/bin/sh", "-c", script]), capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin"})


def test_names_resolve_to_the_sinks_inside_and_the_host_files_stay_byte_identical() -> None:
    before = digests()
    try:
        net = OwnedNetwork()
    except NetworkUnavailable as exc:
        pytest.skip(str(exc))
    try:
        done = inside(net, "getent hosts allowed.sandboxcheck.test; getent hosts www.allowed.sandboxcheck.test; "
                           "getent hosts denied.sandboxcheck.test; cat /etc/resolv.conf")
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0].split()[0] == net.allowed_ip and lines[1].split()[0] == net.allowed_ip
        assert lines[2].split()[0] == net.other_ip
        assert f"nameserver {net.dns_ip}" in done.stdout
        # Outside the wrapper the names mean nothing, and the host's files are as they were.
        outside = subprocess.run(["getent", "hosts", "allowed.sandboxcheck.test"], capture_output=True, timeout=30)
        assert net.allowed_ip.encode() not in outside.stdout
        assert digests() == before
        folder = net.folder
    finally:
        net.close()
    assert digests() == before
    assert not folder.exists()


def test_unlisted_names_go_to_the_harness_dns_sink_never_the_hosts_resolver(net: OwnedNetwork) -> None:
    if net.sinks.dns_address is None:
        pytest.skip(net.sinks.dns_problem or "no DNS sink")
    done = inside(net, "getent ahostsv4 tok-world.exfil.sandboxcheck.test; echo rc=$?; "
                       "getent hosts tok-world.sandboxcheck-example.invalid; echo rc=$?")
    assert f"{net.other_ip}" in done.stdout  # answered by the DNS sink (not in the hosts file)
    assert "rc=2" in done.stdout  # NXDOMAIN for a name outside the test domain
    hits = net.hits("tok-world", "resolver")
    names = {h.data for h in hits}
    assert b"tok-world.exfil.sandboxcheck.test" in names
    assert b"tok-world.sandboxcheck-example.invalid" in names


def test_a_failed_bind_stops_the_command_before_it_starts(net: OwnedNetwork) -> None:
    (net.folder / "resolv.conf").unlink()
    done = inside(net, "echo STARTED")
    assert done.returncode != 0 and "STARTED" not in done.stdout


def test_web_sinks_listen_on_every_harness_address(net: OwnedNetwork) -> None:
    for addr in (net.allowed_ip, net.other_ip):
        with socket.create_connection((addr, net.sinks.web_port), timeout=3) as c:
            c.sendall(b"GET /tok-addr HTTP/1.1\r\nHost: x\r\n\r\n")
            assert c.recv(100).startswith(b"HTTP/1.1 200")
    assert {h.role for h in net.hits("tok-addr", "web")} == {"allowed", "other"}
    values = net.values()
    assert values["net_port"] == str(net.sinks.web_port) and values["net_domain"] == "sandboxcheck.test"


def test_close_frees_the_ports() -> None:
    try:
        net = OwnedNetwork()
    except NetworkUnavailable as exc:
        pytest.skip(str(exc))
    addr, port = net.allowed_ip, net.sinks.web_port
    net.close()
    with pytest.raises(OSError):
        socket.create_connection((addr, port), timeout=2).close()


def test_a_check_the_network_cannot_observe_says_why(net: OwnedNetwork) -> None:
    assert net.cannot_observe("web", ["http://allowed.sandboxcheck.test:1/"]) is None
    net.sinks.dns_address, net.sinks.dns_problem = None, "the DNS sink cannot listen on 127.1.2.53:53 (denied)"
    assert net.cannot_observe("resolver", []) == "the DNS sink cannot listen on 127.1.2.53:53 (denied)"
    net.sinks.cert = None
    assert "openssl" in (net.cannot_observe("web", ["https://allowed.sandboxcheck.test:1/"]) or "")
