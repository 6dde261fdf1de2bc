"""Merging reports: shards back into one run, hosts into a fleet view, and what does not add up."""
from __future__ import annotations

import io
from typing import Any

import pytest

from sandboxcheck import merge as mg

IDS = ["fs.read.a", "fs.read.b", "net.c", "exec.d"]


def _result(cid: str, status: str = "pass", observed: str = "denied", **extra: Any) -> dict[str, Any]:
    return {"id": cid, "category": cid.split(".")[0], "title": cid, "expect": "denied", "observed": observed,
            "status": status, "errno": None, "evidence": [], "reason": "", "duration_s": 0.1,
            "severity": "medium", "target": "", "control": None, "probe_action": "", "layer": None,
            "waived": None, "accepted": False, **extra}


def _report(host: str, results: list[dict[str, Any]], target: str = "bwrap-strict", digest: str = "sha256:aa",
            shard: tuple[int, int] | None = None, kernel: str = "6.8", version: str = "bwrap 0.9.0"
            ) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema_version": 1, "tool": "sandboxcheck", "matrix": {"name": "m", "path": "m.yaml", "checks": 4,
                                                                "digest": digest},
        "target": {"name": target, "versions": [version]}, "started": "2026-01-01T00:00:00+00:00",
        "duration_s": 1.0, "results": results,
        "host": {"name": host, "kernel": kernel, "os": {"pretty_name": "Debian 12"}, "landlock_abi": 4}}
    if shard:
        data["shard"] = {"index": shard[0], "count": shard[1], "matrix_checks": 4, "check_ids": IDS}
    return data


def test_shards_merge_back_in_matrix_order() -> None:
    parts = [("s2.json", _report("h", [_result("fs.read.b"), _result("exec.d", "fail", "allowed")], shard=(2, 2))),
             ("s1.json", _report("h", [_result("fs.read.a"), _result("net.c")], shard=(1, 2)))]
    fleet = mg.build(parts)
    assert mg.single_run(fleet) and fleet.incomplete() == []
    report = mg.run_report(fleet)
    data = mg.run_report_dict(fleet, report)
    assert [r["id"] for r in data["results"]] == IDS
    assert data["summary"]["pass"] == 3 and data["summary"]["fail"] == 1
    assert report.exit_code() == 1 and fleet.exit_code() == 1
    assert data["matrix"] == {"name": "m", "path": "m.yaml", "checks": 4, "digest": "sha256:aa"}
    assert data["merged_from"] == ["s2.json", "s1.json"]


def test_a_missing_shard_is_named_and_inconclusive() -> None:
    fleet = mg.build([("s1.json", _report("h", [_result("fs.read.a"), _result("net.c")], shard=(1, 2)))])
    assert fleet.incomplete() == ["bwrap-strict@h: shard 2/2 missing"]
    assert fleet.exit_code() == 3 and not mg.single_run(fleet)


def test_different_matrices_are_refused_unless_allowed() -> None:
    reports = [("a.json", _report("h1", [_result("fs.read.a")])),
               ("b.json", _report("h2", [_result("fs.read.a")], digest="sha256:bb"))]
    with pytest.raises(mg.MergeError, match="different matrices.*--allow-different-matrices"):
        mg.build(reports)
    assert mg.build(reports, allow_different_matrices=True).digests == ["sha256:aa", "sha256:bb"]


