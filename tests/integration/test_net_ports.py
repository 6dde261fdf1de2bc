"""Known answers for ports on an allowed host (matrices/network-ports.yaml, preset srt-net-ports).

srt-net-ports scopes every allowed entry to the web sink's port
(``allowed.sandboxcheck.test:PORT``); the same sinks listen on a second port.
srt reads host:port entries from 0.0.68 and refuses the second port on every
path (plain HTTP, CONNECT, SOCKS5). Earlier releases reject a domain holding
a ':' and with it the whole file ("Invalid configuration"): 0.0.64 and 0.0.67
then refuse to run (every check inconclusive, never a pass); 0.0.43 and
0.0.52 fall back silently to srt's defaults (allowedDomains [], deny-all), so
the allowed host is refused on its declared port too.
"""
from __future__ import annotations

import pytest

from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.model import Matrix, RunReport, Status
from sandboxcheck.resources import resolve_matrix
from net_kit import run_or_skip

pytestmark = pytest.mark.integration
DECLARED = {"network.port.declared.http", "network.port.declared.https"}


@pytest.fixture(scope="module")
def ports() -> Matrix:
    return load_matrix(resolve_matrix("network-ports"))


run = run_or_skip


def statuses(report: RunReport) -> dict[str, Status]:
    return {r.id: r.status for r in report.results}


@pytest.mark.parametrize("target", ["srt-net-ports", "srt-net-ports@0.0.76", "srt-net-ports@latest"])
def test_srt_allows_the_declared_port_only(ports: Matrix, target: str) -> None:
    report = run(ports, target)
    assert set(statuses(report).values()) == {Status.PASS}, {r.id: r.reason for r in report.results}
    results = {r.id: r for r in report.results}
    assert "connected from a 'node' process" in results["network.port.declared.http"].evidence[0]
    # The second port has the same sink: nothing reached it.
    assert all(not results[i].evidence for i in results if i.startswith("network.port.other."))


@pytest.mark.parametrize("version", ["0.0.64", "0.0.67"])
def test_srt_before_0_0_68_refuses_to_run_a_settings_file_with_ports(ports: Matrix, version: str) -> None:
    report = run(ports, f"srt-net-ports@{version}")
    assert set(statuses(report).values()) == {Status.INCONCLUSIVE}
    assert all("Invalid configuration" in r.reason for r in report.results)


@pytest.mark.parametrize("version", ["0.0.43", "0.0.52"])
def test_older_srt_drops_a_settings_file_with_ports_for_its_defaults(ports: Matrix, version: str) -> None:
    report = run(ports, f"srt-net-ports@{version}")
    got = statuses(report)
    assert {i for i, s in got.items() if s is Status.FAIL} == DECLARED
    assert {i for i, s in got.items() if s is Status.PASS} == set(got) - DECLARED


def test_an_entry_without_a_port_opens_every_port(ports: Matrix) -> None:
    # srt-net names the allowed hosts without a port: srt lets them through on any port.
    report = run(ports, "srt-net")
    got = statuses(report)
    assert {i for i, s in got.items() if s is Status.FAIL} == set(got) - DECLARED
    assert "'node'" in {r.id: r for r in report.results}["network.port.other.http"].evidence[0]
