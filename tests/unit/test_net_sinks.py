"""The protocol sinks record what reached them, layer by layer, driven by real clients (curl, sockets)."""
from __future__ import annotations

import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxcheck.network.sinks import SINK_BODY, ProtocolSinks, client_hello_sni, dns_answer, parse_query

A, B = "127.0.99.1", "127.0.99.2"
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed: apt-get install curl")


@pytest.fixture()
def sinks(tmp_path: Path) -> Iterator[ProtocolSinks]:
    names = {"allowed.sandboxcheck.test": A}
    s = ProtocolSinks({"allowed": A, "other": B}, tmp_path, dns="127.0.99.53", resolve=names.get)
    try:
        yield s
    finally:
        s.close()


def curl(*args: str, proxy: str = "") -> subprocess.CompletedProcess[str]:
    how = ["-x", proxy] if proxy else ["--noproxy", "*"]
    return subprocess.run(["curl", "-sS", "--max-time", "10", *how, *args],
                          capture_output=True, text=True, timeout=30, env={"PATH": "/usr/bin:/bin"})


def resolve_to(addr: str, port: int) -> list[str]:
    # curl's --resolve: the name maps to the sink's address without any resolver.
    return ["--resolve", f"allowed.sandboxcheck.test:{port}:{addr}", "--resolve", f"evil.sandboxcheck.test:{port}:{addr}"]


@needs_curl
def test_plain_http_request_is_recorded_with_its_address(sinks: ProtocolSinks) -> None:
    p = sinks.web_port
    done = curl(*resolve_to(B, p), f"http://evil.sandboxcheck.test:{p}/tok-plain")
    assert done.stdout.encode() == SINK_BODY
    sinks.settle()
    [hit] = sinks.hits("tok-plain")
    assert (hit.sink, hit.role, hit.layers) == ("web", "other", ("http",))
    assert hit.data.startswith(b"GET /tok-plain HTTP/1.1") and b"Host: evil.sandboxcheck.test" in hit.data
    assert sinks.hits("tok-absent") == []


@needs_curl
def test_tls_records_the_server_name_and_the_request_inside(sinks: ProtocolSinks) -> None:
    if sinks.cert is None:
        pytest.skip("openssl not installed: apt-get install openssl")
    p = sinks.web_port
    done = curl("-k", *resolve_to(A, p), f"https://allowed.sandboxcheck.test:{p}/tok-tls")
    assert done.stdout.encode() == SINK_BODY, done.stderr
    sinks.settle()
    [hit] = sinks.hits("tok-tls")
    assert hit.layers == ("tls", "http") and hit.sni == "allowed.sandboxcheck.test" and hit.role == "allowed"


@needs_curl
def test_a_client_refusing_the_certificate_still_leaves_its_server_name(sinks: ProtocolSinks) -> None:
    p = sinks.web_port
    done = curl(*resolve_to(A, p), f"https://allowed.sandboxcheck.test:{p}/")  # verifies: refuses self-signed
    assert done.returncode != 0
    sinks.settle()
    [hit] = [h for h in sinks.hits("allowed.sandboxcheck.test") if h.sni]
    assert hit.layers == ("tls",) and hit.data == b""


@needs_curl
def test_connect_tunnel_records_its_target_then_the_tunnelled_layers(sinks: ProtocolSinks) -> None:
    p = sinks.web_port
    # The sink as the proxy: curl sends CONNECT, then TLS through the tunnel.
    done = curl("-k", f"https://allowed.sandboxcheck.test:{p}/tok-connect", proxy=f"http://{A}:{p}")
    assert done.stdout.encode() == SINK_BODY, done.stderr
    sinks.settle()
    [hit] = sinks.hits("tok-connect")
    assert hit.layers == ("connect", "tls", "http")
    assert hit.connect_target == f"allowed.sandboxcheck.test:{p}"
    assert hit.sni == "allowed.sandboxcheck.test"


def _socks_request(port: int, dest: bytes, payload: bytes) -> bytes:
    with socket.create_connection((A, port), timeout=5) as c:
        c.sendall(b"\x05\x01\x00")
        assert c.recv(2) == b"\x05\x00"
        c.sendall(b"\x05\x01\x00\x03" + bytes([len(dest)]) + dest + struct.pack(">H", 80))
        assert c.recv(10)[:2] == b"\x05\x00"
        c.sendall(payload)
        return c.recv(4096)


