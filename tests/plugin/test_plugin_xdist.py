"""pytest-xdist and JUnit: each worker runs only what it was handed; the examples stay true."""
from __future__ import annotations

import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from marks import requires_bwrap
from plugin_helpers import SMALL, matrix_args, read_runs, run_subprocess, spy_on_runs, write_matrix

pytestmark = [pytest.mark.integration, requires_bwrap]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

FOUR = SMALL + """\
  - id: fs.read.symlink
    category: fs-read
    title: Read an outside file through a symlink in the workspace
    probe: read_file
    args: {path: "{workspace}/link-to-secret"}
    expect: denied
  - id: fs.write.outside
    category: fs-write
    title: Create a file outside the workspace
    probe: write_file
    args: {path: "{outside}/created.txt", content: "written {token}"}
    evidence: {kind: file, path: "{outside}/created.txt", contains: "{token}"}
    expect: denied
"""


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short temp folder of its own for the child pytest (unix socket paths must fit)."""
    tmp = Path(tempfile.mkdtemp(prefix="scp-", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(tmp))
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


def test_xdist_workers_split_the_checks_and_junit_has_every_item(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, private_tmp: Path) -> None:
    log = spy_on_runs(pytester, monkeypatch)
    write_matrix(pytester, FOUR)
    result = run_subprocess(pytester, "-p", "xdist", "-n", "2", "--junitxml=out.xml",
                            *matrix_args("none", "bwrap-strict"))
    result.assert_outcomes(passed=5, failed=3)
    runs = read_runs(log)
    ran = Counter((check, target) for r in runs for check in r["checks"] for target in r["targets"])
    assert set(ran) == {(c, t) for c in ("fs.read.outside", "fs.read.workspace", "fs.read.symlink",
                                         "fs.write.outside") for t in ("none", "bwrap-strict")}
    assert set(ran.values()) == {1}, f"a check ran twice: {runs}"
    assert {r["worker"] for r in runs} == {"gw0", "gw1"}

    cases = list(ET.parse(pytester.path / "out.xml").iter("testcase"))
    assert sorted(str(c.get("name")) for c in cases) == sorted(f"{c}[{t}]" for c, t in ran)
    failed = sorted(str(c.get("name")) for c in cases if c.find("failure") is not None)
    assert failed == ["fs.read.outside[none]", "fs.read.symlink[none]", "fs.write.outside[none]"]
    # Every Harness was closed: nothing of the runs is left in the temp folder.
    assert not list(private_tmp.glob("sandboxcheck-*"))


def test_examples_pass(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                       private_tmp: Path) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # leave no __pycache__ in examples/
    result = run_subprocess(pytester, str(EXAMPLES), "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=46)  # the suite's 43 baseline checks and 3 Python tests
    assert not list(private_tmp.glob("sandboxcheck-*"))
