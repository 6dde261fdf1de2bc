"""``merge`` against reports a compromised fleet host could hand it.

Each test is an attack that worked before the inputs were checked: a
forged duplicate hiding another host's failure, markdown that shifts or
swallows a job summary, escape sequences and markup in the terminal, a
shard count that eats the memory, wrong types that crashed the merge, an
output link that made it write elsewhere.
"""
from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sandboxcheck import cli
from sandboxcheck import merge as mg

IDS = ["fs.read.a", "env.own"]


def _result(cid: str, status: str = "pass", observed: str = "denied", **extra: Any) -> dict[str, Any]:
    return {"id": cid, "category": cid.split(".")[0], "title": cid, "expect": "denied", "observed": observed,
            "status": status, "evidence": [], "reason": "", "duration_s": 0.1, "waived": None,
            "accepted": False, **extra}


def _report(host: str, results: list[dict[str, Any]], **host_extra: Any) -> dict[str, Any]:
    return {"schema_version": 1, "tool": "sandboxcheck",
            "matrix": {"name": "m", "checks": 2, "digest": "sha256:aa"},
            "target": {"name": "landlock", "versions": ["Landlock ABI 4"]}, "started": "2026-01-01T00:00:00+00:00",
            "duration_s": 1.0, "results": results,
            "host": {"name": host, "kernel": "6.8", "os": {"pretty_name": "Debian 12"}, **host_extra}}


def _files(tmp_path: Path, reports: dict[str, Any]) -> list[str]:
    out = []
    for name, data in reports.items():
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else json.dumps(data))
        out.append(str(path))
    return out


def _honest() -> dict[str, Any]:
    return _report("vm", [_result("fs.read.a"), _result("env.own", "fail", "allowed")])


def test_an_excused_copy_of_a_host_report_does_not_hide_its_failure(tmp_path: Path) -> None:
    forged = _report("vm", [_result("fs.read.a"), _result("env.own", "fail", "allowed", excused=True,
                                                              waived="waived until 2099-01-01: fine")])
    files = _files(tmp_path, {"0-forged.json": forged, "vm.json": _honest()})
    fleet = mg.load(files)
    # a waiver is excused, and a live failure of the same check is not the same result: a conflict
    assert [d["kind"] for d in fleet.duplicates if d["check"] == "env.own"] == ["conflicting"]
    assert fleet.columns[0].cells["env.own"]["excused"] is False
    assert fleet.exit_code() == 1  # before: 0, the forged file sorted first
    assert mg.load(files[::-1]).exit_code() == 1


def test_markdown_cannot_shift_cells_or_swallow_the_summary(tmp_path: Path) -> None:
    evil = "0-runner | x` <img src=https://attacker.example/p> \r<!-- [a](http://x) **b**"
    files = _files(tmp_path, {"a.json": _report("vm", [_result("fs.read.a"), _result("env.own")], label=evil),
                              "b.json": _honest()})
    out = io.StringIO()
    mg.render_markdown(mg.load(files), out)
    text = out.getvalue()
    assert "\r" not in text
    # what markdown would read as HTML or a link is escaped (shown as text)
    assert not re.search(r"(?<!\\)<(?!/?code>)", text) and not re.search(r"(?<!\\)\]\(", text)
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    # every grid row has as many cells as the header: no pipe of a report opened another one
    widths = {len(re.findall(r"(?<!\\)\|", row)) for row in rows}
    assert len(widths) == 1, rows
    assert "❌ allowed" in text  # vm's failure still shows in its own column


@pytest.mark.parametrize("cid", ["env.own\r<!--", "a`b", "x|y", "[evil](http://x)", "Env.Own", "e" * 300])
def test_a_check_id_no_matrix_allows_is_refused(tmp_path: Path, cid: str) -> None:
    files = _files(tmp_path, {"a.json": _report("vm", [_result(cid)])})
    with pytest.raises(mg.MergeError, match=r"a\.json: results\[0\]\.id: .* is not a check id"):
        mg.load(files)


def test_terminal_escapes_and_markup_are_shown_as_text(tmp_path: Path) -> None:
    label = "evil[/] \x1b]0;owned\x07\x1b[2J[link=https://attacker.example]x[/link]\n::error::forged"
    files = _files(tmp_path, {"a.json": _report("vm", [_result("fs.read.a"), _result("env.own")], label=label),
                              "b.json": _honest()})
    out = io.StringIO()
    mg.render_table(mg.load(files), out, color=True)  # before: a MarkupError, exit 4
    text = out.getvalue()
    assert "\x1b]" not in text and "\x1b[2J" not in text and "\x07" not in text
    assert "attacker.example" not in text.split("[link=")[0] or "[link=" in text  # shown, not a link
    assert not any(line.startswith("::") for line in text.splitlines())


