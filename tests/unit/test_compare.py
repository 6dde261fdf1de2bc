"""diff classification: every kind of change, and the exit code policy."""
from __future__ import annotations

from typing import Any

import pytest

from sandboxcheck.compare import DEFAULT_FAIL_ON, classify, counts, diff_reports, exit_code


def r(cid: str, observed: str, status: str = "pass", errno: str | None = None,
      layer: str | None = None, evidence: list[str] | None = None) -> dict[str, Any]:
    return {"id": cid, "observed": observed, "status": status, "errno": errno, "layer": layer,
            "evidence": evidence or [], "reason": f"{cid} {observed}"}


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
def test_classify(before: dict[str, Any] | None, after: dict[str, Any] | None, kind: str) -> None:
    change = classify(before, after)
    assert change.kind == kind
    assert change.id == "a"


def test_loosened_detail_carries_the_evidence() -> None:
    change = classify(r("a", "denied"), r("a", "allowed", "fail", evidence=["tcp sink on loopback received"]))
    assert change.before == "denied" and change.after == "allowed"
    assert "tcp sink on loopback received" in change.detail


def test_diff_reports_and_exit_code() -> None:
    before = {"a": r("a", "denied"), "b": r("b", "allowed", "fail"), "gone": r("gone", "denied")}
    after = {"a": r("a", "denied"), "b": r("b", "denied"), "c": r("c", "denied")}
    changes = diff_reports(before, after)
    assert {c.id: c.kind for c in changes} == {"a": "unchanged", "b": "tightened", "c": "new",
                                                "gone": "removed"}
    assert exit_code(changes) == 0
    assert counts(changes)["tightened"] == 1
    worse = diff_reports({"a": r("a", "denied")}, {"a": r("a", "allowed", "fail")})
    assert exit_code(worse) == 1
    assert exit_code(worse, ("tightened",)) == 0
    assert set(DEFAULT_FAIL_ON) == {"loosened", "now-inconclusive"}


def test_skips_are_never_unchanged() -> None:
    assert classify(r("a", "denied"), r("a", "unknown", "skip")).kind == "now-skipped"
    assert classify(r("a", "unknown", "skip"), r("a", "allowed", "fail")).kind == "loosened"
    assert classify(r("a", "unknown", "inconclusive"), r("a", "allowed", "fail")).kind == "loosened"
    assert classify(r("a", "unknown", "skip"), r("a", "unknown", "skip")).kind == "unchanged"
