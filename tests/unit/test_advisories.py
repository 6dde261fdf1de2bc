"""The advisory loader (problems with file and line) and the replay verdicts, with a fake evaluator."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from sandboxcheck import advisories as adv
from sandboxcheck.advisories import (COULD_NOT_RUN, NOT_REPRODUCED, REPRODUCED, Advisory, AdvisoryError, Evaluator,
                                     Runs, judge, load_advisory, load_corpus)
from sandboxcheck.validate import validate_file

GOOD = """\
id: CVE-2025-66479
title: Empty allowedDomains meant no network namespace
url: https://github.com/advisories/GHSA-9gqj-5w7c-vx47
target: srt-settings
vulnerable: "0.0.15"
fixed: "0.0.16"
settings: {network: {allowedDomains: []}}
matrix: baseline
checks: [network.tcp]
"""


def write(tmp_path: Path, text: str, name: str = "adv.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def messages(exc: pytest.ExceptionInfo[AdvisoryError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


# --- loader ----------------------------------------------------------------

def test_a_good_file_loads_into_a_frozen_advisory(tmp_path: Path) -> None:
    a = load_advisory(write(tmp_path, GOOD))
    assert (a.id, a.target, a.vulnerable, a.fixed, a.checks) == (
        "CVE-2025-66479", "srt-settings", "0.0.15", "0.0.16", ("network.tcp",))
    assert a.settings == {"network": {"allowedDomains": []}}
    assert a.matrix_ref().endswith("matrices/baseline.yaml")
    with pytest.raises(AttributeError):
        a.id = "x"  # type: ignore[misc]


def test_every_problem_is_reported_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("CVE-2025-66479", "CVE-25")
                 .replace("target: srt-settings", "target: srt-setings")
                 .replace('fixed: "0.0.16"', 'fixed: "0.0.14"')
                 .replace("settings: {", "setings: {")
                 .replace("[network.tcp]", "[network.tpc]"))
    with pytest.raises(AdvisoryError) as exc:
        load_advisory(path)
    assert messages(exc) == [
        f"{path}:1: id: 'CVE-25' is not a CVE id (CVE-2025-66479), a GHSA id or an http(s) address",
        f"{path}:4: target: 'srt-setings' is not a pinnable preset (did you mean 'srt-settings'?)",
        f"{path}:6: fixed: 0.0.14 is not newer than the vulnerable 0.0.15",
        f"{path}:7: unknown key 'setings' (did you mean 'settings'?)",
        f"{path}:9: checks[0]: no check 'network.tpc' in matrix 'baseline' (did you mean 'network.tcp'?)",
    ]


def test_missing_keys_and_wrong_types(tmp_path: Path) -> None:
    path = write(tmp_path, "id: CVE-2025-66479\ntitle: 3\nvulnerable: 0.1\nchecks: []\n")
    with pytest.raises(AdvisoryError) as exc:
        load_advisory(path)
    got = messages(exc)
    for key in ("url", "target", "fixed", "matrix"):
        assert f"{path}:1: missing required key {key!r}" in got
    assert f"{path}:2: title: must be a non-empty text, not 3" in got
    assert f"{path}:3: vulnerable: must be a non-empty text, not 0.1" in got
    assert f"{path}:4: checks: must be a non-empty list of check ids" in got


def test_an_unknown_check_or_matrix_gets_a_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("[network.tcp]", "[network.tcp, env.proc-2]"))
    with pytest.raises(AdvisoryError) as exc:
        load_advisory(path)
    assert messages(exc) == [f"{path}:9: checks[1]: no check 'env.proc-2' in matrix 'baseline' "
                             "(did you mean 'env.proc-1'?)"]
    path = write(tmp_path, GOOD.replace("matrix: baseline", "matrix: baselin"))
    with pytest.raises(AdvisoryError) as exc:
        load_advisory(path)
    assert "'baselin' is neither a bundled matrix nor a file (did you mean 'baseline'?)" in messages(exc)[0]


def test_a_matrix_path_is_resolved_beside_the_advisory(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "mine.yaml").write_text(
        "version: 1\nname: mine\nchecks:\n  - id: my.tcp\n    category: network\n    title: t\n"
        "    probe: tcp_send\n    args: {host: 127.0.0.1, port: \"{tcp_port}\", payload: \"x {token}\"}\n"
        "    expect: denied\n")
    a = load_advisory(write(tmp_path, GOOD.replace("matrix: baseline", "matrix: m/mine.yaml")
                            .replace("[network.tcp]", "[my.tcp]")))
    assert a.matrix_ref() == str(tmp_path / "m" / "mine.yaml")


def test_the_corpus_refuses_an_id_given_twice_and_an_empty_folder(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD, "b.yaml")
    with pytest.raises(AdvisoryError) as exc:
        load_corpus(tmp_path)
    assert messages(exc) == [f"{tmp_path / 'b.yaml'}:1: id: 'CVE-2025-66479' is also the id of {tmp_path / 'a.yaml'}"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AdvisoryError, match="no advisory files"):
        load_corpus(empty)


def test_the_bundled_corpus_loads_and_validate_knows_the_kind() -> None:
    corpus = load_corpus()
    assert len(corpus) >= 6
    assert {"CVE-2025-66479", "CVE-2026-25725", "CVE-2026-39861"} <= {a.id for a in corpus}
    for a in corpus:
        done = validate_file(a.file)
        assert done.kind == "advisory"
        assert done.summary.startswith(f"{a.target} {a.vulnerable} -> {a.fixed}")


def test_select_by_id_or_file_name_with_did_you_mean() -> None:
    corpus = load_corpus()
    assert [a.id for a in adv.select(corpus, ["cve-2025-66479", "srt-proc-1-environ"])][0] == "CVE-2025-66479"
    assert Path(adv.select(corpus, ["srt-proc-1-environ"])[0].file).stem == "srt-proc-1-environ"
    assert adv.select(corpus, []) == corpus
    with pytest.raises(AdvisoryError) as exc:
        adv.select(corpus, ["CVE-2025-6647"])
    assert str(exc.value) == "replay: unknown advisory 'CVE-2025-6647' (did you mean 'CVE-2025-66479'?)"


# --- verdicts ----------------------------------------------------------------

ADV = Advisory(id="CVE-2025-66479", title="t", url="https://x", target="srt-settings", vulnerable="0.0.15",
               fixed="0.0.16", matrix="baseline", checks=("network.tcp", "network.udp"))


def report(**observed: str) -> dict[str, Any]:
    """A canonical report whose checks were observed as given (keyword: the id, _ for . and __ for -)."""
    status = {"allowed": "fail", "denied": "pass", "unknown": "inconclusive"}
    return {"results": [{"id": cid.replace("__", "-").replace("_", "."), "observed": o, "status": status[o], "expect": "denied",
                         "evidence": [], "reason": f"{o} here"} for cid, o in observed.items()]}


class FakeEvaluator(Evaluator):
    """Gives canned runs by advisory id, and remembers what it was asked."""

    def __init__(self, runs: Mapping[str, Runs]) -> None:
        self.runs = runs
        self.asked: list[str] = []

    def run(self, advisory: Advisory) -> Runs:
        self.asked.append(advisory.id)
        return self.runs[advisory.id]


def test_allowed_then_denied_for_every_check_is_reproduced() -> None:
    r = judge(ADV, Runs(report(network_tcp="allowed", network_udp="allowed"),
                        report(network_tcp="denied", network_udp="denied")))
    assert r.status == REPRODUCED
    assert [o.fits for o in r.checks] == [True, True]
    assert r.reason == "2 check(s) allowed in 0.0.15, denied in 0.0.16"


@pytest.mark.parametrize("vulnerable, fixed, bad", [
    ({"network_tcp": "denied", "network_udp": "allowed"}, {"network_tcp": "denied", "network_udp": "denied"},
     "network.tcp: vulnerable denied (pass), fixed denied (pass)"),
    ({"network_tcp": "allowed", "network_udp": "allowed"}, {"network_tcp": "denied", "network_udp": "allowed"},
     "network.udp: vulnerable allowed (fail), fixed allowed (fail)"),
    # conclusive evidence against the advisory wins over a check that proved nothing
    ({"network_tcp": "unknown", "network_udp": "denied"}, {"network_tcp": "denied", "network_udp": "denied"},
     "network.udp: vulnerable denied (pass), fixed denied (pass)"),
])
def test_a_check_that_does_otherwise_is_not_reproduced(vulnerable: dict[str, str], fixed: dict[str, str],
                                                       bad: str) -> None:
    r = judge(ADV, Runs(report(**vulnerable), report(**fixed)))
    assert r.status == NOT_REPRODUCED
    assert r.reason == bad


def test_an_inconclusive_or_missing_check_could_not_run() -> None:
    r = judge(ADV, Runs(report(network_tcp="allowed", network_udp="allowed"),
                        report(network_tcp="denied", network_udp="unknown")))
    assert r.status == COULD_NOT_RUN
    assert r.reason.startswith("a check proved nothing: network.udp: vulnerable allowed (fail), fixed unknown")
    r = judge(ADV, Runs(report(network_tcp="allowed"), report(network_tcp="denied")))
    assert r.status == COULD_NOT_RUN and "network.udp: vulnerable absent" in r.reason


def test_a_release_that_cannot_run_is_a_result_not_an_exception() -> None:
    r = judge(ADV, Runs(could_not_run="srt-settings@0.0.15: npm install failed"))
    assert (r.status, r.reason, r.checks) == (COULD_NOT_RUN, "srt-settings@0.0.15: npm install failed", ())


def test_replay_exit_codes_and_rendering() -> None:
    other = Advisory(id="CVE-2026-25725", title="t2", url="https://y", target="claude-code-sandbox",
                     vulnerable="2.1.1", fixed="2.1.2", matrix="agent", checks=("agent.restart.project-hook",))
    good = Runs(report(network_tcp="allowed", network_udp="allowed"), report(network_tcp="denied", network_udp="denied"))
    cases = [
        ({ADV.id: good, other.id: Runs(report(agent_restart_project__hook="allowed"), report(
            agent_restart_project__hook="denied"))}, 0),
        ({ADV.id: good, other.id: Runs(could_not_run="tool missing")}, 3),
        ({ADV.id: Runs(report(network_tcp="denied", network_udp="denied"), report(
            network_tcp="denied", network_udp="denied")), other.id: Runs(could_not_run="tool missing")}, 1),
    ]
    for runs, code in cases:
        fake = FakeEvaluator(runs)
        heard: list[str] = []
        replays = adv.replay([ADV, other], fake, lambda r: heard.append(r.status))
        assert fake.asked == [ADV.id, other.id]
        assert heard == [r.status for r in replays]
        assert adv.exit_code(replays) == code
    import io

    out = io.StringIO()
    adv.render(replays, "json", out)
    data = json.loads(out.getvalue())
    assert data["schema_version"] == 1 and data["summary"] == {REPRODUCED: 0, NOT_REPRODUCED: 1, COULD_NOT_RUN: 1}
    assert data["advisories"][0]["name"] == ADV.id
    assert data["advisories"][0]["checks"][0] == {
        "id": "network.tcp", "vulnerable": {"status": "pass", "observed": "denied"},
        "fixed": {"status": "pass", "observed": "denied"}, "fits": False, "detail": ""}
    out = io.StringIO()
    adv.render(replays, "table", out)
    assert "CVE-2026-25725  COULD NOT RUN" in out.getvalue()
    assert out.getvalue().endswith("\n1 not reproduced, 1 could not run (of 2 advisories)\n")


def test_the_command_line_refuses_an_unknown_id_with_exit_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "sandboxcheck.cli", "replay", "CVE-2026-2572"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == "error: unknown advisory 'CVE-2026-2572' (did you mean 'CVE-2026-25725'?)\n"
    assert proc.stdout == ""


def test_the_command_line_reports_a_bad_corpus_with_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace('vulnerable: "0.0.15"', "vulnerable: 0.0.15x"))
    proc = subprocess.run([sys.executable, "-m", "sandboxcheck.cli", "replay", "--advisories", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr == (f"error: {tmp_path / 'adv.yaml'}:5: vulnerable: '0.0.15x' is not a release number "
                           "such as 0.0.16 (quote it in YAML)\n")
