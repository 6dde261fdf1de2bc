"""The command line as a new user meets it, end to end against real sandboxes: widths, colour, hints, fixes."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from marks import requires_bwrap, requires_landlock
from test_cli import private_tmp  # noqa: F401 - autouse: each test's runs get their own temp folder
from sandboxcheck.targets.registry import preset_names

pytestmark = pytest.mark.integration

LONG_ID = "fs.read.absolute-outside-root"
FIX = "Mount or allow only the workspace and system folders; deny reads elsewhere."
MATRIX = f"""name: ux
checks:
  - id: {LONG_ID}
    category: fs-read
    title: read a file outside the workspace
    probe: read_file
    args: {{path: "{{outside}}/secret.txt"}}
    expect: denied
    severity: high
    fix: {FIX}
  - id: fs.read.workspace
    category: fs-read
    title: read a file in the workspace
    probe: read_file
    args: {{path: "{{workspace}}/notes.txt"}}
    expect: allowed
"""
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])[;m]")


@pytest.fixture
def matrix(tmp_path: Path) -> Path:
    path = tmp_path / "ux.yaml"
    path.write_text(MATRIX)
    return path


def sc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real entry point (``python -m sandboxcheck``), output piped, with ``env`` added."""
    full = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NO_COLOR", "FORCE_COLOR")}
    return subprocess.run([sys.executable, "-m", "sandboxcheck", *args], capture_output=True, text=True,
                          env={**full, **(env or {})}, timeout=300)


@requires_bwrap
@pytest.mark.parametrize("columns", ["80", "132"])
def test_piped_table_fits_COLUMNS_one_line_per_check_ids_whole(matrix: Path, columns: str) -> None:
    proc = sc("run", str(matrix), "-t", "bwrap-loose", "--no-control", env={"COLUMNS": columns})
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert max(map(len, lines)) <= int(columns), proc.stdout
    row = next(line for line in lines if LONG_ID in line)
    assert row.split()[:5] == [LONG_ID, "denied", "allowed", "FAIL", "high"]
    assert sum(LONG_ID in line for line in lines) == 1
    assert FIX not in proc.stdout  # the fix comes with -v
    assert "-v shows each check's full reason and how to fix it" in proc.stdout
    assert "built-in" not in proc.stderr  # a target was given: no hint


@requires_bwrap
def test_verbose_table_and_file_reports_carry_the_fix(matrix: Path, tmp_path: Path) -> None:
    junit, text = tmp_path / "r.xml", tmp_path / "r.txt"
    proc = sc("run", str(matrix), "-t", "bwrap-loose", "--no-control", "-v",
              "--report", f"junit:{junit}", "--report", f"table:{text}", env={"COLUMNS": "80"})
    assert proc.returncode == 1, proc.stderr
    assert f"fix: {FIX}" in " ".join(proc.stdout.split())
    assert "canary of outside/secret.txt in the target's stdout" in proc.stdout
    assert max(map(len, proc.stdout.splitlines())) <= 80
    failure = ET.parse(junit).find(".//failure")
    assert failure is not None and f"fix: {FIX}" in (failure.text or "")
    assert f"fix: {FIX}" in " ".join(text.read_text().split())  # a table file is always in full


@requires_bwrap
@pytest.mark.parametrize("env, coloured", [({"FORCE_COLOR": "1"}, True),
                                           ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False)])
def test_colour_follows_NO_COLOR_and_FORCE_COLOR(matrix: Path, env: dict[str, str], coloured: bool) -> None:
    proc = sc("run", str(matrix), "-t", "bwrap-loose", "--no-control", env=env)
    assert proc.returncode == 1, proc.stderr
    assert bool(COLOUR.search(proc.stdout)) is coloured


@requires_landlock
def test_run_without_target_says_it_tests_the_landlock_launcher(matrix: Path) -> None:
    proc = sc("run", str(matrix), "--no-control")
    assert proc.returncode in (0, 1), proc.stderr
    assert proc.stderr.splitlines()[0].startswith("testing sandboxcheck's built-in landlock launcher; "
                                                  "use --target NAME|'cmd {cmd}'|FILE")
    assert "against target landlock" in proc.stdout
    assert "NoNewPrivs - setuid programs (sudo, su) cannot gain privileges" in " ".join(proc.stdout.split())


def test_debug_is_accepted_after_the_command(matrix: Path) -> None:
    proc = sc("validate", str(matrix), "--debug")
    assert proc.returncode == 0, proc.stderr
    assert "ok (2 checks)" in proc.stdout


def test_targets_piped_is_one_line_per_preset_with_whole_names() -> None:
    proc = sc("targets")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    names = preset_names()
    assert len(lines) == len(names) + 1
    assert [line.split()[0] for line in lines[:-1]] == names
    assert all(line.split()[1] in ("yes", "no:") for line in lines[:-1])
    assert max(map(len, lines)) <= 80
    assert "…" not in " ".join(line.split()[0] for line in lines[:-1])


def test_targets_name_and_verbose_show_the_preset_in_full() -> None:
    one = sc("targets", "bwrap-strict")
    assert one.returncode == 0, one.stderr
    assert one.stdout.splitlines()[0] == "bwrap-strict"
    text = " ".join(one.stdout.split())
    assert "available:" in text and "version:" in text and "description: bubblewrap" in text
    assert "…" not in one.stdout
    every = sc("targets", "-v")
    assert every.returncode == 0
    assert sum(line in preset_names() for line in every.stdout.splitlines()) == len(preset_names())


@pytest.mark.parametrize("env, coloured", [({"FORCE_COLOR": "1"}, True),
                                           ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False)])
def test_survey_grid_follows_NO_COLOR_too(matrix: Path, env: dict[str, str], coloured: bool) -> None:
    proc = sc("survey", str(matrix), "-t", "none", "--no-control", env=env)
    assert proc.returncode == 1, proc.stderr
    assert LONG_ID in proc.stdout
    assert bool(COLOUR.search(proc.stdout)) is coloured
