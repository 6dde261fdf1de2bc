"""diff classification: verdicts on status, kinds of the observation, the gate, sides and rendering."""
from __future__ import annotations

import io
import json
from typing import Any

import pytest

from sandboxcheck.compare import (DEFAULT_FAIL_ON, FAIL_ON_WORDS, Comparison, Side, classify, counts,
                                  diff_reports, exit_code, matrix_mismatch, render, side, summary_line,
                                  target_version, verdict, verdict_counts)


def r(cid: str, observed: str, status: str = "pass", errno: str | None = None,
      layer: str | None = None, evidence: list[str] | None = None, expect: str = "denied",
      severity: str = "high") -> dict[str, Any]:
    return {"id": cid, "observed": observed, "status": status, "errno": errno, "layer": layer,
            "evidence": evidence or [], "reason": f"{cid} {observed}", "expect": expect, "severity": severity}


@pytest.mark.parametrize("before, after, kind", [
    (r("a", "allowed", "fail"), r("a", "denied"), "tightened"),
    (r("a", "denied"), r("a", "allowed", "fail", evidence=["tcp sink on loopback"]), "loosened"),
    (r("a", "denied", errno="EROFS"), r("a", "denied", errno="ENOENT"), "failure-mode-changed"),
    (r("a", "denied", errno="EACCES", layer="x"), r("a", "denied", errno="EACCES", layer="y"),
     "failure-mode-changed"),
    (r("a", "allowed", evidence=["e1"]), r("a", "allowed", evidence=["e2"]), "failure-mode-changed"),
    (r("a", "denied", errno="EROFS"), r("a", "denied", errno="EROFS"), "unchanged"),
    (r("a", "allowed", evidence=["e1", "e2"]), r("a", "allowed", evidence=["e2", "e1"]), "unchanged"),
    (r("a", "denied"), r("a", "unknown", "inconclusive"), "now-inconclusive"),
    (r("a", "unknown", "inconclusive"), r("a", "denied"), "now-conclusive"),
    (None, r("a", "denied"), "new"),
    (r("a", "denied"), None, "removed"),
])
def test_classify_kind_of_the_observation(before: dict[str, Any] | None, after: dict[str, Any] | None,
                                          kind: str) -> None:
    change = classify(before, after)
    assert change.kind == kind
    assert change.id == "a"


@pytest.mark.parametrize("before, after, expected", [
    ("pass", "fail", "regression"),
    ("pass", "inconclusive", "regression"),
    ("inconclusive", "fail", "regression"),
    (None, "fail", "regression"),          # a new check that fails
    (None, "inconclusive", "regression"),  # a new check that proves nothing
    ("skip", "fail", "regression"),        # a check that runs now and fails
    ("fail", "pass", "improvement"),
    ("inconclusive", "pass", "improvement"),
    ("fail", "inconclusive", "unchanged"),  # no longer shown leaking, but not shown holding either
    ("pass", "pass", "unchanged"),
    ("fail", "fail", "unchanged"),
    (None, "pass", "unchanged"),
    ("skip", "pass", "unchanged"),
    ("pass", "skip", "unchanged"),
    ("fail", None, "unchanged"),
])
def test_verdict_on_status(before: str | None, after: str | None, expected: str) -> None:
    assert verdict(before, after) == expected


def test_an_allowed_check_that_starts_working_is_an_improvement_not_a_failure() -> None:
    # srt -> srt-settings: the settings file lets the workspace be written, as the check expects.
    before = r("fs.write.workspace", "denied", "fail", errno="EROFS", expect="allowed", severity="medium")
    after = r("fs.write.workspace", "allowed", "pass", expect="allowed", severity="medium",
              evidence=["{workspace}/src/generated.txt created on the host with the check's canary"])
    change = classify(before, after)
    assert (change.verdict, change.kind) == ("improvement", "loosened")
    assert (change.expect, change.severity, change.before_status, change.after_status) == \
        ("allowed", "medium", "fail", "pass")
    assert exit_code([change]) == 0
    # Asking for the observation's kind explicitly still gates on it.
    assert exit_code([change], ("loosened",)) == 1


def test_a_denied_check_that_starts_leaking_is_a_regression() -> None:
    change = classify(r("tamper.codex-config", "denied", "pass", severity="critical"),
                      r("tamper.codex-config", "allowed", "fail", severity="critical", evidence=["changed"]))
    assert (change.verdict, change.kind) == ("regression", "loosened")
    assert exit_code([change]) == 1