def test_socks5_domain_is_kept_byte_for_byte_with_a_nul(sinks: ProtocolSinks) -> None:
    dest = b"evil.sandboxcheck.test\x00.allowed.sandboxcheck.test"
    answer = _socks_request(sinks.web_port, dest, b"GET /tok-socks HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")
    sinks.settle()
    [hit] = sinks.hits("tok-socks")
    assert hit.layers == ("socks", "http")
    assert hit.socks_destination == dest + b":80"
    assert "'evil.sandboxcheck.test\\\\x00.allowed.sandboxcheck.test'" in hit.describe()
    assert ":80" not in hit.describe()  # no port in report text: runs compare


@needs_curl
def test_socks5h_through_curl_sends_the_domain(sinks: ProtocolSinks) -> None:
    p = sinks.web_port
    done = curl(f"http://allowed.sandboxcheck.test:{p}/tok-curl-socks", proxy=f"socks5h://{A}:{p}")
    assert done.stdout.encode() == SINK_BODY, done.stderr
    sinks.settle()
    [hit] = sinks.hits("tok-curl-socks")
    assert hit.socks_destination == f"allowed.sandboxcheck.test:{p}".encode()


def _query(name: str, qtype: int = 1) -> bytes:
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", qtype, 1)


def test_dns_logs_the_query_name_and_answers_harness_names(sinks: ProtocolSinks) -> None:
    if sinks.dns_address is None:
        pytest.skip(sinks.dns_problem or "no DNS sink")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(_query("allowed.sandboxcheck.test"), (sinks.dns_address, 53))
        known = s.recv(512)
        s.sendto(_query("tok-dns.exfil.example"), (sinks.dns_address, 53))
        unknown = s.recv(512)
    assert known[:2] == b"\x12\x34" and known[-4:] == socket.inet_aton(A)
    assert struct.unpack(">H", unknown[2:4])[0] & 0xF == 3  # NXDOMAIN: nothing else is answered
    [hit] = sinks.hits("tok-dns")
    assert (hit.sink, hit.data) == ("dns", b"tok-dns.exfil.example")


def test_forget_drops_a_tokens_hits(sinks: ProtocolSinks) -> None:
    _socks_request(sinks.web_port, b"x.sandboxcheck.test", b"GET /tok-forget HTTP/1.1\r\n\r\n")
    sinks.settle()
    assert sinks.hits("tok-forget")
    sinks.forget("tok-forget")
    assert sinks.hits("tok-forget") == []


def test_client_hello_parser_and_dns_helpers() -> None:
    import ssl

    # A real ClientHello from the ssl module, captured off a socket pair.
    a, b = socket.socketpair()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname="www.allowed.sandboxcheck.test")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    assert client_hello_sni(out.read()) == "www.allowed.sandboxcheck.test"
    assert client_hello_sni(b"\x16\x03\x01\x00") is None
    a.close()
    b.close()
    q = _query("Mixed.Case.sandboxcheck.test", qtype=28)
    name, qtype, end = parse_query(q)
    assert (name, qtype, end) == ("Mixed.Case.sandboxcheck.test", 28, len(q))
    # A known name asked for AAAA: NOERROR, no record (so clients fall back to A).
    assert struct.unpack(">HH", dns_answer(q, end, qtype, A)[2:6]) == (0x8180, 1)


def test_a_client_hello_split_across_segments_still_yields_its_server_name(sinks: ProtocolSinks) -> None:
    import ssl
    import time

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname="split.sandboxcheck.test")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    with socket.create_connection((A, sinks.web_port), timeout=5) as c:
        c.sendall(hello[:3])
        time.sleep(0.2)
        c.sendall(hello[3:40])
        time.sleep(0.2)
        c.sendall(hello[40:])
        time.sleep(0.2)
    sinks.settle()
    [hit] = [h for h in sinks.hits("split.sandboxcheck.test")]
    assert hit.sni == "split.sandboxcheck.test" and hit.layers[0] == "tls"
