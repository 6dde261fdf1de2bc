"""diff and compare on real runs: verdicts on status, the gate, matrices that differ, --target-opt."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from marks import requires_bwrap
from sandboxcheck.resources import matrices_dir
from sandboxcheck.targets.registry import load_target

pytestmark = [pytest.mark.integration, requires_bwrap]


def sc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sandboxcheck.cli", *args], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def strict_to_loose(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """One real compare of the baseline: bwrap-strict before, bwrap-loose after (and both reports)."""
    d = tmp_path_factory.mktemp("compare")
    before, after = d / "strict.json", d / "loose.json"
    proc = sc("compare", "baseline", "--before", "bwrap-strict", "--after", "bwrap-loose", "--format", "json",
              "--report", f"before:{before}", "--report", f"after:{after}")
    assert proc.returncode == 1, proc.stderr  # the loose one regressed
    return before, after, json.loads(proc.stdout)


def test_compare_names_what_regressed(strict_to_loose: tuple[Path, Path, dict]) -> None:
    _, _, out = strict_to_loose
    assert out["command"] == "compare" and out["matrix"] == "baseline"
    changes = {c["id"]: c for c in out["changes"]}
    ssh = changes["credentials.ssh-key"]
    assert (ssh["verdict"], ssh["change"], ssh["expect"], ssh["before_status"], ssh["after_status"],
            ssh["severity"]) == ("regression", "loosened", "denied", "pass", "fail", "critical")
    assert changes["network.tcp"]["verdict"] == "regression"
    # Still denied, but by the read-only root instead of an absent path: no status change.
    assert (changes["fs.write.outside"]["change"], changes["fs.write.outside"]["verdict"]) == \
        ("failure-mode-changed", "unchanged")
    assert changes["fs.read.workspace"]["change"] == "unchanged"
    assert out["verdicts"] == {"regression": 33, "improvement": 0, "unchanged": 10}
    # Both targets' tool versions are in the reports compare keeps.
    assert out["before_target"]["version"].startswith("bwrap ")


def test_diff_of_the_saved_reports_agrees_both_ways(strict_to_loose: tuple[Path, Path, dict]) -> None:
    before, after, out = strict_to_loose
    assert json.loads(before.read_text())["target"]["versions"][0].startswith("bwrap ")
    forward = sc("diff", str(before), str(after), "--format", "json")
    assert forward.returncode == 1
    forward_changes = json.loads(forward.stdout)["changes"]
    assert {c["id"]: (c["verdict"], c["change"]) for c in forward_changes} == \
        {c["id"]: (c["verdict"], c["change"]) for c in out["changes"]}
    # The reverse direction is 33 improvements: the gate passes.
    backward = sc("diff", str(after), str(before), "--format", "markdown")
    assert backward.returncode == 0, backward.stdout
    assert backward.stdout.startswith("## sandboxcheck diff baseline: <code>bwrap-loose (bwrap ")
    assert ("| improvement | <code>credentials.ssh-key</code> | denied | FAIL allowed | PASS denied | critical | tightened |"
            in backward.stdout)
    assert "33 improvements, 10 unchanged" in backward.stdout
    table = sc("diff", str(before), str(after))
    assert table.stdout.splitlines()[0].startswith("sandboxcheck diff baseline: bwrap-strict (bwrap ")
    assert sc("diff", str(before), str(after), "--fail-on", "tightened").returncode == 0
    assert sc("diff", str(after), str(before), "--fail-on", "improvement").returncode == 1
    # The old default still works when spelled out: it keys on the observation.
    assert sc("diff", str(before), str(after), "--fail-on", "loosened,now-inconclusive").returncode == 1
    bogus = sc("diff", str(before), str(after), "--fail-on", "bogus")
    assert bogus.returncode == 2 and "unknown change kind" in bogus.stderr


def sub_matrix(path: Path, name: str, ids: set[str]) -> Path:
    """A matrix ``name`` at ``path`` made of the bundled baseline's checks ``ids``."""
    data = yaml.safe_load((matrices_dir() / "baseline.yaml").read_text(encoding="utf-8"))
    data.update(name=name, checks=[c for c in data["checks"] if c["id"] in ids], waivers=[])
    assert {c["id"] for c in data["checks"]} == ids
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_diff_refuses_reports_of_different_matrices(strict_to_loose: tuple[Path, Path, dict],
                                                    tmp_path: Path) -> None:
    baseline_report = strict_to_loose[1]
    matrix = sub_matrix(tmp_path / "mini.yaml", "mini", {"fs.read.absolute"})
    mini = tmp_path / "mini.json"
    run = sc("run", str(matrix), "--target", "bwrap-loose", "--format", "json", "--output", str(mini))
    assert run.returncode == 1, run.stderr  # bwrap-loose reads outside
    refused = sc("diff", str(baseline_report), str(mini))
    assert refused.returncode == 2
    assert refused.stdout == ""
    message = refused.stderr.strip()
    assert message.startswith(f"error: {baseline_report} and {mini} are reports of different matrices: "
                              f"matrix 'baseline' -> 'mini'; {baseline_report} has 42 checks that {mini} lacks")
    assert message.endswith("pass --allow-different-matrices")
    allowed = sc("diff", str(baseline_report), str(mini), "--allow-different-matrices", "--format", "json")
    assert allowed.returncode == 0, allowed.stdout
    data = json.loads(allowed.stdout)
    assert data["note"].startswith("different matrices: matrix 'baseline' -> 'mini'")
    assert data["summary"]["removed"] == 42
    # A matrix that only grew is the same matrix: its new failing check is a regression.
    grown = sc("diff", str(mini), str(baseline_report), "--format", "json")
    assert grown.returncode == 2  # the names differ
    mini_data = json.loads(mini.read_text())
    mini_data["matrix"]["name"] = "baseline"
    same_name = tmp_path / "mini-as-baseline.json"
    same_name.write_text(json.dumps(mini_data))
    grown = sc("diff", str(same_name), str(baseline_report), "--format", "json")
    assert grown.returncode == 1
    verdicts = {c["id"]: (c["verdict"], c["change"]) for c in json.loads(grown.stdout)["changes"]}
    assert verdicts["credentials.ssh-key"] == ("regression", "new")  # new, and it fails
    assert verdicts["fs.read.absolute"] == ("unchanged", "unchanged")


