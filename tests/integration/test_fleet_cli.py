"""--shard, --anonymise-host and merge against real sandboxes: N shards merged equal one run."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleet_kit import shim_env
from marks import requires_bwrap, requires_landlock

pytestmark = pytest.mark.integration


def _cli(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sandboxcheck", *args], cwd=tmp, env=shim_env(tmp, **env),
                          capture_output=True, text=True, timeout=600)


def _verdicts(report: dict) -> list[tuple[str, str, str, str]]:
    return [(r["id"], r["expect"], r["observed"], r["status"]) for r in report["results"]]


@requires_landlock
def test_three_shards_merged_equal_the_unsharded_run(tmp_path: Path) -> None:
    whole = _cli(tmp_path, "run", "baseline", "-t", "landlock", "-f", "json", "-o", "whole.json")
    assert whole.returncode in (0, 1), whole.stderr
    for k in (1, 2, 3):
        part = _cli(tmp_path, "run", "baseline", "-t", "landlock", "--shard", f"{k}/3", "-f", "json",
                    "-o", f"part{k}.json")
        assert part.returncode in (0, 1, 3), part.stderr
    parts = [json.loads((tmp_path / f"part{k}.json").read_text()) for k in (1, 2, 3)]
    assert sorted(len(p["results"]) for p in parts) == [14, 14, 15]
    assert {p["matrix"]["digest"] for p in parts} == {json.loads((tmp_path / "whole.json").read_text())
                                                      ["matrix"]["digest"]}
    assert [p["shard"]["spec"] for p in parts] == ["1/3", "2/3", "3/3"]
    merged = _cli(tmp_path, "merge", "part3.json", "part1.json", "part2.json", "-f", "json", "-o", "merged.json")
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("whole.json", "merged.json"))
    assert _verdicts(b) == _verdicts(a)
    assert b["summary"] == a["summary"] and b["matrix"] == a["matrix"]
    assert merged.returncode == whole.returncode
    assert b["host"]["kernel"] == a["host"]["kernel"] and b["target"]["name"] == "landlock"
    # The table of the merged report is the run's own table.
    table = _cli(tmp_path, "merge", "part1.json", "part2.json", "part3.json")
    assert f"{a['summary']['pass']} passed, {a['summary']['fail']} failed" in table.stdout


@requires_bwrap
@requires_landlock
def test_survey_shards_merged_equal_the_whole_survey(tmp_path: Path) -> None:
    targets = ["-t", "landlock", "-t", "bwrap-strict"]
    whole = _cli(tmp_path, "survey", "baseline", *targets, "-f", "json", "-o", "whole.json")
    for k in (1, 2):
        _cli(tmp_path, "survey", "baseline", *targets, "--shard", f"{k}/2", "-f", "json", "-o", f"p{k}.json")
    merged = _cli(tmp_path, "merge", "p1.json", "p2.json", "-f", "json", "-o", "merged.json")
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("whole.json", "merged.json"))
    cells_a = {(c["id"], t): (v["status"], v["observed"]) for c in a["checks"] for t, v in c["cells"].items()}
    cells_b = {(c["id"], t): (v["status"], v["observed"]) for c in b["checks"] for t, v in c["cells"].items()}
    assert len(cells_a) == 86 and cells_b == cells_a
    assert merged.returncode == whole.returncode == a["exit_code"] == b["exit_code"]
    assert b["kind"] == "survey"  # the parts of one survey merge back into it


@requires_landlock
def test_anonymised_host_name_is_nowhere_in_the_report(tmp_path: Path) -> None:
    proc = _cli(tmp_path, "run", "baseline", "-t", "landlock", "--shard", "1/8", "--anonymise-host", "-f", "json")
    report = json.loads(proc.stdout)
    assert report["host"]["id"].startswith("host-") and "name" not in report["host"]
    assert f'"{os.uname().nodename}"' not in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["run", "baseline", "--shard", "0/3"], "error: --shard '0/3': K must be from 1 to 3 (K is 1-based; did you mean 1/3?)"),
    (["survey", "baseline", "-t", "none", "--shard", "2"], "error: --shard '2': expected K/N"),
])
def test_bad_shard_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = _cli(tmp_path, *args)
    assert proc.returncode == 2 and proc.stderr.strip().startswith(message)
    assert len(proc.stderr.strip().splitlines()) == 1


@requires_landlock
def test_merge_refuses_reports_of_different_matrices(tmp_path: Path) -> None:
    matrix = tmp_path / "small.yaml"
    from sandboxcheck.resources import resolve_matrix

    text = Path(resolve_matrix("baseline")).read_text()
    matrix.write_text(text.replace("name: baseline", "name: small", 1))
    _cli(tmp_path, "run", "baseline", "-t", "landlock", "--shard", "1/8", "-f", "json", "-o", "a.json")
    _cli(tmp_path, "run", str(matrix), "-t", "landlock", "--shard", "1/8", "-f", "json", "-o", "b.json")
    proc = _cli(tmp_path, "merge", "a.json", "b.json")
    assert proc.returncode == 2 and "different matrices" in proc.stderr and "--allow-different-matrices" in proc.stderr
    allowed = _cli(tmp_path, "merge", "a.json", "b.json", "--allow-different-matrices", "-f", "markdown")
    assert allowed.returncode in (0, 1, 3) and "the reports are of different matrices" in allowed.stdout
    missing = _cli(tmp_path, "merge", "nope.json")
    assert missing.returncode == 2 and missing.stderr.startswith("error: nope.json")


@requires_landlock
def test_survey_shards_merged_are_the_unsharded_surveys_json(tmp_path: Path) -> None:
    refs = ["-t", "landlock", "-t", "none"]
    whole = _cli(tmp_path, "survey", "baseline", *refs, "-f", "json", "-o", "whole.json")
    assert whole.returncode == 1, whole.stderr  # none fails
    for k in (1, 2, 3):  # 86 cells: the middle part holds the end of landlock and the start of none
        part = _cli(tmp_path, "survey", "baseline", *refs, "--shard", f"{k}/3", "-f", "json", "-o", f"s{k}.json")
        assert part.returncode in (0, 1, 3), part.stderr
    merged = _cli(tmp_path, "merge", "s2.json", "s3.json", "s1.json", "-f", "json", "-o", "merged.json")
    assert merged.returncode == 1, merged.stderr
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("whole.json", "merged.json"))
    assert b["kind"] == "survey" and "--shard" not in b["command"] and b["exit_code"] == a["exit_code"] == 1
    assert b["matrix"] == a["matrix"] and b["merged_from"] == ["s2.json", "s3.json", "s1.json"]

    def cells(d: dict) -> list:
        return [(c["id"], c["expect"], name, v["status"], v["observed"], v["errno"], v["excused"])
                for c in d["checks"] for name, v in c["cells"].items()]

    assert cells(b) == cells(a) and len(cells(a)) == 86
    keep = ("name", "ref", "versions", "available", "summary", "command")
    assert [{k: t[k] for k in keep} for t in b["targets"]] == [{k: t[k] for k in keep} for t in a["targets"]]
    assert all(t["preflight"]["ran"] for t in b["targets"])
    # one part missing: no survey is claimed, the fleet view names the gap
    gap = _cli(tmp_path, "merge", "s1.json", "s3.json", "-f", "json")
    assert gap.returncode == 1 and json.loads(gap.stdout)["kind"] == "fleet"
    assert "shard 2/3 missing" in " ".join(json.loads(gap.stdout)["incomplete"])
