"""The suite format (suite.py) and its JSON Schema, without pytest in the loop."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from plugin_helpers import SMALL

from sandboxcheck.resources import schema_path
from sandboxcheck.matrix.suite import SuiteError, SuiteOptions, is_suite_file, load_suite, parse_suite


def test_suite_file_names() -> None:
    assert is_suite_file("x/agent.sandboxcheck.yaml")
    assert is_suite_file("agent.sandboxcheck.yml")
    assert not is_suite_file("agent.yaml")
    assert not is_suite_file("sandboxcheck.yaml")


def test_waiver_shape_is_the_matrix_schemas() -> None:
    suite = json.loads(schema_path("suite").read_text())
    matrix = json.loads(schema_path("matrix").read_text())
    assert suite["$defs"]["waiver"] == matrix["$defs"]["waiver"]


def test_load_a_suite(tmp_path: Path) -> None:
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "small.yaml").write_text(SMALL)
    path = tmp_path / "agent.sandboxcheck.yaml"
    path.write_text("""\
version: 1
matrices: [policy/small.yaml, baseline]
targets: [none, bwrap-strict]
waivers:
  - {id: fs.read.outside, reason: known, expires: 2999-01-01, target: none}
  - {id: network.udp, reason: ticket 12, expires: 2999-01-01}
options: {jobs: 3, timeout: 5, control: false}
""")
    suite = load_suite(path)
    assert suite.name == "agent"
    assert [m.matrix.name for m in suite.matrices] == ["small", "baseline"]
    assert [t.target.name for t in suite.targets] == ["none", "bwrap-strict"]
    small, baseline = (m.matrix for m in suite.matrices)
    # Each matrix gets the suite's waivers for its own checks, with their suite line.
    assert [(w.id, w.target, w.line) for w in small.waivers] == [("fs.read.outside", "none", 5)]
    assert [w.id for w in baseline.waivers] == ["network.udp"]
    assert suite.options == SuiteOptions(jobs=3, timeout=5.0, control=False, strict=None)


def test_every_problem_with_its_line(tmp_path: Path) -> None:
    text = """\
version: 2
matrices: []
targets: [none, none]
waivers:
  - {id: fs.read.outside, reason: "", expires: 2024-02-30}
  - {reason: r, expires: 2999-01-01, target: bwrap}
options: {jobs: 0, timeout: fast}
"""
    with pytest.raises(SuiteError) as err:
        parse_suite(text, "s.sandboxcheck.yaml", tmp_path)
    assert str(err.value).splitlines() == [
        "s.sandboxcheck.yaml:1: version: 2 is not supported (only 1)",
        "s.sandboxcheck.yaml:2: matrices: the suite names no matrices",
        "s.sandboxcheck.yaml:3: targets[1]: target 'none' is already in the suite (line 3)",
        "s.sandboxcheck.yaml:5: waivers[0].expires: '2024-02-30' is not a date (YYYY-MM-DD)",
        "s.sandboxcheck.yaml:5: waivers[0].reason: must not be empty",
        "s.sandboxcheck.yaml:6: waivers[1]: missing required key 'id'",
        "s.sandboxcheck.yaml:7: options.jobs: 0 is out of range: must be at least 1",
        "s.sandboxcheck.yaml:7: options.timeout: 'fast' is not a number",
    ]


def test_waiver_for_an_unknown_check_or_target(tmp_path: Path) -> None:
    (tmp_path / "small.yaml").write_text(SMALL)
    text = ("matrices: [small.yaml]\ntargets: [none]\nwaivers:\n"
            "  - {id: fs.read.outsid, reason: r, expires: 2999-01-01, target: nones}\n")
    with pytest.raises(SuiteError) as err:
        parse_suite(text, "s.sandboxcheck.yaml", tmp_path)
    assert str(err.value).splitlines() == [
        "s.sandboxcheck.yaml:4: waivers[0].id: waiver for unknown check id 'fs.read.outsid' "
        "(did you mean 'fs.read.outside'?)",
        "s.sandboxcheck.yaml:4: waivers[0].target: waiver for target 'nones', which this suite does not "
        "run (did you mean 'none'?) (its targets: none)",
    ]


@pytest.mark.parametrize(("text", "message"), [
    ("", "s.sandboxcheck.yaml: the suite is empty"),
    ("matrices: [a\n", "s.sandboxcheck.yaml:2: invalid YAML"),
    ("- baseline\n", "s.sandboxcheck.yaml:1: a suite is a mapping with 'matrices' and 'targets'"),
    ("matrices: [baseline]\nmatrices: [baseline]\ntargets: [none]\n",
     "s.sandboxcheck.yaml:2: duplicate key 'matrices'"),
    ("matrices: [baseline, baseline.yaml]\ntargets: [none]\n",
     "s.sandboxcheck.yaml:1: matrices[1]: matrix 'baseline.yaml' is already in the suite (line 1)"),
    ("matrices: [baseline]\ntargets: [none, '/a {cmd}', '/b {cmd}']\n",
     "s.sandboxcheck.yaml:2: targets[2]: target '/b {cmd}' is named 'inline' like the target at line 2: "
     "reports and waivers key on the name, so give one a target file with a name of its own"),
])
def test_malformed_suites(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SuiteError) as err:
        parse_suite(text, "s.sandboxcheck.yaml", tmp_path)
    assert str(err.value).splitlines()[0].startswith(message)
