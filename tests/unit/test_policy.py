"""Waivers (with expiry) and accepted baselines."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from sandboxcheck.matrix.load import MatrixError, parse_matrix
from sandboxcheck.model import Observed, Result, Status, Waiver
from sandboxcheck.policy import BaselineError, apply_baseline, apply_waivers, load_baseline


def res(cid: str, status: Status, observed: Observed = Observed.ALLOWED) -> Result:
    return Result(id=cid, category="env", title=cid, expect="denied", observed=observed, status=status,
                  errno=None, evidence=("e",), reason="why", duration_s=0.1)


TODAY = dt.date(2026, 11, 22)


def test_active_waiver_excuses_a_fail() -> None:
    w = Waiver("env.own", "vendor fix pending", "2026-12-31")
    [out] = apply_waivers([res("env.own", Status.FAIL)], [w], "srt", today=TODAY)
    assert out.status is Status.FAIL and out.excused
    assert out.waived == "waived until 2026-12-31: vendor fix pending"


def test_waiver_on_its_last_day_still_applies() -> None:
    [out] = apply_waivers([res("a.b", Status.FAIL)], [Waiver("a.b", "r", "2026-11-22")], "t", today=TODAY)
    assert out.excused


def test_expired_waiver_stops_waiving_and_says_so() -> None:
    [out] = apply_waivers([res("a.b", Status.FAIL)], [Waiver("a.b", "old reason", "2026-11-21")], "t",
                          today=TODAY)
    assert not out.excused and out.waived is None
    assert "waiver expired on 2026-11-21, no longer waived: old reason" in out.reason


def test_waiver_for_another_target_does_not_apply() -> None:
    w = Waiver("a.b", "r", "2027-01-01", target="srt")
    [out] = apply_waivers([res("a.b", Status.FAIL)], [w], "bwrap-strict", today=TODAY)
    assert not out.excused
    [out] = apply_waivers([res("a.b", Status.FAIL)], [w], "srt", today=TODAY)
    assert out.excused


def test_a_pass_is_never_marked_waived() -> None:
    [out] = apply_waivers([res("a.b", Status.PASS)], [Waiver("a.b", "r", "2027-01-01")], "t", today=TODAY)
    assert out.waived is None and not out.excused


def test_matrix_waivers_are_loaded_and_checked() -> None:
    text = """
checks:
  - id: fs.read.absolute
    category: fs-read
    title: t
    probe: read_file
    args: {path: "{outside}/secret.txt"}
    expect: denied
waivers:
  - id: fs.read.absolute
    reason: accepted until the vendor ships the fix
    expires: 2027-01-31
"""
    m = parse_matrix(text, "m.yaml")
    assert m.waivers == (Waiver("fs.read.absolute", "accepted until the vendor ships the fix", "2027-01-31",
                                None, "m.yaml", 10),)
    bad = text.replace("id: fs.read.absolute\n    reason", "id: fs.read.absolut\n    reason")
    with pytest.raises(MatrixError) as err:
        parse_matrix(bad, "m.yaml")
    assert [str(p) for p in err.value.problems] == [
        "m.yaml:10: waivers[0].id: waiver for unknown check id 'fs.read.absolut' "
        "(did you mean 'fs.read.absolute'?)"]
    with pytest.raises(MatrixError) as err:
        parse_matrix(text.replace("2027-01-31", "2027-02-30"), "m.yaml")
    assert "'2027-02-30' is not a date (YYYY-MM-DD)" in str(err.value)


def test_baseline_accepts_only_the_same_deviation(tmp_path: Path) -> None:
    accepted = tmp_path / "accepted.json"
    accepted.write_text(json.dumps({"schema_version": 1, "results": [
        {"id": "a.b", "status": "fail", "observed": "allowed"},
        {"id": "c.d", "status": "inconclusive", "observed": "unknown"}]}))
    base = load_baseline(accepted)
    out = apply_baseline([res("a.b", Status.FAIL), res("c.d", Status.FAIL),
                          res("e.f", Status.FAIL), res("g.h", Status.PASS, Observed.DENIED)], base)
    assert [r.accepted for r in out] == [True, False, False, False]


@pytest.mark.parametrize("content, message", [
    ("not json", "not a JSON report"),
    ('{"results": 3}', "not a sandboxcheck JSON report"),
    ('{"schema_version": 9, "results": []}', "unsupported schema_version 9"),
])
def test_bad_baseline_files(tmp_path: Path, content: str, message: str) -> None:
    p = tmp_path / "b.json"
    p.write_text(content)
    with pytest.raises(BaselineError, match=message):
        load_baseline(p)
    with pytest.raises(BaselineError, match="cannot read"):
        load_baseline(tmp_path / "missing.json")
