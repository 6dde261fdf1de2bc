"""``sandboxcheck survey``: one matrix, several targets, one grid in four formats."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from marks import requires_bwrap
from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.run.options import RunOptions
from sandboxcheck.report.registry import render
from sandboxcheck.survey import LEGEND, load_targets, run_survey
from sandboxcheck.targets.base import TargetError

pytestmark = pytest.mark.integration

SMALL = """\
version: 1
name: small
checks:
  - id: fs.read.absolute
    category: fs-read
    title: Read a canary file outside the workspace by absolute path
    probe: read_file
    args: {path: "{outside}/secret.txt"}
    expect: denied
  - id: network.tcp
    category: network
    title: TCP connect to a harness-owned sink on loopback
    probe: tcp_send
    args: {host: 127.0.0.1, port: "{tcp_port}", payload: "tcp {token}"}
    expect: denied
  - id: fs.read.workspace
    category: fs-read
    title: Read a file inside the workspace (must work)
    probe: read_file
    args: {path: "{workspace}/notes.txt"}
    evidence: {kind: leak, labels: [workspace-file]}
    expect: allowed
  - id: later.skipped
    category: exec
    title: Skipped on purpose
    probe: hello
    args: {left: A, right: B}
    evidence: {kind: marker, marker: "A-B"}
    expect: allowed
    skip: not today
