"""Collection: an item per check and target, ini twins, usage errors, an idle plugin."""
from __future__ import annotations

import pytest
from plugin_helpers import BROKEN, SMALL, run, write_matrix


def node_ids(result: pytest.RunResult) -> list[str]:
    """Node ids printed by ``--collect-only -q``."""
    return [line for line in result.outlines if "::" in line]


def test_an_item_per_check_and_target(pytester: pytest.Pytester) -> None:
    write_matrix(pytester)
    result = run(pytester, "--collect-only", "-q", "--sandboxcheck-matrix", "small.yaml",
                                "--sandboxcheck-target", "none", "--sandboxcheck-target", "bwrap-strict")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    assert node_ids(result) == [
        "small.yaml::fs.read.outside[none]",
        "small.yaml::fs.read.outside[bwrap-strict]",
        "small.yaml::fs.read.workspace[none]",
        "small.yaml::fs.read.workspace[bwrap-strict]",
    ]


def test_bundled_matrix_by_name(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--collect-only", "-q", "--sandboxcheck-matrix", "baseline",
                                "--sandboxcheck-target", "bwrap-strict")
    ids = node_ids(result)
    assert "baseline.yaml::fs.read.symlink[bwrap-strict]" in ids
    assert len(ids) == 43


def test_matrix_in_a_folder_keeps_its_relative_path(pytester: pytest.Pytester) -> None:
    write_matrix(pytester, name="policy/small.yaml")
    result = run(pytester, "--collect-only", "-q", "--sandboxcheck-matrix", "policy/small.yaml",
                                "--sandboxcheck-target", "none")
    assert node_ids(result)[0] == "policy/small.yaml::fs.read.outside[none]"


def test_keywords_select_by_id_category_and_target(pytester: pytest.Pytester) -> None:
    write_matrix(pytester)
    args = ["--collect-only", "-q", "--sandboxcheck-matrix", "small.yaml",
            "--sandboxcheck-target", "none", "--sandboxcheck-target", "bwrap-strict"]
    assert node_ids(run(pytester, *args, "-k", "workspace and bwrap-strict")) == [
        "small.yaml::fs.read.workspace[bwrap-strict]"]
    assert len(node_ids(run(pytester, *args, "-k", "fs-read"))) == 4
    assert len(node_ids(run(pytester, *args, "-m", "sandboxcheck"))) == 4


def test_ini_options_and_the_command_line_wins(pytester: pytest.Pytester) -> None:
    write_matrix(pytester, name="policy/small.yaml")
    pytester.makeini("[pytest]\n"
                     "sandboxcheck_matrix = policy/small.yaml\n"
                     "sandboxcheck_target =\n    none\n    bwrap-strict\n")
    assert len(node_ids(run(pytester, "--collect-only", "-q"))) == 4
    ids = node_ids(run(pytester, "--collect-only", "-q", "--sandboxcheck-target", "bwrap-strict"))
    assert ids == ["policy/small.yaml::fs.read.outside[bwrap-strict]",
                   "policy/small.yaml::fs.read.workspace[bwrap-strict]"]