@pytest.mark.parametrize("shard, why", [
    ({"index": 1, "count": 10_000_000, "matrix_checks": 2, "check_ids": IDS}, "index and count"),
    ({"index": 3, "count": 2, "matrix_checks": 2, "check_ids": IDS}, "index and count"),
    ({"index": "1", "count": 2}, "index and count"),
    ({"index": True, "count": 2}, "index and count"),
    ({"index": 1, "count": 2, "matrix_checks": 10**9}, "matrix_checks"),
    ({"index": 1, "count": 2, "check_ids": ["fs.read.a", 5]}, "check_ids"),
])
def test_a_shard_entry_out_of_bounds_is_refused(tmp_path: Path, shard: dict[str, Any], why: str) -> None:
    files = _files(tmp_path, {"a.json": {**_honest(), "shard": shard}})
    with pytest.raises(mg.MergeError, match=why):
        mg.load(files)


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["results"][0].update(status=["pass"]), r"results\[0\]\.status"),
    (lambda d: d["results"][0].update(observed="maybe"), r"results\[0\]\.observed"),
    (lambda d: d["results"].append("x"), r"results\[2\]: expected an object"),
    (lambda d: d["results"][0].update(evidence="text"), r"results\[0\]\.evidence"),
    (lambda d: d["host"].update(os="Debian"), r"host\.os"),
    (lambda d: d["host"].update(tools=5), r"host\.tools"),
    (lambda d: d.update(host=[1]), r"host: expected an object"),
    (lambda d: d.update(target="landlock"), r"target: expected an object"),
])
def test_wrong_types_are_a_clear_error_naming_the_field(tmp_path: Path, mutate: Any, field: str) -> None:
    data = _honest()
    mutate(data)
    files = _files(tmp_path, {"a.json": data})
    with pytest.raises(mg.MergeError, match=field):
        mg.load(files)


def test_survey_cells_are_checked_too(tmp_path: Path) -> None:
    survey = {"schema_version": 1, "kind": "survey", "matrix": {"name": "m", "digest": "sha256:aa"},
              "targets": [{"name": "landlock"}], "host": {"name": "vm"},
              "checks": [{"id": "fs.read.a", "expect": "denied", "cells": {"landlock": {"status": "bad"}}}]}
    with pytest.raises(mg.MergeError, match=r"checks\[0\]\.cells\['landlock'\]\.status"):
        mg.load(_files(tmp_path, {"s.json": survey}))


def test_nan_empty_files_and_a_file_given_twice(tmp_path: Path) -> None:
    nan = json.dumps(_honest()).replace('"duration_s": 1.0', '"duration_s": NaN')
    files = _files(tmp_path, {"nan.json": nan, "empty.json": "", "ok.json": _honest()})
    with pytest.raises(mg.MergeError, match="NaN is not a JSON number"):
        mg.load(files[:1])
    with pytest.raises(mg.MergeError, match="an empty file"):
        mg.load(files[1:2])
    with pytest.raises(mg.MergeError, match="given twice"):
        mg.load([files[2], os.path.join(str(tmp_path), ".", "ok.json")])


def test_look_alike_host_names_become_one_host(tmp_path: Path) -> None:
    passing = _report("vm\u200b", [_result("fs.read.a"), _result("env.own")])
    fleet = mg.load(_files(tmp_path, {"a.json": passing, "b.json": _honest()}))
    assert [c.host for c in fleet.columns] == ["vm"]  # one column: the zero-width space is gone
    assert any(d["kind"] == "conflicting" for d in fleet.duplicates) and fleet.exit_code() == 1


def test_reports_that_disagree_about_their_host_are_flagged(tmp_path: Path) -> None:
    claim = _report("vm", [], kernel="9.9.9-fake")
    fleet = mg.load(_files(tmp_path, {"0.json": claim, "vm.json": _honest()}))
    assert len(fleet.disagreements()) == 1 and "9.9.9-fake" in fleet.disagreements()[0]
    assert "host facts: landlock@vm: its reports disagree" in "\n".join(mg._problems(fleet))


def test_a_gap_is_not_a_difference_between_hosts(tmp_path: Path) -> None:
    other = _report("vm2", [_result("fs.read.a")])  # env.own missing on vm2
    fleet = mg.load(_files(tmp_path, {"a.json": other, "b.json": _honest()}))
    assert fleet.differences() == []


def test_a_grid_too_large_is_refused(tmp_path: Path) -> None:
    ids = [f"fs.read.c{i}" for i in range(2000)]
    survey = {"schema_version": 1, "kind": "survey", "matrix": {"name": "m", "digest": "sha256:aa"},
              "targets": [{"name": f"t{i}"} for i in range(600)], "host": {"name": "vm"},
              "shard": {"index": 1, "count": 1, "matrix_checks": 2000, "check_ids": ids},
              "checks": [{"id": "fs.read.c0", "cells": {"t0": {"status": "pass", "observed": "denied"}}}]}
    with pytest.raises(mg.MergeError, match="too large a merge"):
        mg.load(_files(tmp_path, {"s.json": survey}))


def test_output_replaces_a_planted_link_and_a_failed_merge_keeps_the_old_file(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (tmp_path / "fleet.md").symlink_to(victim)
    files = _files(tmp_path, {"a.json": _honest(), "b.json": _report("vm2", [_result("fs.read.a")])})
    res = CliRunner().invoke(cli.main, ["merge", *files, "-f", "markdown", "-o", str(tmp_path / "fleet.md")])
    assert res.exit_code == 1, res.output
    assert victim.read_text() == "keep me\n"  # the link was replaced, not written through
    assert not (tmp_path / "fleet.md").is_symlink() and "landlock@vm" in (tmp_path / "fleet.md").read_text()
    assert not list(tmp_path.glob(".sandboxcheck-*"))
    # a merge that is refused leaves an existing output as it was
    (tmp_path / "bad.json").write_text(json.dumps({**_honest(), "host": [1]}))
    res = CliRunner().invoke(cli.main, ["merge", str(tmp_path / "bad.json"), "-o", str(tmp_path / "fleet.md")])
    assert res.exit_code == 2 and "landlock@vm" in (tmp_path / "fleet.md").read_text()
