"""What people read: the compact table, colour conventions, fix texts, preflight meanings, CLI help and errors."""
from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sandboxcheck import cli
from sandboxcheck._entry import launches_no_target, only_prints_help
from sandboxcheck.model import Check, EvidenceSpec, Matrix, Observed, Result, Status
from sandboxcheck.report.run import preflight_lines, preflight_meaning, render_junit, render_markdown, render_table
from sandboxcheck.model import RunReport
from sandboxcheck.report.text import md_text

LONG_ID = "credentials.cloud.gcloud-application-default-credentials"
FIX = "Mount a fake home; never bind the user's real ~/.config/gcloud into the sandbox."
LONG_REASON = ("canary of home/.config/gcloud/application_default_credentials.json in the target's stdout "
               "and in a file the target wrote under outside/, both carrying this check's token")
#: Colour in an SGR escape: 30-37 and 90-97 (foreground), 38 (extended foreground).
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])[;m]")


def check(cid: str, fix: str = "") -> Check:
    return Check(id=cid, category="credentials", title=cid, probe="read_file", args=(), expect="denied",
                 evidence=EvidenceSpec("leak"), severity="critical", fix=fix)


def result(cid: str, status: Status, observed: Observed, reason: str) -> Result:
    return Result(id=cid, category="credentials", title=cid, expect="denied", observed=observed, status=status,
                  errno=None, evidence=("tcp sink received the canary",), reason=reason, duration_s=0.1,
                  severity="critical")


def make_report(preflight: dict | None = None) -> RunReport:
    checks = (check(LONG_ID, FIX), check("credentials.ssh-key"))
    results = [result(LONG_ID, Status.FAIL, Observed.ALLOWED, LONG_REASON),
               result("credentials.ssh-key", Status.PASS, Observed.DENIED, "'read ~/.ssh/id_ed25519' failed "
                      "with ENOENT (path absent from the sandbox's view (mount namespace))")]
    return RunReport(matrix=Matrix(name="m", path="m.yaml", checks=checks), target={"name": "bwrap-loose"},
                     started="2026-01-01T00:00:00+00:00", duration_s=1.0, results=results, preflight=preflight)


def table(width: int, verbose: bool = False, **kw: object) -> str:
    out = io.StringIO()
    render_table(make_report(**kw), out, verbose=verbose, width=width)  # type: ignore[arg-type]
    return out.getvalue()


@pytest.mark.parametrize("width", [60, 80, 120, 300])
def test_table_has_one_line_per_check_within_the_width_and_never_splits_an_id(width: int) -> None:
    text = table(width)
    rows = [line for line in text.splitlines() if line.startswith("  credentials.")]
    assert len(rows) == 2
    assert rows[0].split()[0] == LONG_ID and rows[1].split()[0] == "credentials.ssh-key"
    assert rows[0].split()[1:5] == ["denied", "allowed", "FAIL", "critical"]
    # Every line fits, unless the columns that are never cut (the id first) are wider than the width.
    fixed = len("  " + LONG_ID) + len("  denied  observed  status  critical")
    for line in text.splitlines():
        assert len(line) <= max(width, fixed), line
    if width == 120:
        assert "canary of home/.config" in rows[0] and rows[0].endswith("…")
    if width == 300:  # room for the whole reason: not cut
        assert rows[0].endswith("token")
    assert FIX not in text  # -v shows the fix


def test_verbose_table_shows_the_full_reason_and_the_fix_of_a_deviation_only() -> None:
    text = table(80, verbose=True)
    flat = " ".join(text.split())
    assert LONG_REASON in flat
    assert f"fix: {FIX}" in flat
    assert max(len(line) for line in text.splitlines()) <= len("  " + LONG_ID) + 40
    # The passing check has no fix, and its reason is not printed twice.
    assert flat.count("failed with ENOENT") == 1


def test_table_width_follows_COLUMNS_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    for columns in ("100", "240"):
        monkeypatch.setenv("COLUMNS", columns)
        out = io.StringIO()
        render_table(make_report(), out)
        widest = max(len(line) for line in out.getvalue().splitlines())
        assert widest <= int(columns) and widest > 90


@pytest.mark.parametrize("env, coloured", [({"FORCE_COLOR": "1"}, True),
                                           ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, False),
                                           ({}, False)])
