"""Known answers for the network matrix: srt's real proxies, old and new, and a leaky proxy of our own.

srt-net allows allowed.sandboxcheck.test and its subdomains, denies
denied.sandboxcheck.test; every name resolves to the harness's loopback sinks
inside the harness's own name space. srt 0.0.42 dials a SOCKS5 domain holding
a NUL byte up to the NUL (evil.sandboxcheck.test\\0.allowed.sandboxcheck.test
reaches evil.sandboxcheck.test); 0.0.43 rejects control characters in SOCKS5
host names. The leaky-proxy preset carries two flaws and must be named for
exactly those.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.model import Matrix, Observed, Status
from sandboxcheck.resources import resolve_matrix
from sandboxcheck.model import RunReport

from marks import requires_bwrap
from net_kit import run_or_skip

pytestmark = pytest.mark.integration
ALLOWED = {"network.allowed.http", "network.allowed.https", "network.allowed.wildcard", "network.socks.allowed",
           "network.relay.allowed"}


@pytest.fixture(scope="module")
def network() -> Matrix:
    return load_matrix(resolve_matrix("network"))


run = run_or_skip


def failed(report: RunReport) -> set[str]:
    bad = {r.id for r in report.results if r.status is Status.INCONCLUSIVE}
    assert bad == set(), {r.id: r.reason for r in report.results if r.id in bad}
    return {r.id for r in report.results if r.status is Status.FAIL}


@pytest.mark.parametrize("target", ["srt-net", "srt-net@latest", "srt-net@0.0.43"])
def test_srt_proxy_allows_the_allowed_and_refuses_everything_else(network: Matrix, target: str) -> None:
    report = run(network, target)
    assert failed(report) == set()
    results = {r.id: r for r in report.results}
    # The allowed host was reached through srt's proxy (a node process), not directly.
    assert "connected from a 'node' process" in results["network.allowed.http"].evidence[0]
    assert "TLS server name 'allowed.sandboxcheck.test'" in results["network.allowed.https"].evidence[0]
    assert results["network.bypass.direct"].errno == "ECONNREFUSED"


def test_srt_0_0_42_dials_a_socks_domain_up_to_its_nul_byte(network: Matrix) -> None:
    report = run(network, "srt-net@0.0.42")
    assert failed(report) == {"network.socks.nul-byte"}
    [evidence] = {r.id: r for r in report.results}["network.socks.nul-byte"].evidence
    # srt's proxy (node) dialled evil.sandboxcheck.test: the sink at the "other" address saw the canary.
    assert evidence.startswith("web sink at the harness's other address over http")
    assert "'node'" in evidence


def test_an_empty_allowlist_is_deny_all_in_srt(network: Matrix) -> None:
    # srt's defaults: allowedDomains [] (no settings file at all).
    report = run(network, "srt")
    assert failed(report) == ALLOWED
    assert all(r.observed is Observed.DENIED for r in report.results)


def test_the_leaky_proxy_is_named_for_exactly_its_two_flaws(network: Matrix) -> None:
    report = run(network, "leaky-proxy")
    assert failed(report) == {"network.name.suffix-edge", "network.socks.nul-byte"}
    results = {r.id: r for r in report.results}
    assert "other address" in results["network.name.suffix-edge"].evidence[0]


def test_a_proxy_that_filters_only_connect_is_caught_on_every_plain_request(network: Matrix, tmp_path: Path) -> None:
    target = tmp_path / "plain-http.yaml"
    target.write_text(
        "name: leaky-plain-http\ndescription: CONNECT and SOCKS5 filtered, plain HTTP not at all\n"
        'command: ["{python}", -B, -E, -s, -S, "{probes}/_leaky_proxy.py", --allow, allowed.sandboxcheck.test,\n'
        '          --deny, denied.sandboxcheck.test, --flaw, plain-http, --, "{cmd}"]\n')
    report = run(network, str(target))
    assert failed(report) == {"network.denied.http", "network.unlisted.http", "network.name.suffix-edge",
                              "network.name.case", "network.name.trailing-dot", "network.address.ip-literal",
                              "network.dns.via-proxy"}
    # The same names through CONNECT are refused.
    assert {r.id: r.status for r in report.results}["network.denied.https"] is Status.PASS


@requires_bwrap
def test_bwrap_loose_leaks_every_denied_check(network: Matrix) -> None:
    report = run(network, "bwrap-loose")
    assert failed(report) == {c.id for c in network.checks if c.expect == "denied"}
    results = {r.id: r for r in report.results}
    assert results["network.dns.resolver"].evidence == ("dns sink at the harness's dns address over dns "
                                                        "received the check's canary",)


def test_the_host_name_files_are_untouched_by_a_run(network: Matrix) -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap not installed")
    files = [Path(p) for p in ("/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf") if Path(p).exists()]
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    run(network, "bwrap-loose")
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files} == before