def test_new_checks_count_by_their_status() -> None:
    failing = classify(None, r("n", "allowed", "fail"))
    unproven = classify(None, r("n", "unknown", "inconclusive"))
    passing = classify(None, r("n", "denied", "pass"))
    assert [c.verdict for c in (failing, unproven, passing)] == ["regression", "regression", "unchanged"]
    assert all(c.kind == "new" for c in (failing, unproven, passing))
    assert exit_code([failing]) == exit_code([unproven]) == 1
    assert exit_code([passing]) == 0


def test_a_status_change_without_an_observed_change_is_listed() -> None:
    # The control could no longer do the action: same observation, the status fell to inconclusive.
    change = classify(r("a", "denied", "pass"), r("a", "denied", "inconclusive"))
    assert change.verdict == "regression" and change.moved


def test_diff_reports_and_exit_code() -> None:
    before = {"a": r("a", "denied"), "b": r("b", "allowed", "fail"), "gone": r("gone", "denied")}
    after = {"a": r("a", "denied"), "b": r("b", "denied"), "c": r("c", "denied")}
    changes = diff_reports(before, after)
    assert {c.id: c.kind for c in changes} == {"a": "unchanged", "b": "tightened", "c": "new",
                                                "gone": "removed"}
    assert {c.id: c.verdict for c in changes} == {"a": "unchanged", "b": "improvement", "c": "unchanged",
                                                   "gone": "unchanged"}
    assert exit_code(changes) == 0
    assert exit_code(changes, ("improvement",)) == 1
    assert exit_code(changes, ("removed",)) == 1
    assert counts(changes)["tightened"] == 1
    assert verdict_counts(changes) == {"regression": 0, "improvement": 1, "unchanged": 3}
    worse = diff_reports({"a": r("a", "denied")}, {"a": r("a", "allowed", "fail")})
    assert exit_code(worse) == 1
    assert exit_code(worse, ("tightened",)) == 0
    assert DEFAULT_FAIL_ON == ("regression",)
    assert {"regression", "improvement", "loosened", "now-inconclusive"} <= set(FAIL_ON_WORDS)
    # "unchanged" as a verdict never fails the gate (only the kind of that name would).
    assert exit_code(diff_reports({"a": r("a", "denied", errno="X")}, {"a": r("a", "denied", errno="Y")}),
                     ("unchanged",)) == 0


def test_skips_are_never_unchanged() -> None:
    assert classify(r("a", "denied"), r("a", "unknown", "skip")).kind == "now-skipped"
    assert classify(r("a", "unknown", "skip"), r("a", "allowed", "fail")).kind == "loosened"
    assert classify(r("a", "unknown", "inconclusive"), r("a", "allowed", "fail")).kind == "loosened"
    assert classify(r("a", "unknown", "skip"), r("a", "unknown", "skip")).kind == "unchanged"


def report(matrix: str, target: dict[str, Any], *results: dict[str, Any]) -> dict[str, Any]:
    return {"schema_version": 1, "matrix": {"name": matrix, "checks": len(results)}, "target": target,
            "results": list(results)}


def test_target_versions_from_reports() -> None:
    assert target_version({"name": "srt@0.0.76"}) == "0.0.76"
    assert target_version({"name": "srt@0.0.76", "version": "0.0.76"}) == "0.0.76"
    assert target_version({"name": "srt", "versions": ["srt 0.0.78", "bwrap 0.8.0"]}) == "srt 0.0.78"
    assert target_version({"name": "srt"}) is None
    assert target_version({"name": "@scope"}) is None
    s = side(report("baseline", {"name": "srt@0.0.50"}, r("a", "denied")), "old.json")
    assert (s.target, s.version, s.matrix, s.check_ids) == ("srt@0.0.50", "0.0.50", "baseline", ("a",))
    assert s.title() == "srt@0.0.50 [old.json]"
    assert Side("srt", "srt", "srt 0.0.78").title() == "srt (srt 0.0.78)"