def test_table_follows_NO_COLOR_and_FORCE_COLOR(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                                coloured: bool) -> None:
    for name in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    render_table(make_report(), out, width=120)
    assert bool(COLOUR.search(out.getvalue())) is coloured, repr(out.getvalue()[:300])
    assert "FAIL" in out.getvalue()


def test_explicit_colour_choice_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    out = io.StringIO()
    render_table(make_report(), out, color=False, width=120)
    assert not COLOUR.search(out.getvalue())


def test_junit_failure_body_carries_the_fix() -> None:
    out = io.StringIO()
    render_junit(make_report(), out)
    failures = ET.fromstring(out.getvalue().split("\n", 1)[1]).findall(".//failure")
    assert len(failures) == 1
    assert f"fix: {FIX}" in (failures[0].text or "")


def test_markdown_has_the_fix_column_and_the_explained_preflight() -> None:
    out = io.StringIO()
    render_markdown(make_report(preflight={"ran": True, "isolated": True,
                                           "layers": ["own namespaces: pid, user", "NoNewPrivs"]}), out)
    text = out.getvalue()
    assert "| fix |" in text and md_text(FIX) in text
    assert "- NoNewPrivs - setuid programs" in text
    assert "pid: host processes cannot be seen" in text


@pytest.mark.parametrize("layer, words", [
    ("own namespaces: net, user", ["net: no host network", "user: root inside is not root outside"]),
    ("seccomp mode 2", ["system-call filter"]),
    ("NoNewPrivs", ["setuid"]),
    ("capabilities 0000000000000000 (host 000001ffffffffff)", ["EPERM"]),
    ("fake home hidden", ["credential reads find nothing"]),
    ("3 processes visible (host 120)", ["ESRCH"]),
])
def test_every_preflight_layer_is_explained(layer: str, words: list[str]) -> None:
    meaning = preflight_meaning(layer)
    for word in words:
        assert word in meaning


def test_preflight_lines_in_the_table_explain_each_fact_and_warn_when_nothing_isolates() -> None:
    text = " ".join(table(100, preflight={"ran": True, "isolated": True, "layers": ["NoNewPrivs"]}).split())
    assert "NoNewPrivs - setuid programs (sudo, su) cannot gain privileges" in text
    style, lines = preflight_lines({"ran": True, "isolated": False, "layers": []})
    assert style == "bold red" and "NO ISOLATION DETECTED" in lines[0] and "expect denied checks to fail" in lines[0]
    style, lines = preflight_lines({"ran": False, "reason": "exit 127"})
    assert "could not run: exit 127" in lines[0]


def all_commands() -> list[tuple[str, click.Command]]:
    group = cli.main
    return [("sandboxcheck", group)] + [(f"sandboxcheck {name}", cmd) for name, cmd in group.commands.items()]


@pytest.mark.parametrize("name, command", all_commands(), ids=[n for n, _ in all_commands()])
def test_every_option_of_every_command_has_help(name: str, command: click.Command) -> None:
    ctx = click.Context(command, info_name=name)
    options = [p for p in command.get_params(ctx) if isinstance(p, click.Option)]
    assert options
    missing = [p.opts[0] for p in options if not (p.help or "").strip()]
    assert not missing, f"{name}: options without help: {missing}"


def test_every_command_takes_debug_after_its_name() -> None:
    for name, command in all_commands()[1:]:
        assert any(p.name == "debug" for p in command.params), name
    result = CliRunner().invoke(cli.main, ["validate", "baseline", "--debug"])
    assert result.exit_code == 0, result.output
    assert "ok (" in result.output


def test_help_lists_every_exit_code_with_interrupted() -> None:
    result = CliRunner().invoke(cli.main, ["--help"])
    assert result.exit_code == 0
    for code, words in (("0", "every check passed"), ("1", "a check failed"), ("2", "bad input"),
                        ("3", "no failure, but a check was inconclusive"), ("4", "internal error"), ("130", "interrupted")):
        assert re.search(rf"^\s+{code}\s+{words}", result.output, re.M), (code, result.output)


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli.main, list(args))
    return result.exit_code, result.stderr