def test_ini_paths_are_relative_to_the_ini_file(pytester: pytest.Pytester) -> None:
    write_matrix(pytester, name="policy/small.yaml")
    pytester.makeini("[pytest]\nsandboxcheck_matrix = policy/small.yaml\nsandboxcheck_target = none\n")
    sub = pytester.mkdir("sub")
    sub.joinpath("test_sc_ini_here.py").write_text("def test_here():\n    pass\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)
        result = run(pytester, "--collect-only", "-q")
    assert result.ret == pytest.ExitCode.OK, result.stderr.str()
    assert "policy/small.yaml::fs.read.outside[none]" in result.stdout.str()


def test_plugin_is_idle_without_its_options(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    write_matrix(pytester)  # a plain YAML file is not a suite
    result = run(pytester, "-v")
    result.assert_outcomes(passed=1)
    assert "sandboxcheck:" not in result.stdout.str()


@pytest.mark.parametrize(("args", "message"), [
    (["--sandboxcheck-target", "nope"], "ERROR: --sandboxcheck-target nope: unknown target 'nope'"),
    (["--sandboxcheck-matrix", "missing.yaml"],
     "ERROR: --sandboxcheck-matrix missing.yaml: no matrix file 'missing.yaml', and not a bundled "
     "matrix ("),
    (["--sandboxcheck-matrix", "bad.yaml"], "bad.yaml:9: checks[0].expect: 'denyed' is not one of: allowed, denied"),
    (["--sandboxcheck-jobs", "many"], "ERROR: --sandboxcheck-jobs 'many': expected an integer from 1 to 64"),
    (["--sandboxcheck-timeout", "0"], "ERROR: --sandboxcheck-timeout '0': expected a number from 0.1 to 600"),
    (["--sandboxcheck-matrix", "small.yaml", "--sandboxcheck-target", BROKEN, "--sandboxcheck-target",
      "/other {cmd}"], "another target is also named 'inline'"),
])
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    write_matrix(pytester)
    write_matrix(pytester, SMALL.replace("expect: denied", "expect: denyed"), "bad.yaml")
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_bad_ini_option_names_the_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsandboxcheck_target = nope\n")
    result = run(pytester, )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ERROR: ini option sandboxcheck_target nope: unknown target 'nope'" in result.stderr.str()


def test_option_layers_command_line_suite_ini_default(pytester: pytest.Pytester) -> None:
    from sandboxcheck.plugin.runs import _runs
    from sandboxcheck.matrix.suite import SuiteOptions

    pytester.makeini("[pytest]\nsandboxcheck_jobs = 2\nsandboxcheck_timeout = 9\nsandboxcheck_no_control = true\n")
    suite = SuiteOptions(jobs=5, control=True, strict=True)
    settings = _runs(pytester.parseconfigure("--sandboxcheck-jobs", "3")).settings
    options = settings.run_options(suite)
    assert (options.jobs, options.timeout, options.control) == (3, 9.0, True)
    assert settings.strict(suite) and not settings.strict()
    options = settings.run_options()
    assert (options.jobs, options.timeout, options.control) == (3, 9.0, False)
    assert _runs(pytester.parseconfigure()).settings.run_options(suite).jobs == 5


def test_agent_sessions_are_shared_unless_asked_per_check(pytester: pytest.Pytester) -> None:
    from sandboxcheck.plugin.runs import _runs

    assert _runs(pytester.parseconfigure()).settings.run_options().sessions is True
    cli = _runs(pytester.parseconfigure("--sandboxcheck-per-check-sessions")).settings
    assert cli.run_options().sessions is False
    pytester.makeini("[pytest]\nsandboxcheck_per_check_sessions = true\n")
    assert _runs(pytester.parseconfigure()).settings.run_options().sessions is False


def test_only_deselects_the_other_checks_and_ids_may_be_globs(pytester: pytest.Pytester) -> None:
    write_matrix(pytester)
    args = ["--collect-only", "-q", "--sandboxcheck-matrix", "small.yaml", "--sandboxcheck-target", "none"]
    result = run(pytester, *args, "--sandboxcheck-only", "fs.read.work*")
    assert node_ids(result) == ["small.yaml::fs.read.workspace[none]"]
    result.stdout.fnmatch_lines(["*1/2 tests collected (1 deselected)*"])
    # pytest's own -k narrows further.
    assert node_ids(run(pytester, *args, "--sandboxcheck-only", "fs.read.*", "-k", "outside")) == [
        "small.yaml::fs.read.outside[none]"]


def test_only_with_an_unknown_id_is_a_usage_error(pytester: pytest.Pytester) -> None:
    write_matrix(pytester)
    result = run(pytester, "--collect-only", "-q", "--sandboxcheck-matrix", "small.yaml",
                 "--sandboxcheck-target", "none", "--sandboxcheck-only", "fs.read.outsid")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sandboxcheck-only 'fs.read.outsid' matches no check "
                                 "(did you mean 'fs.read.outside'?)*"])
