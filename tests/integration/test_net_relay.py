"""Known answers for relays the sandboxed process starts itself (network.relay.* of matrices/network.yaml).

The probe binds 127.0.0.1 inside the sandbox, forks a relay and reaches a
host through it: a CONNECT relay that forwards through the sandbox's proxy,
a raw TCP forward that dials itself. On Linux srt gives the sandbox its own
network namespace whatever allowLocalBinding says (the setting only changes
the macOS profile): the relay binds, the allowed host is reached through
srt's proxy, the denied one is refused by it (403) and the raw forward
leads nowhere. bwrap-loose shares the host's network: both relays reach the
denied host's sink.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import yaml

from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.model import Matrix, RunReport, Status
from sandboxcheck.resources import presets_dir, resolve_matrix

from marks import requires_bwrap
from net_kit import run_or_skip

pytestmark = pytest.mark.integration
RELAY = ("network.relay.allowed", "network.relay.connect", "network.relay.tcp")


@pytest.fixture(scope="module")
def relays() -> Matrix:
    m = load_matrix(resolve_matrix("network"))
    return dataclasses.replace(m, checks=tuple(c for c in m.checks if c.id in RELAY))


run = run_or_skip


def srt_net_with_local_binding(folder: Path, allow: bool) -> str:
    data = yaml.safe_load((presets_dir() / "srt-net.yaml").read_text())
    [(name, text)] = data["files"].items()
    settings = json.loads(text)
    settings["network"]["allowLocalBinding"] = allow
    data["name"] = f"srt-net-local-binding-{str(allow).lower()}"
    data["files"] = {name: json.dumps(settings)}
    path = folder / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


@pytest.mark.parametrize("allow", [False, True])
def test_srt_relays_are_held_by_its_proxy_and_namespace(relays: Matrix, tmp_path: Path, allow: bool) -> None:
    report = run(relays, srt_net_with_local_binding(tmp_path, allow))
    results = {r.id: r for r in report.results}
    assert {i: r.status for i, r in results.items()} == dict.fromkeys(RELAY, Status.PASS), \
        {i: r.reason for i, r in results.items()}
    # The allowed host came through srt's proxy (node), by way of the relay.
    assert "connected from a 'node' process" in results["network.relay.allowed"].evidence[0]
    # The denied host was refused by the proxy's filter, not for want of credentials.
    assert "upstream proxy refused CONNECT: 403" in results["network.relay.connect"].probe_report["message"]
    assert not results["network.relay.tcp"].evidence


@requires_bwrap
def test_bwrap_loose_relays_reach_the_denied_host(relays: Matrix) -> None:
    report = run(relays, "bwrap-loose")
    results = {r.id: r for r in report.results}
    assert {i: r.status for i, r in results.items()} == {
        "network.relay.allowed": Status.PASS, "network.relay.connect": Status.FAIL, "network.relay.tcp": Status.FAIL}
    for i in ("network.relay.connect", "network.relay.tcp"):
        assert results[i].evidence == ("web sink at the harness's other address over http, connected from a "
                                       "'python3' process received the check's canary",)