@pytest.mark.parametrize("args, expected", [
    (("run", "baselin", "-t", "none"), "unknown matrix 'baselin': not a file and not a bundled matrix "
                                       "(did you mean 'baseline'?); bundled: advisories, agent, agent-gemini, baseline"),
    (("validate", "basline"), "(did you mean 'baseline'?)"),
    (("compare", "baseline-x", "--before", "none", "--after", "none"), "(did you mean 'baseline'?)"),
    (("run", "baseline", "-t", "bwrap-stric"), "unknown target 'bwrap-stric' (did you mean 'bwrap-strict'?)"),
    (("targets", "firejale"), "(did you mean 'firejail'?)"),
])
def test_unknown_names_get_a_did_you_mean_in_one_line_and_exit_2(args: tuple[str, ...], expected: str) -> None:
    code, err = invoke(*args)
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1, err


def test_a_path_that_is_not_there_is_reported_by_the_loader_not_as_a_name(tmp_path: Path) -> None:
    code, err = invoke("validate", str(tmp_path / "absent.yaml"))
    assert code == 2 and "No such file or directory" in err and "did you mean" not in err


def accepted_report(tmp_path: Path, target: str) -> Path:
    path = tmp_path / "accepted.json"
    path.write_text(json.dumps({"schema_version": 1, "target": {"name": target}, "results": []}))
    return path


def test_accepted_report_of_another_target_is_refused(tmp_path: Path) -> None:
    path = accepted_report(tmp_path, "landlock")
    code, err = invoke("run", "baseline", "-t", "none", "--accepted", str(path))
    assert code == 2
    assert err.strip() == (f"error: --accepted {path} is a report of target 'landlock', not of 'none': "
                           "accept deviations per target, or pass --accepted-any-target")


def test_deprecated_baseline_option_warns_and_still_reads_the_report(tmp_path: Path) -> None:
    path = accepted_report(tmp_path, "landlock")
    code, err = invoke("run", "baseline", "-t", "none", "--baseline", str(path))
    assert code == 2  # read as --accepted: the target check applies
    assert "--baseline FILE is deprecated" in err and "use --accepted FILE" in err
    assert "is a report of target 'landlock'" in err
    code, err = invoke("run", "baseline", "-t", "none", "--baseline", str(path), "--accepted", str(path))
    assert code == 2 and "give only --accepted" in err


def test_run_without_target_says_which_sandbox_it_tests() -> None:
    code, err = invoke("run", "no-such-matrix")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 2
    assert lines[0] == ("testing sandboxcheck's built-in landlock launcher; use --target NAME|'cmd {cmd}'|FILE "
                        "to test your sandbox or agent ('sandboxcheck targets' lists presets)")
    assert "unknown matrix" in lines[1]
    code, err = invoke("run", "no-such-matrix", "-t", "landlock")
    assert "built-in" not in err


@pytest.mark.parametrize("argv, only", [
    ([], True), (["--help"], True), (["-h"], True), (["--version"], True), (["run", "--help"], True),
    (["run", "baseline"], False), (["run", "--target-opt", "--help"], False), (["--debug", "--help"], False),
    (["--help", "--version"], False), (["-t", "--help"], False),
])
def test_only_help_and_version_skip_the_clean_reexecution(argv: list[str], only: bool) -> None:
    assert only_prints_help(argv) is only


@pytest.mark.parametrize("argv, none", [
    (["merge", "a.json", "b.json"], True), (["--debug", "merge", "a.json"], True), (["diff", "a", "b"], True),
    (["validate", "m.yaml"], True), (["survey", "baseline", "-t", "merge"], False), (["run", "merge"], False),
    (["-t", "merge"], False), ([], False),
])
def test_commands_that_launch_no_target_skip_the_clean_reexecution(argv: list[str], none: bool) -> None:
    assert launches_no_target(argv) is none


def test_debug_after_the_command_shows_the_traceback_of_an_internal_error(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import sandboxcheck.validate

    def broken(*_args: object) -> None:
        raise RuntimeError("loader broke")

    monkeypatch.setattr(sandboxcheck.validate, "validate_file", broken)
    monkeypatch.delenv("SANDBOXCHECK_DEBUG", raising=False)
    monkeypatch.setattr("sys.argv", ["sandboxcheck", "validate", "baseline"])
    with pytest.raises(SystemExit) as exit_info:
        cli.entry()
    assert exit_info.value.code == cli.EXIT_INTERNAL
    assert "internal error: RuntimeError: loader broke" in capsys.readouterr().err
    monkeypatch.setattr("sys.argv", ["sandboxcheck", "validate", "baseline", "--debug"])
    with pytest.raises(RuntimeError, match="loader broke"):
        cli.entry()