"""
GHOST = ("name: ghost\nrequires: [{name: sandboxcheck-no-such-binary, install: 'apt-get install ghost'}]\n"
         "command: [sandboxcheck-no-such-binary, '{cmd}']\n")


def sc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sandboxcheck.cli", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


@pytest.fixture
def ghost(tmp_path: Path) -> Path:
    path = tmp_path / "ghost.yaml"
    path.write_text(GHOST)
    return path


@requires_bwrap
def test_json_cells_and_exit_1(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    proc = sc("survey", str(small), "-t", "none", "-t", "bwrap-strict", "-f", "json", "-o", str(out))
    assert proc.returncode == 1, proc.stderr
    data = json.loads(out.read_text())
    assert (data["schema_version"], data["kind"], data["exit_code"]) == (1, "survey", 1)
    assert [t["name"] for t in data["targets"]] == ["none", "bwrap-strict"]
    assert data["targets"][1]["versions"][0].startswith("bwrap ")
    assert data["targets"][1]["summary"]["fail"] == 0
    assert data["command"].startswith("sandboxcheck survey ")
    cells = {c["id"]: {t: (v["observed"], v["status"]) for t, v in c["cells"].items()}
             for c in data["checks"]}
    assert cells == {
        "fs.read.absolute": {"none": ("allowed", "fail"), "bwrap-strict": ("denied", "pass")},
        "network.tcp": {"none": ("allowed", "fail"), "bwrap-strict": ("denied", "pass")},
        "fs.read.workspace": {"none": ("allowed", "pass"), "bwrap-strict": ("allowed", "pass")},
        "later.skipped": {"none": ("unknown", "skip"), "bwrap-strict": ("unknown", "skip")},
    }
    assert [c["id"] for c in data["checks"]] == ["fs.read.absolute", "network.tcp", "fs.read.workspace",
                                                 "later.skipped"]


@requires_bwrap
def test_markdown_grid(small: Path) -> None:
    proc = sc("survey", str(small), "-t", "none", "-t", "bwrap-strict", "-f", "markdown")
    assert proc.returncode == 1, proc.stderr
    md = proc.stdout
    assert md.startswith("# sandboxcheck survey: small\n")
    assert re.search(r"^Generated \d{4}-\d\d-\d\dT.* by sandboxcheck ", md, re.M)
    assert f"```sh\nsandboxcheck survey {small} -t none -t bwrap-strict -f markdown\n```" in md
    assert "| <code>bwrap-strict</code> | bwrap 0." in md
    assert LEGEND in md
    assert "| check | expect | <code>none</code> | <code>bwrap-strict</code> |" in md
    assert "| `fs.read.absolute` | denied | ✗ allowed | ✓ denied |" in md
    assert "| `fs.read.workspace` | allowed | ✓ allowed | ✓ allowed |" in md
    assert "| `later.skipped` | allowed | - skip | - skip |" in md
    assert "| **failed** | | **2** | **0** |" in md


@requires_bwrap
def test_html_is_one_self_contained_page(small: Path, ghost: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.html"
    proc = sc("survey", str(small), "-t", "none", "-t", "bwrap-strict", "-t", str(ghost),
              "-f", "html", "-o", str(out))
    assert proc.returncode == 1, proc.stderr
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<style>" in page
    assert not re.search(r"https?://", page)
    assert not re.search(r"<script|<link|<img|<iframe|\bsrc=|\bhref=|@import|url\(", page, re.I)
    assert '<td class="cell fail" title="canary of outside/secret.txt' in page
    assert '<td class="cell pass"' in page and '<div class="verdict">✓ denied</div>' in page
    assert '<td class="cell na"' in page and '<div class="verdict">n/a</div></td>' in page
    assert "ghost: not available here: sandboxcheck-no-such-binary not found on PATH: apt-get install ghost" in page


@requires_bwrap
def test_exit_0_when_every_cell_passes(small: Path) -> None:
    proc = sc("survey", str(small), "-t", "bwrap-strict")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert LEGEND.split(";")[0] in proc.stdout


@requires_bwrap
def test_unavailable_target_is_a_column_of_na_and_exit_3(small: Path, ghost: Path) -> None:
    proc = sc("survey", str(small), "-t", "bwrap-strict", "-t", str(ghost), "-f", "markdown")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "| `fs.read.absolute` | denied | ✓ denied | n/a |" in proc.stdout
    assert "| <code>ghost</code> | - | n/a |" in proc.stdout
    assert ("1. ghost: not available here: sandboxcheck-no-such-binary not found on PATH: "
            "apt-get install ghost") in proc.stdout


def test_inconclusive_only_exits_3(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    proc = sc("survey", str(small), "-t", "/nonexistent/sandbox {cmd}", "-f", "json", "-o", str(out))
    assert proc.returncode == 3, proc.stderr
    data = json.loads(out.read_text())
    assert [t["name"] for t in data["targets"]] == ["/nonexistent/sandbox"]  # an inline target, named by its command
    statuses = {c["id"]: c["cells"]["/nonexistent/sandbox"]["status"] for c in data["checks"]}
    assert statuses == {"fs.read.absolute": "inconclusive", "network.tcp": "inconclusive",
                        "fs.read.workspace": "inconclusive", "later.skipped": "skip"}


def test_bad_input_exits_2(small: Path) -> None:
    proc = sc("survey", str(small), "-t", "no-such-target")
    assert proc.returncode == 2 and "unknown target 'no-such-target'" in proc.stderr
    proc = sc("survey", str(small), "-t", "none", "--target-opt", "settings=/etc/hostname")
    assert proc.returncode == 2
    assert "--target-opt settings: none of the targets takes this option" in proc.stderr
    proc = sc("survey", str(small), "-t", "none", "--target-opt", "nokeyvalue")
    assert proc.returncode == 2 and "expected KEY=VALUE" in proc.stderr
    proc = sc("survey", str(small))
    assert proc.returncode == 2 and "--target" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_run_takes_target_opt_too(small: Path) -> None:
    proc = sc("run", str(small), "-t", "none", "--target-opt", "settings=/etc/hostname")
    assert proc.returncode == 2
    assert "target 'none' takes no option 'settings'; its options: none" in proc.stderr


def test_options_go_only_to_targets_that_take_them(tmp_path: Path) -> None:
    settings = tmp_path / "srt.json"
    settings.write_text("{}")
    loaded = load_targets(["none", "srt-settings"], {"settings": str(settings)})
    assert [t.name for _, t in loaded] == ["none", "srt-settings"]
    assert loaded[1][1].option_values() == {"settings": str(settings)}  # type: ignore[attr-defined]
    with pytest.raises(TargetError, match="none of the targets takes this option"):
        load_targets(["none"], {"settings": str(settings)})


def test_same_name_twice_gets_distinct_columns(small: Path) -> None:
    survey = run_survey(load_matrix(small), load_targets(["none", "none"]), RunOptions(jobs=2))
    assert [c.name for c in survey.columns] == ["none", "none#2"]
    buf = io.StringIO()
    render("survey", "table", survey, buf)
    text = buf.getvalue()
    assert "none#2" in text and "✗ allowed" in text and LEGEND.split(";")[0] in text
    assert survey.exit_code() == 1
