"""Suite files (``*.sandboxcheck.yaml``) collected next to a project's tests."""
from __future__ import annotations

import pytest
from marks import requires_bwrap
from plugin_helpers import BROKEN, run, write_matrix

SUITE = """\
version: 1
matrices:
  - policy/small.yaml
targets:
  - none
  - bwrap-strict
"""


def test_suite_items_and_node_ids(pytester: pytest.Pytester) -> None:
    write_matrix(pytester, name="checks/policy/small.yaml")
    pytester.path.joinpath("checks", "agent.sandboxcheck.yaml").write_text(SUITE)
    result = run(pytester, "--collect-only", "-q")
    assert [line for line in result.outlines if "::" in line] == [
        "checks/agent.sandboxcheck.yaml::small.yaml::fs.read.outside[none]",
        "checks/agent.sandboxcheck.yaml::small.yaml::fs.read.outside[bwrap-strict]",
        "checks/agent.sandboxcheck.yaml::small.yaml::fs.read.workspace[none]",
        "checks/agent.sandboxcheck.yaml::small.yaml::fs.read.workspace[bwrap-strict]",
    ]


@pytest.mark.integration
@requires_bwrap
def test_suite_runs_with_its_waivers(pytester: pytest.Pytester) -> None:
    write_matrix(pytester, name="policy/small.yaml")
    pytester.path.joinpath("agent.sandboxcheck.yaml").write_text(
        SUITE + "waivers:\n  - {id: fs.read.outside, reason: control, expires: 2999-01-01, target: none}\n")
    run(pytester).assert_outcomes(passed=3, xfailed=1)


@pytest.mark.integration
def test_suite_options_strict_and_command_line(pytester: pytest.Pytester) -> None:
    write_matrix(pytester, name="policy/small.yaml")
    suite = pytester.path / "agent.sandboxcheck.yaml"
    suite.write_text(f"matrices: [policy/small.yaml]\ntargets: ['{BROKEN}']\noptions: {{strict: true}}\n")
    run(pytester).assert_outcomes(failed=2)
    suite.write_text(f"matrices: [policy/small.yaml]\ntargets: ['{BROKEN}']\n")
    run(pytester).assert_outcomes(skipped=2)
    run(pytester, "--sandboxcheck-strict").assert_outcomes(failed=2)


def test_invalid_suite_is_a_collection_error_with_lines(pytester: pytest.Pytester) -> None:
    write_matrix(pytester, name="policy/small.yaml")
    pytester.path.joinpath("agent.sandboxcheck.yaml").write_text("""\
matrices:
  - policy/small.yaml
  - policy/missing.yaml
targets: [none, nope]
waivers:
  - {id: fs.read.outsid, reason: typo, expires: 2999-01-01}
optoins: {jobs: 2}
""")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "invalid sandboxcheck suite:",
        "agent.sandboxcheck.yaml:3: matrices[[]1[]]: no matrix file 'policy/missing.yaml', and not a "
        "bundled matrix (*baseline*) (paths are relative to the suite file)",
        "agent.sandboxcheck.yaml:4: targets[[]1[]]: unknown target 'nope'*",
        "agent.sandboxcheck.yaml:7: optoins: unknown key (did you mean 'options'?)",
    ])


def test_suite_reports_its_matrices_problems(pytester: pytest.Pytester) -> None:
    write_matrix(pytester, "checks:\n  - id: fs.read.x\n    category: fs-read\n    title: t\n"
                           "    probe: read_file\n    args: {path: x}\n    expect: denyed\n", "bad.yaml")
    pytester.path.joinpath("agent.sandboxcheck.yaml").write_text("matrices: [bad.yaml]\ntargets: [none]\n")
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([
        "agent.sandboxcheck.yaml:1: matrices[[]0[]]: matrix 'bad.yaml' is invalid (1 problem below)",
        "bad.yaml:7: checks[[]0[]].expect: 'denyed' is not one of: allowed, denied",
    ])