def test_fleet_puts_differences_between_hosts_of_one_release_first() -> None:
    same = [_result(c) for c in IDS]
    leaky = [_result("fs.read.a"), _result("fs.read.b", "fail", "allowed"), _result("net.c"), _result("exec.d")]
    reports = [("a.json", _report("alpha", same)), ("b.json", _report("beta", leaky, kernel="6.1")),
               # another release of the same target: not compared with the two above
               ("c.json", _report("gamma", [_result(c, "fail", "allowed") for c in IDS], version="bwrap 0.4.0"))]
    fleet = mg.build(reports)
    assert not mg.single_run(fleet)
    diffs = fleet.differences()
    assert [{k: v for k, v in d.items() if k != "facts"} for d in diffs] == [
        {"target": "bwrap-strict", "release": "bwrap 0.9.0", "check": "fs.read.b", "expect": "denied",
         "hosts": {"alpha": "pass (denied)", "beta": "fail (allowed)"}}]
    # each host's facts beside its verdict: here the kernels differ
    assert "kernel 6.8" in diffs[0]["facts"]["alpha"] and "kernel 6.1" in diffs[0]["facts"]["beta"]
    out = io.StringIO()
    mg.render_markdown(fleet, out)
    text = out.getvalue()
    assert text.index("Differences between hosts") < text.index("Hosts") < text.index("| check |")
    # by target release: the hosts' facts side by side once, then each check that differs
    head = text.index("- bwrap-strict (bwrap 0.9.0) on alpha: Debian 12, kernel 6.8")
    assert "beta: Debian 12, kernel 6.1" in text[head:text.index("\n", head)]
    assert "  - fs.read.b, expect denied: alpha pass (denied), beta fail (allowed)" in text
    assert fleet.exit_code() == 1


def test_duplicates_and_conflicts_are_flagged() -> None:
    reports = [("a.json", _report("h", [_result("fs.read.a"), _result("net.c")])),
               ("a-again.json", _report("h", [_result("fs.read.a"), _result("net.c", "fail", "allowed")]))]
    fleet = mg.build(reports)
    assert not mg.single_run(fleet)  # one target on one host, but the fleet view must show the conflict
    kinds = {d["check"]: d["kind"] for d in fleet.duplicates}
    assert kinds == {"fs.read.a": "duplicate", "net.c": "conflicting"}
    out = io.StringIO()
    mg.render_table(fleet, out, color=False)
    assert "conflicting result: net.c for bwrap-strict on h: a.json: pass (denied); a-again.json: fail (allowed)" \
        in out.getvalue()
    # the worse verdict stands in the grid, marked, whatever the files' order, and sets the exit code
    assert fleet.columns[0].cells["net.c"]["status"] == "fail" and fleet.columns[0].cells["net.c"]["conflicting"]
    assert "allowed (conflicting reports)" in out.getvalue() and fleet.exit_code() == 1
    assert mg.build(reports[::-1]).columns[0].cells["net.c"]["status"] == "fail"


def test_waived_fail_does_not_fail_the_merge() -> None:
    fleet = mg.build([("a.json", _report("h", [_result("fs.read.a", "fail", "allowed", waived="until 2099")]))])
    assert fleet.exit_code() == 0 and mg.run_report(fleet).exit_code() == 0


def test_surveys_become_columns_per_target() -> None:
    survey = {"schema_version": 1, "kind": "survey", "matrix": {"name": "m", "digest": "sha256:aa"},
              "host": {"name": "h"}, "started": "x",
              "targets": [{"name": "landlock", "versions": ["Landlock ABI 7"]}, {"name": "none"}],
              "checks": [{"id": "fs.read.a", "category": "fs-read", "title": "t", "expect": "denied",
                          "severity": "high",
                          "cells": {"landlock": {"observed": "denied", "status": "pass", "excused": False},
                                    "none": {"observed": "allowed", "status": "fail", "excused": False}}}]}
    fleet = mg.build([("s.json", survey)])
    assert [c.key for c in fleet.columns] == ["landlock@h", "none@h"]
    assert fleet.columns[0].release == "Landlock ABI 7" and fleet.exit_code() == 1
    out = io.StringIO()
    mg.render_html(fleet, out)
    assert "<th>none@h</th>" in out.getvalue()


def test_a_shard_with_no_checks_of_a_target_still_counts() -> None:
    empty = _report("h", [], shard=(2, 2))
    fleet = mg.build([("s1.json", _report("h", [_result(c) for c in IDS], shard=(1, 2))), ("s2.json", empty)])
    assert fleet.incomplete() == [] and fleet.exit_code() == 0
    assert fleet.columns[0].files == ["s1.json", "s2.json"]
