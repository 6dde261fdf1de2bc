"""SARIF for GitHub code scanning: the official 2.1.0 schema, plus GitHub's own rules checked offline."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import jsonschema
import pytest

from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.model import Matrix, Observed, Result, Status
from sandboxcheck.report.registry import render
from sandboxcheck.resources import resolve_matrix
from sandboxcheck.model import RunReport
from sandboxcheck.report.sarif import FALLBACK_DIR, FINGERPRINT_KEY, SECURITY_SEVERITY, SRCROOT, locate, sarif_document

MATRIX = """\
version: 1
name: tiny
checks:
  - id: fs.read.absolute
    category: fs-read
    title: Read a canary outside the workspace
    probe: read_file
    args: {path: "{outside}/secret.txt"}
    expect: denied
    severity: critical
    description: The probe reads a file it must not see.
    fix: Mount only the workspace.

  - id: env.own
    category: env
    title: Canary tokens in the environment
    probe: read_env
    evidence: {kind: leak, labels: [env-github_token]}
    expect: denied
    severity: low
    fix: Clear the environment.

  - id: exec.shell
    category: exec
    title: Run a shell
    probe: spawn
    argv: ["/bin/sh", "-c", "printf '%s-%s\\n' SPAWNED {token}"]
    evidence: {kind: marker, marker: "SPAWNED-{token}"}
    expect: allowed
    severity: medium

  - id: network.udp
    category: network
    title: Send a UDP datagram
    probe: udp_send
    args: {host: 127.0.0.1, port: "{udp_port}", payload: "udp {token}"}
    expect: denied
    severity: high

  - id: ipc.ssh-agent
    category: ipc
    title: Reach the ssh agent
    probe: read_file
    args: {path: "{outside}/agent"}
    expect: denied
