"""The ``sandboxcheck`` fixture for tests written in Python."""
from __future__ import annotations

import pytest
from marks import requires_bwrap
from plugin_helpers import SMALL, read_runs, run, spy_on_runs, write_matrix

pytestmark = [pytest.mark.integration, requires_bwrap]

TESTS = """
from sandboxcheck.model import Observed, Status


def test_run(sandboxcheck):
    report = sandboxcheck.run("small.yaml", target="none")
    assert report.target["name"] == "none"
    assert [(r.id, r.status.value) for r in report.results] == [
        ("fs.read.outside", "fail"), ("fs.read.workspace", "pass")]


def test_check(sandboxcheck):
    result = sandboxcheck.check("fs.read.outside", target="bwrap-strict", matrix="small.yaml")
    assert result.status is Status.PASS, sandboxcheck.explain(result)


def test_check_comes_from_the_cached_run(sandboxcheck):
    result = sandboxcheck.check("fs.read.outside", target="none", matrix="small.yaml")
    assert result.observed is Observed.ALLOWED


def test_bundled_baseline_by_default(sandboxcheck):
    result = sandboxcheck.check("fs.read.symlink", target="bwrap-strict")
    assert result.status is Status.PASS, sandboxcheck.explain(result)


def test_only_a_category(sandboxcheck):
    report = sandboxcheck.run("small.yaml", target="none", only=["fs-read"])
    assert len(report.results) == 2
"""


def test_fixture_runs_checks_and_shares_one_harness(pytester: pytest.Pytester,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    log = spy_on_runs(pytester, monkeypatch)
    write_matrix(pytester, name="tests/small.yaml")
    pytester.path.joinpath("tests", "test_fixture_demo_policy.py").write_text(TESTS)
    run(pytester).assert_outcomes(passed=5)  # paths relative to the test file
    runs = read_runs(log)
    assert [(r["checks"], r["targets"]) for r in runs] == [
        (["fs.read.outside", "fs.read.workspace"], ["none"]),
        (["fs.read.outside"], ["bwrap-strict"]),
        (["fs.read.symlink"], ["bwrap-strict"]),
    ]
    assert len({r["harness"] for r in runs}) == 1


def test_fixture_default_target_comes_from_the_options(pytester: pytest.Pytester) -> None:
    write_matrix(pytester)
    pytester.makepyfile("""
def test_default(sandboxcheck):
    assert sandboxcheck.run("small.yaml").target["name"] == "bwrap-strict"
""")
    run(pytester, "--sandboxcheck-target", "bwrap-strict").assert_outcomes(passed=1)


def test_fixture_errors_and_unavailable_targets(pytester: pytest.Pytester) -> None:
    write_matrix(pytester)
    write_matrix(pytester, SMALL.replace("expect: allowed", "expect: alowed"), "bad.yaml")
    pytester.path.joinpath("missing.yaml").write_text(
        "name: missing-tool\nrequires: [no-such-sandbox-tool]\ncommand: [no-such-sandbox-tool, '{cmd}']\n")
    pytester.makepyfile("""
def test_unknown_check(sandboxcheck):
    sandboxcheck.check("fs.read.outsid", target="none", matrix="small.yaml")

def test_invalid_matrix(sandboxcheck):
    sandboxcheck.run("bad.yaml", target="none")

def test_unknown_target(sandboxcheck):
    sandboxcheck.run("small.yaml", target="nope")

def test_unavailable_target(sandboxcheck):
    sandboxcheck.run("small.yaml", target="missing.yaml")
""")
    result = run(pytester, "-rs")
    result.assert_outcomes(failed=3, skipped=1)
    result.stdout.fnmatch_lines_random([
        "matrix 'small' has no check 'fs.read.outsid' (did you mean 'fs.read.outside'?)",
        "invalid matrix:",
        "*/bad.yaml:16: checks[[]1[]].expect: 'alowed' is not one of: allowed, denied",
        "unknown target 'nope'*",
        "SKIPPED*target 'missing-tool' is not available here: no-such-sandbox-tool not found on PATH*",
    ])
    run(pytester, "--sandboxcheck-strict", "-k", "test_unavailable_target").assert_outcomes(failed=1, deselected=3)
