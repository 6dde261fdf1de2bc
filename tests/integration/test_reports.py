"""Report formats on a real run: JUnit, SARIF (validated against the SARIF 2.1.0 schema), markdown."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest
from jsonschema.validators import validator_for

from sandboxcheck.model import Matrix
from sandboxcheck.report.run import render_junit, render_markdown
from sandboxcheck.report.sarif import render_sarif
from sandboxcheck.run.options import RunOptions
from sandboxcheck.run.schedule import run_matrix
from sandboxcheck.model import RunReport
from sandboxcheck.targets.registry import load_target

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


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


def test_sarif_is_valid_and_complete(landlock_report: RunReport, sarif_schema: dict) -> None:
    doc = json.loads(render(partial(render_sarif, base=ROOT), landlock_report))
    errors = sorted(validator_for(sarif_schema)(sarif_schema).iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    run = doc["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert set(rules) == {r.id for r in landlock_report.results}
    assert rules["credentials.ssh-key"]["help"]["text"].startswith("Hide ~/.ssh")
    assert rules["credentials.ssh-key"]["defaultConfiguration"]["level"] == "error"
    deviating = {r.id for r in landlock_report.results if r.status.value in ("fail", "inconclusive")}
    assert {res["ruleId"] for res in run["results"]} == deviating
    env = next(res for res in run["results"] if res["ruleId"] == "env.own")
    region = env["locations"][0]["physicalLocation"]["region"]
    base = Path(unquote(urlparse(run["originalUriBaseIds"]["%SRCROOT%"]["uri"]).path))
    uri = env["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    lines = (base / unquote(uri)).read_text().splitlines()
    assert "id: env.own" in lines[region["startLine"] - 1]


def test_sarif_base_makes_locations_repository_relative(tmp_path: Path, baseline_subset: Any) -> None:
    """A real run of a matrix kept in a repository: the alert points at the check's line in it."""
    matrix = tmp_path / "ci" / "sandbox.yaml"
    matrix.parent.mkdir()
    matrix.write_text(baseline_subset("two", "fs.read.absolute", "env.own"))
    out = tmp_path / "out.sarif"
    proc = subprocess.run([sys.executable, "-m", "sandboxcheck.cli", "run", str(matrix), "--target", "landlock",
                           "--report", f"sarif:{out}", "--sarif-base", str(tmp_path), "--format", "json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    (res,) = json.loads(out.read_text())["runs"][0]["results"]
    loc = res["locations"][0]["physicalLocation"]
    assert res["ruleId"] == "env.own" and loc["artifactLocation"]["uri"] == "ci/sandbox.yaml"
    assert matrix.read_text().splitlines()[loc["region"]["startLine"] - 1].strip() == "- id: env.own"


def test_markdown(landlock_report: RunReport) -> None:
    md = render(render_markdown, landlock_report)
    assert md.startswith("## sandboxcheck: <code>baseline</code> against <code>landlock</code>")
    assert "| ❌ | <code>env.own</code> | denied | allowed |" in md
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
    assert "against <code>landlock</code>" in out["markdown"].read_text()
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