"""

#: (id, status, observed, severity, waived)
OUTCOMES = [("fs.read.absolute", Status.FAIL, Observed.ALLOWED, "critical", None),
            ("env.own", Status.FAIL, Observed.ALLOWED, "low", None),
            ("exec.shell", Status.PASS, Observed.ALLOWED, "medium", None),
            ("network.udp", Status.INCONCLUSIVE, Observed.UNKNOWN, "high", None),
            ("ipc.ssh-agent", Status.FAIL, Observed.ALLOWED, "medium", "vendor fix due in March")]


def report_for(matrix: Matrix) -> RunReport:
    checks = {c.id: c for c in matrix.checks}
    results = [Result(id=i, category=checks[i].category, title=checks[i].title, expect=checks[i].expect,
                      observed=obs, status=st, errno=None,
                      evidence=(f"canary of {i} seen on the host",) if st is Status.FAIL else (),
                      reason=("the probe crashed: python3 not found" if st is Status.INCONCLUSIVE
                              else f"evidence for {i}"),
                      duration_s=0.1, severity=sev, target="landlock", waived=waived)
               for i, st, obs, sev, waived in OUTCOMES]
    return RunReport(matrix=matrix, target={"name": "landlock"}, started="2026-12-03T12:00:00+00:00",
                     duration_s=1.0, results=results)


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    (tmp_path / "policy dir").mkdir()
    (tmp_path / "policy dir" / "tiny.yaml").write_text(MATRIX)
    return tmp_path


@pytest.fixture()
def doc(repo: Path) -> dict[str, Any]:
    return sarif_document(report_for(load_matrix(repo / "policy dir" / "tiny.yaml")), base=repo)


def test_valid_against_the_official_sarif_schema(doc: dict[str, Any], sarif_schema: dict) -> None:
    cls = jsonschema.validators.validator_for(sarif_schema)
    errors = sorted(cls(sarif_schema, format_checker=cls.FORMAT_CHECKER).iter_errors(doc),
                    key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    # The schema itself must reject a broken log, or the check above proves nothing.
    broken = json.loads(json.dumps(doc))
    broken["runs"][0]["results"][0]["level"] = "fatal"
    assert any(cls(sarif_schema).iter_errors(broken))


def test_every_rule_carries_what_github_shows(doc: dict[str, Any]) -> None:
    # The upload's own category (upload-sarif's `category:`) must decide how runs are grouped.
    assert "automationDetails" not in doc["runs"][0]
    driver = doc["runs"][0]["tool"]["driver"]
    assert urlparse(driver["informationUri"]).scheme == "https"
    rules = {r["id"]: r for r in driver["rules"]}
    assert list(rules) == [o[0] for o in OUTCOMES]
    for (check_id, _, _, severity, _), rule in zip(OUTCOMES, driver["rules"]):
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert rule["help"]["text"] and rule["help"]["markdown"]
        assert urlparse(rule["helpUri"]).scheme == "https" and urlparse(rule["helpUri"]).fragment
        sev = rule["properties"]["security-severity"]
        # GitHub reads security-severity as a string holding a number from 0.0 to 10.0,
        # and only for rules tagged "security".
        assert isinstance(sev, str) and 0.0 <= float(sev) <= 10.0 and sev == SECURITY_SEVERITY[severity]
        assert rule["properties"]["tags"][0] == "security" and len(rule["properties"]["tags"]) <= 20
        assert rule["properties"]["category"] in rule["properties"]["tags"]
    assert "Mount only the workspace." in rules["fs.read.absolute"]["help"]["markdown"]
    assert rules["env.own"]["help"]["text"].startswith("Clear the environment.")
    assert rules["fs.read.absolute"]["fullDescription"]["text"] == "The probe reads a file it must not see."
    # GitHub's bands: critical over 9.0, high 7.0-8.9, medium 4.0-6.9, low 0.1-3.9.
    assert float(rules["fs.read.absolute"]["properties"]["security-severity"]) > 9.0
    assert 7.0 <= float(rules["network.udp"]["properties"]["security-severity"]) < 9.0
    assert 0.1 <= float(rules["env.own"]["properties"]["security-severity"]) < 4.0


def test_results_fail_and_inconclusive_only_with_levels(doc: dict[str, Any]) -> None:
    results = {r["ruleId"]: r for r in doc["runs"][0]["results"]}
    assert set(results) == {"fs.read.absolute", "env.own", "network.udp", "ipc.ssh-agent"}
    assert results["fs.read.absolute"]["level"] == "error"
    assert results["env.own"]["level"] == "warning"
    assert results["ipc.ssh-agent"]["level"] == "warning"
    inconclusive = results["network.udp"]
    assert inconclusive["level"] == "note" and inconclusive["properties"]["status"] == "inconclusive"
    assert "python3 not found" in inconclusive["message"]["text"]
    assert "canary of fs.read.absolute seen on the host" in results["fs.read.absolute"]["message"]["text"]
    waived = results["ipc.ssh-agent"]
    assert waived["suppressions"] == [{"kind": "external", "justification": "vendor fix due in March"}]
    assert all("suppressions" not in r for k, r in results.items() if k != "ipc.ssh-agent")
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results.values())


def test_locations_are_repository_relative_on_the_check_line(doc: dict[str, Any], repo: Path) -> None:
    run = doc["runs"][0]
    base = run["originalUriBaseIds"][SRCROOT]["uri"]
    assert base.startswith("file:///") and base.endswith("/")
    assert Path(unquote(urlparse(base).path)) == repo.resolve()
    for res in run["results"]:
        loc = res["locations"][0]["physicalLocation"]
        uri = loc["artifactLocation"]["uri"]
        assert loc["artifactLocation"]["uriBaseId"] == SRCROOT
        assert uri == "policy%20dir/tiny.yaml"   # relative, no scheme, no leading slash, percent-encoded
        assert "Reported at" not in res["message"]["text"]
        lines = (repo / unquote(uri)).read_text().splitlines()
        region = loc["region"]
        assert lines[region["startLine"] - 1].strip() == f"- id: {res['ruleId']}"
        assert region["endLine"] >= region["startLine"]


def test_fingerprints_are_stable_and_distinct(repo: Path) -> None:
    matrix = load_matrix(repo / "policy dir" / "tiny.yaml")
    first = sarif_document(report_for(matrix), base=repo)["runs"][0]["results"]
    again = sarif_document(report_for(matrix), base=repo / "policy dir")["runs"][0]["results"]
    prints = [r["partialFingerprints"][FINGERPRINT_KEY] for r in first]
    assert prints == [r["partialFingerprints"][FINGERPRINT_KEY] for r in again]
    assert len(set(prints)) == len(prints)
    other = report_for(matrix)
    other.target = {"name": "bwrap-strict"}
    assert sarif_document(other, base=repo)["runs"][0]["results"][0]["partialFingerprints"] != \
        first[0]["partialFingerprints"]


def test_bundled_matrix_falls_back_to_a_documented_path(tmp_path: Path, baseline: Matrix) -> None:
    where = locate(baseline.checks[0].source, baseline.name, tmp_path)
    assert where.fallback and where.uri == f"{FALLBACK_DIR}/baseline.yaml"
    check = next(c for c in baseline.checks if c.id == "env.own")
    results = [Result(id=check.id, category=check.category, title=check.title, expect=check.expect,
                      observed=Observed.ALLOWED, status=Status.FAIL, errno=None, evidence=(),
                      reason="canary seen", duration_s=0.1, severity=check.severity)]
    doc = sarif_document(RunReport(matrix=baseline, target={"name": "none"}, started="2026-12-03T12:00:00Z",
                                   duration_s=1.0, results=results), base=tmp_path)
    res = doc["runs"][0]["results"][0]
    loc = res["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == "sandboxcheck/matrices/baseline.yaml"
    assert loc["region"]["startLine"] == check.line > 1
    assert "bundled matrix" in res["message"]["text"] and "copy the matrix" in res["message"]["text"]
    # Copied to that path, the same run points at the copy's real lines, with the same fingerprint.
    copy = tmp_path / FALLBACK_DIR / "baseline.yaml"
    copy.parent.mkdir(parents=True)
    copy.write_text(Path(resolve_matrix("baseline")).read_text())
    copied = load_matrix(copy)
    again = sarif_document(RunReport(matrix=copied, target={"name": "none"}, started="2026-12-03T12:00:00Z",
                                     duration_s=1.0, results=results), base=tmp_path)["runs"][0]["results"][0]
    assert again["locations"] == res["locations"]
    assert again["partialFingerprints"] == res["partialFingerprints"]
    assert "Reported at" not in again["message"]["text"]


def test_a_matrix_outside_the_base_keeps_its_file_name(repo: Path, tmp_path_factory: pytest.TempPathFactory
                                                       ) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    where = locate(str(repo / "policy dir" / "tiny.yaml"), "tiny", elsewhere)
    assert where == type(where)(uri=f"{FALLBACK_DIR}/tiny.yaml", fallback=True)
    assert locate("<matrix>", "inline", repo).uri == f"{FALLBACK_DIR}/inline.yaml"


def test_registry_renders_the_same_document(repo: Path) -> None:
    report = report_for(load_matrix(repo / "policy dir" / "tiny.yaml"))
    buf = io.StringIO()
    render("run", "sarif", report, buf, base=repo)
    assert json.loads(buf.getvalue()) == sarif_document(report, base=repo)


def test_cli_rejects_a_missing_sarif_base(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "sandboxcheck.cli", "run", "baseline", "--target", "none",
                           "--sarif-base", str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--sarif-base" in proc.stderr and "no such folder" in proc.stderr
