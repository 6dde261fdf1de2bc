"""Report formats on a real run: JUnit, SARIF (validated against the SARIF 2.1.0 schema), markdown."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from sandboxcheck.model import Matrix
from sandboxcheck.report import render_junit, render_markdown, render_sarif
from sandboxcheck.runner import RunOptions, RunReport, run_matrix
from sandboxcheck.targets import load_target

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SARIF_SCHEMA = ROOT / ".tools/npm/node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json"


@pytest.fixture(scope="module")
def landlock_report(baseline: Matrix) -> RunReport:
    return run_matrix(baseline, load_target("landlock"), RunOptions(jobs=os.cpu_count() or 2))


def render(fn, report: RunReport) -> str:  # type: ignore[no-untyped-def]
    buf = io.StringIO()
    fn(report, buf)
    return buf.getvalue()


def test_junit(landlock_report: RunReport) -> None:
    root = ET.fromstring(render(render_junit, landlock_report))
    cases = root.findall(".//testcase")
    assert len(cases) == len(landlock_report.results)
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    expected = {f"{r.id}[landlock]" for r in landlock_report.results if r.status.value == "fail"}
    assert failed == expected and failed
    one = next(c for c in cases if c.get("name") == "env.own[landlock]")
    assert "expected denied, observed allowed" in one.find("failure").text  # type: ignore[union-attr]


@pytest.mark.skipif(not SARIF_SCHEMA.exists(), reason="SARIF schema not installed: run .ci/run "
                    "(npm install --prefix .tools/npm @microsoft/jest-sarif)")
def test_sarif_is_valid_and_complete(landlock_report: RunReport) -> None:
    doc = json.loads(render(render_sarif, landlock_report))
    schema = json.loads(SARIF_SCHEMA.read_text())
    errors = sorted(Draft7Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    run = doc["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert set(rules) == {r.id for r in landlock_report.results}
    assert rules["credentials.ssh-key"]["help"]["text"].startswith("Hide ~/.ssh")
    assert rules["credentials.ssh-key"]["defaultConfiguration"]["level"] == "error"
    failing = {r.id for r in landlock_report.results if r.status.value == "fail"}
    assert {res["ruleId"] for res in run["results"]} == failing
    env = next(res for res in run["results"] if res["ruleId"] == "env.own")
    region = env["locations"][0]["physicalLocation"]["region"]
    lines = Path(env["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]).read_text().splitlines()
    assert "id: env.own" in lines[region["startLine"] - 1]


def test_markdown(landlock_report: RunReport) -> None:
    md = render(render_markdown, landlock_report)
    assert md.startswith("## sandboxcheck: `baseline` against `landlock`")
    assert "| ❌ | `env.own` | denied | allowed |" in md
    assert "<details>" in md


def test_several_reports_in_one_run(tmp_path: Path) -> None:
    out = {f: tmp_path / f"r.{f}" for f in ("json", "junit", "sarif", "markdown")}
    proc = subprocess.run([sys.executable, "-m", "sandboxcheck.cli", "run", "baseline", "--target", "landlock",
                           *[a for f, p in out.items() for a in ("--report", f"{f}:{p}")]],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(out["json"].read_text())["summary"]["fail"] == 13
    assert ET.parse(out["junit"]).getroot().tag == "testsuites"
    assert json.loads(out["sarif"].read_text())["version"] == "2.1.0"
    assert "against `landlock`" in out["markdown"].read_text()
    bad = subprocess.run([sys.executable, "-m", "sandboxcheck.cli", "run", "baseline", "--report", "pdf:x"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "expected FORMAT:FILE" in bad.stderr


def test_baseline_accepts_known_deviations_only(tmp_path: Path) -> None:
    accepted = tmp_path / "accepted.json"
    first = subprocess.run([sys.executable, "-m", "sandboxcheck.cli", "run", "baseline", "--target", "landlock",
                            "--format", "json", "--output", str(accepted)], capture_output=True, text=True)
    assert first.returncode == 1
    again = subprocess.run([sys.executable, "-m", "sandboxcheck.cli", "run", "baseline", "--target", "landlock",
                            "--accepted", str(accepted), "--format", "json"], capture_output=True, text=True)
    assert again.returncode == 0, [(r["id"], r["status"], r["reason"]) for r in json.loads(again.stdout)["results"]
                                   if r["status"] != "pass" and not r["accepted"]]
    assert json.loads(again.stdout)["summary"]["accepted"] == 13
    # bwrap-loose fails more than landlock did: the new deviations are not accepted.
    looser = subprocess.run([sys.executable, "-m", "sandboxcheck.cli", "run", "baseline", "--target",
                             "bwrap-loose", "--accepted", str(accepted), "--accepted-any-target", "--format", "json"],
                            capture_output=True, text=True)
    assert looser.returncode == 1
    live = [r["id"] for r in json.loads(looser.stdout)["results"] if r["status"] == "fail" and not r["accepted"]]
    assert "credentials.ssh-key" in live and "env.own" not in live
