"""--only and -k on the command line: run, survey and compare select the same checks."""
from __future__ import annotations

import json

import pytest
from test_cli import private_tmp, sc  # noqa: F401 - private_tmp is an autouse fixture here too

pytestmark = pytest.mark.integration


def test_run_only_and_k_select_the_checks_that_run() -> None:
    proc = sc("run", "baseline", "-t", "none", "-f", "json", "--no-preflight",
              "--only", "fs.read.*", "--only", "network.tcp", "-k", "not symlink and not proc")
    ids = {r["id"] for r in json.loads(proc.stdout)["results"]}
    assert ids == {"fs.read.absolute", "fs.read.relative", "fs.read.list-outside", "fs.read.workspace",
                   "network.tcp"}, proc.stderr


@pytest.mark.parametrize("command", [
    ["run", "baseline", "-t", "none"],
    ["survey", "baseline", "-t", "none"],
    ["compare", "baseline", "--before", "none", "--after", "none"],
])
def test_an_unknown_id_is_bad_input_with_a_suggestion(command: list[str]) -> None:
    proc = sc(*command, "--only", "fs.read.symlnk")
    assert proc.returncode == 2
    assert proc.stderr == "error: --only 'fs.read.symlnk' matches no check (did you mean 'fs.read.symlink'?)\n"
    assert proc.stdout == ""


def test_a_bad_or_empty_keyword_selection_is_bad_input() -> None:
    proc = sc("run", "baseline", "-t", "none", "-k", "network and (tcp")
    assert (proc.returncode, proc.stderr) == (2, "error: -k 'network and (tcp': missing ')'\n")
    proc = sc("run", "baseline", "-t", "none", "-k", "nothing-like-this")
    assert (proc.returncode, proc.stderr) == (
        2, "error: -k 'nothing-like-this': no check of matrix 'baseline' matches\n")


def test_survey_grid_has_only_the_selected_rows() -> None:
    proc = sc("survey", "baseline", "-t", "none", "-f", "json", "--no-control", "--only", "fs.write.symlink")
    data = json.loads(proc.stdout)
    assert data["matrix"]["checks"] == 1, proc.stderr