def test_compare_same_target_is_stable() -> None:
    proc = sc("compare", "baseline", "--before", "bwrap-strict", "--after", "bwrap-strict", "--format", "json")
    assert proc.returncode == 0, proc.stdout
    data = json.loads(proc.stdout)
    assert data["summary"]["unchanged"] == 43, data["summary"]
    assert data["verdicts"]["unchanged"] == 43


def test_compare_gives_target_opt_to_the_target_that_takes_it(tmp_path: Path) -> None:
    if load_target("srt-settings").unavailable():
        pytest.skip("srt is not installed here (set SANDBOXCHECK_TOOLS or run .ci/run)")
    matrix = sub_matrix(tmp_path / "m.yaml", "srt-small", {"credentials.ssh-key", "fs.write.workspace"})
    settings = tmp_path / "srt.json"
    settings.write_text(json.dumps({
        "network": {"allowedDomains": [], "deniedDomains": []},
        "filesystem": {"denyRead": ["~/.ssh"], "allowRead": [], "allowWrite": ["."], "denyWrite": []}}))
    # Default settings: only the workspace becomes writable. An allowed check that starts to
    # work is an improvement (the observation loosened), and the gate passes.
    plain = sc("compare", str(matrix), "--before", "srt", "--after", "srt-settings", "--format", "json")
    assert plain.returncode == 0, plain.stderr
    moved = {c["id"]: (c["verdict"], c["change"]) for c in json.loads(plain.stdout)["changes"]
             if c["verdict"] != "unchanged"}
    assert moved == {"fs.write.workspace": ("improvement", "loosened")}
    # Your settings (srt, which takes no option, is left alone): ~/.ssh hidden as well.
    mine = sc("compare", str(matrix), "--before", "srt", "--after", "srt-settings", "--format", "json",
              "--target-opt", f"settings={settings}")
    assert mine.returncode == 0, mine.stderr
    moved = {c["id"]: (c["verdict"], c["change"]) for c in json.loads(mine.stdout)["changes"]
             if c["verdict"] != "unchanged"}
    assert moved == {"fs.write.workspace": ("improvement", "loosened"),
                     "credentials.ssh-key": ("improvement", "tightened")}
    bad = sc("compare", str(matrix), "--before", "srt", "--after", "srt-settings", "--target-opt", "bogus=1")
    assert bad.returncode == 2
    assert "--target-opt bogus: none of the targets takes this option" in bad.stderr
