"""The http_get probe picks proxies from the environment as curl does; the sinks show what it sent."""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxcheck.model import ProbeReport
from sandboxcheck.network.contain import http_get_problems
from sandboxcheck.network.sinks import NetHit, ProtocolSinks
from sandboxcheck.resources import probes_dir
from sandboxcheck.probes import parse_probe_line

A, B = "127.0.98.1", "127.0.98.2"


@pytest.fixture()
def sinks(tmp_path: Path) -> Iterator[ProtocolSinks]:
    s = ProtocolSinks({"allowed": A, "other": B}, tmp_path)
    try:
        yield s
    finally:
        s.close()


def get(env: dict[str, str], *argv: str) -> ProbeReport:
    proc = subprocess.run(["/usr/bin/python3", "-B", "-E", "-s", "-S", str(probes_dir() / "http_get.py"), *argv],
                          capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin", **env})
    assert proc.returncode == 0, proc.stderr
    rep = parse_probe_line(proc.stdout)
    assert rep is not None, proc.stdout
    return rep


def one(sinks: ProtocolSinks, token: str) -> NetHit:
    sinks.settle()
    [hit] = sinks.hits(token)
    return hit


def test_http_uses_lower_case_http_proxy_in_absolute_form(sinks: ProtocolSinks) -> None:
    p = sinks.web_port
    rep = get({"http_proxy": f"http://user:pw@{B}:{p}"}, "--url", f"http://allowed.sandboxcheck.test:{p}/tok-abs")
    assert rep.ok and rep.data["route"] == f"http proxy {B}:{p}"
    hit = one(sinks, "tok-abs")
    assert hit.role == "other" and hit.data.startswith(f"GET http://allowed.sandboxcheck.test:{p}/tok-abs ".encode())
    assert b"Proxy-Authorization: Basic dXNlcjpwdw==" in hit.data


def test_upper_case_http_proxy_is_ignored_for_http_as_curl_does(sinks: ProtocolSinks) -> None:
    p = sinks.web_port
    rep = get({"HTTP_PROXY": f"http://{B}:{p}"}, "--url", f"http://{A}:{p}/tok-upper")
    assert rep.data["route"] == "direct"
    assert one(sinks, "tok-upper").role == "allowed"


def test_https_goes_through_connect(sinks: ProtocolSinks) -> None:
    if sinks.cert is None:
        pytest.skip("openssl not installed")
    p = sinks.web_port
    rep = get({"HTTPS_PROXY": f"http://{B}:{p}"}, "--url", f"https://allowed.sandboxcheck.test:{p}/tok-conn")
    assert rep.ok
    hit = one(sinks, "tok-conn")
    assert hit.layers == ("connect", "tls", "http") and hit.connect_target == f"allowed.sandboxcheck.test:{p}"
    assert hit.sni == "allowed.sandboxcheck.test"


@pytest.mark.parametrize("no_proxy", ["127.0.98.0/24", "127.0.98.1", "*", ".0.98.1"])
def test_no_proxy_exempts_matching_hosts(sinks: ProtocolSinks, no_proxy: str) -> None:
    p = sinks.web_port
    env = {"http_proxy": f"http://{B}:{p}", "no_proxy": no_proxy}
    rep = get(env, "--url", f"http://{A}:{p}/tok-np")
    expected = "proxy" if no_proxy == ".0.98.1" else "direct"  # a domain suffix never matches an IP's digits
    assert expected in rep.data["route"]


def test_no_proxy_matches_domains_at_a_label_boundary() -> None:
    # Checked without any connection: the probe's route for a name it cannot reach is still reported.
    env = {"http_proxy": "http://127.0.98.3:9", "no_proxy": "allowed.sandboxcheck.test"}
    assert get(env, "--url", "http://www.allowed.sandboxcheck.test:9/").data["route"] == "direct"
    assert get(env, "--url", "http://evilallowed.sandboxcheck.test:9/").data["route"] == "http proxy 127.0.98.3:9"


def test_direct_ignores_every_proxy_variable(sinks: ProtocolSinks) -> None:
    p = sinks.web_port
    env = {"http_proxy": f"http://{B}:{p}", "ALL_PROXY": f"socks5h://{B}:{p}"}
    rep = get(env, "--url", f"http://{A}:{p}/tok-direct", "--via", "direct")
    assert rep.data["route"] == "direct" and one(sinks, "tok-direct").role == "allowed"


def test_socks_from_the_environment_sends_the_name_and_a_nul_byte_as_given(sinks: ProtocolSinks) -> None:
    p = sinks.web_port
    env = {"FTP_PROXY": f"socks5h://srt.user:secret@{B}:{p}", "ALL_PROXY": f"http://{B}:1"}
    rep = get(env, "--url", f"http://allowed.sandboxcheck.test:{p}/tok-socks", "--via", "socks",
              "--socks-name", "evil.sandboxcheck.test%00.allowed.sandboxcheck.test")
    assert rep.ok and rep.data["route"] == f"socks5h proxy {B}:{p}"
    hit = one(sinks, "tok-socks")
    assert hit.socks_destination == f"evil.sandboxcheck.test\0.allowed.sandboxcheck.test:{p}".encode()


def test_socks_without_a_proxy_or_fallback_is_a_precondition_not_a_denial() -> None:
    rep = get({}, "--url", "http://allowed.sandboxcheck.test:9/", "--via", "socks")
    assert (rep.attempted, rep.precondition) == (False, "a SOCKS5 proxy named by the environment")


def test_socks_falls_back_to_the_named_server(sinks: ProtocolSinks) -> None:
    p = sinks.web_port
    rep = get({}, "--url", f"http://allowed.sandboxcheck.test:{p}/tok-fb", "--via", "socks",
              "--socks-fallback", f"socks5h://{B}:{p}")
    assert rep.ok and one(sinks, "tok-fb").layers == ("socks", "http")


def test_matrix_containment_keeps_urls_on_harness_names() -> None:
    ok = {"url": "http://allowed.sandboxcheck.test:{net_port}/{token}", "via": "socks",
          "socks-fallback": "socks5h://other.sandboxcheck.test:{net_port}",
          "socks-name": "evil.sandboxcheck.test%00.allowed.sandboxcheck.test"}
    assert http_get_problems(ok) == []
    assert http_get_problems({"url": "http://{net_other_ip}:{net_port}/{token}"}) == []
    assert http_get_problems({"url": "http://[::1]:{net_port}/"}) == []
    assert http_get_problems({"url": "http://{token}.exfil.sandboxcheck.test:{net_port}/"}) == []
    bad = [{"url": "http://example.com/"}, {"url": "http://10.0.0.1/"}, {"url": "https://sandboxcheck.test.evil.com/"},
           {"url": "http://allowed.sandboxcheck.test/", "proxy": "http://127.0.0.1:3128"},
           {"url": "http://allowed.sandboxcheck.test/", "socks-name": "evil.com%00.allowed.sandboxcheck.test"},
           {"url": "not a url"}]
    for args in bad:
        assert http_get_problems(args), args


@pytest.fixture()
def refusing_proxy() -> Iterator[int]:
    """A proxy that answers 403 for itself to every request (as srt's does for a host it does not allow)."""
    import socket
    import threading

    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(10)

    def serve() -> None:
        for _ in range(2):
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield srv.getsockname()[1]
    finally:
        srv.close()
        thread.join(10)


def test_a_proxy_refusing_for_itself_reads_proxy_refused(refusing_proxy: int) -> None:
    env = {"http_proxy": f"http://127.0.0.1:{refusing_proxy}", "https_proxy": f"http://127.0.0.1:{refusing_proxy}"}
    plain = get(env, "--url", "http://egress.sandboxcheck.test:9/tok")
    assert (plain.ok, plain.errno, plain.data["status"]) == (False, "PROXY_REFUSED", 403)
    tunnel = get(env, "--url", "https://egress.sandboxcheck.test:9/tok")
    assert (tunnel.ok, tunnel.errno) == (False, "PROXY_REFUSED") and "refused CONNECT: 403" in tunnel.message