def test_matrix_mismatch() -> None:
    a = side(report("baseline", {"name": "x"}, r("a", "denied"), r("b", "denied")), "a.json")
    grown = side(report("baseline", {"name": "x"}, r("a", "denied"), r("b", "denied"), r("c", "denied")),
                 "b.json")
    shrunk = side(report("baseline", {"name": "x"}, r("a", "denied")), "c.json")
    other = side(report("agent", {"name": "x"}, r("a", "denied"), r("b", "denied")), "d.json")
    assert matrix_mismatch(a, a) is None
    assert matrix_mismatch(a, grown) is None  # checks added: the same matrix, grown
    assert matrix_mismatch(a, shrunk) == "a.json has 1 check that c.json lacks (b)"
    assert matrix_mismatch(a, other) == "matrix 'baseline' -> 'agent'"


def _srt_comparison() -> Comparison:
    before = report("baseline", {"name": "srt", "versions": ["srt 0.0.78"]},
                    r("fs.write.workspace", "denied", "fail", errno="EROFS", expect="allowed", severity="medium"),
                    r("tamper.codex-config", "denied", "pass", severity="critical"),
                    r("fs.read.workspace", "allowed", "pass", expect="allowed"))
    after = report("baseline", {"name": "srt-settings", "versions": ["srt 0.0.78"]},
                   r("fs.write.workspace", "allowed", "pass", expect="allowed", severity="medium",
                     evidence=["created on the host"]),
                   r("tamper.codex-config", "allowed", "fail", severity="critical", evidence=["changed | piped"]),
                   r("fs.read.workspace", "allowed", "pass", expect="allowed"))
    changes = diff_reports({x["id"]: x for x in before["results"]}, {x["id"]: x for x in after["results"]})
    return Comparison("compare", side(before, "srt"), side(after, "srt-settings"), tuple(changes))


def test_render_table_names_the_command_the_versions_and_each_changed_check() -> None:
    out = io.StringIO()
    render(_srt_comparison(), "table", out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "sandboxcheck compare baseline: srt (srt 0.0.78) -> srt-settings (srt 0.0.78)"
    assert "sandboxcheck diff" not in out.getvalue()
    header = next(line for line in lines if "verdict" in line)
    for column in ("check", "expect", "before", "after", "severity", "change", "detail"):
        assert column in header
    rows = [line for line in lines if "regression" in line or "improvement" in line]
    assert "tamper.codex-config" in rows[0] and "PASS denied" in rows[0] and "FAIL allowed" in rows[0]
    assert "critical" in rows[0]
    assert "fs.write.workspace" in rows[1] and "allowed" in rows[1] and "FAIL denied" in rows[1]
    assert "fs.read.workspace" not in out.getvalue()  # unchanged checks only with --all
    assert lines[-1] == "1 regression, 1 improvement, 1 unchanged (observed: 2 loosened, 1 unchanged)"


def test_render_markdown_and_json() -> None:
    comparison = _srt_comparison()
    md = io.StringIO()
    render(comparison, "markdown", md)
    text = md.getvalue()
    assert text.startswith("## sandboxcheck compare baseline: <code>srt (srt 0.0.78)</code> -> "
                           "<code>srt-settings (srt 0.0.78)</code>")
    assert "| verdict | check | expect | before | after | severity | change | detail |" in text
    assert ("| regression | <code>tamper.codex-config</code> | denied | PASS denied | FAIL allowed | critical | loosened "
            "| changed \\| piped |") in text
    assert ("| improvement | <code>fs.write.workspace</code> | allowed | FAIL denied | PASS allowed | medium | loosened "
            "| created on the host |") in text
    js = io.StringIO()
    render(comparison, "json", js)
    data = json.loads(js.getvalue())
    assert data["command"] == "compare" and data["matrix"] == "baseline"
    assert data["before_target"]["version"] == "srt 0.0.78"
    assert data["verdicts"] == {"regression": 1, "improvement": 1, "unchanged": 1}
    assert data["summary"]["loosened"] == 2
    by_id = {c["id"]: c for c in data["changes"]}
    assert by_id["fs.write.workspace"] == {
        "id": "fs.write.workspace", "verdict": "improvement", "change": "loosened", "expect": "allowed",
        "severity": "medium", "before_status": "fail", "after_status": "pass", "before": "denied",
        "after": "allowed", "detail": "created on the host"}


def test_render_warns_about_different_matrices() -> None:
    base = _srt_comparison()
    noted = Comparison("diff", base.before, base.after, base.changes, "different matrices: x")
    out = io.StringIO()
    render(noted, "table", out)
    assert out.getvalue().splitlines()[1] == "warning: different matrices: x"
    assert summary_line([]) == "no checks"
