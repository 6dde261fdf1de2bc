"""Targets: parsing target mappings, presets, inline commands, argv and environment."""
from __future__ import annotations

import os
import shlex
import stat
from pathlib import Path

import pytest

from sandboxcheck.targets import command, tools as targets
from sandboxcheck.placeholders import PlaceholderError
from sandboxcheck.resources import presets_dir
from sandboxcheck.targets.command import CommandTarget
from sandboxcheck.targets.base import Target, TargetError, TargetSpec
from sandboxcheck.targets.tools import Requirement
from sandboxcheck.targets.registry import load_target, parse_target, preset_names

MISSING_TOOL = "sandboxcheck-test-no-such-tool"


def ok(**kw) -> dict:
    base = {"name": "t", "command": ["wrap", "--", "{cmd}"]}
    base.update(kw)
    return base


def target_error(data: object) -> list[str]:
    """The problem lines of the TargetError parse_target raises for ``data``."""
    with pytest.raises(TargetError) as info:
        parse_target(data, "my-target.yaml")
    return str(info.value).splitlines()


# --- parse_target ----------------------------------------------------------------

def test_parse_target_good() -> None:
    spec = parse_target(ok(description="d", requires=["wrap", {"name": "x", "install": "get x"}],
                           kernel=["landlock"], python="/usr/bin/python3", env={"A": 1},
                           pass_env=["HOME"]), "src.yaml")
    assert spec == TargetSpec(name="t", command=("wrap", "--", "{cmd}"), description="d",
                              requires=(Requirement("wrap"), Requirement("x", "get x")),
                              kernel=("landlock",), python="/usr/bin/python3",
                              env=(("A", "1"),), pass_env=("HOME",), source="src.yaml")


@pytest.mark.parametrize("data, lines", [
    (ok(comand=["x"]), ["my-target.yaml: unknown key 'comand' (did you mean 'command'?)"]),
    (ok(command=["env", "-i"]),
     ["my-target.yaml: command: must contain {cmd} (as its own element) or {cmd_shell}, or a file must hold {cmd_json}"]),
    (ok(command=["sh", "-c", "exec {cmd}", "{cmd}"]),
     ["my-target.yaml: command: {cmd} must be an element of its own; use {cmd_shell} inside a string"]),
    (ok(command=["{token}", "{cmd}"]), ["my-target.yaml: command: unknown placeholder {token}"]),
    (ok(requires=[{"name": "bwrap", "url": "x"}]),
     ["my-target.yaml: requires: {'name': 'bwrap', 'url': 'x'} is neither a name nor {name, install}"]),
    (ok(requires=[3]), ["my-target.yaml: requires: 3 is neither a name nor {name, install}"]),
    (ok(requires=[{"install": "apt-get install x"}]),
     ["my-target.yaml: requires: {'install': 'apt-get install x'} is neither a name nor {name, install}"]),
    (ok(kernel=["seccomp"]), ["my-target.yaml: kernel: unknown feature 'seccomp' (known: landlock)"]),
    (ok(name=""), ["my-target.yaml: 'name' must be a non-empty string"]),
    ({"command": ["{cmd}"]}, ["my-target.yaml: 'name' must be a non-empty string"]),
    ({"name": "t"}, ["my-target.yaml: 'command' must be a non-empty list of strings (an argv template)"]),
    (ok(command=[]), ["my-target.yaml: 'command' must be a non-empty list of strings (an argv template)"]),
    (ok(command=["{cmd}", 3]),
     ["my-target.yaml: 'command' must be a non-empty list of strings (an argv template)"]),
    (ok(env=["A=1"]), ["my-target.yaml: 'env' must be a mapping"]),
    (ok(pass_env="HOME"), ["my-target.yaml: 'pass_env' must be a list of variable names"]),
    (["{cmd}"], ["my-target.yaml: a target is a mapping with 'name' and 'command'"]),
    (None, ["my-target.yaml: a target is a mapping with 'name' and 'command'"]),
])
def test_parse_target_errors(data: object, lines: list[str]) -> None:
    assert target_error(data) == lines


def test_cmd_inside_a_string_says_to_use_cmd_shell() -> None:
    lines = target_error(ok(command=["sh", "-c", "exec {cmd}"]))
    assert ("my-target.yaml: command: {cmd} must be an element of its own; "
            "use {cmd_shell} inside a string") in lines


def test_every_problem_is_reported_at_once() -> None:
    lines = target_error({"name": "", "command": ["{x}"], "bogus": 1, "kernel": ["nope"]})
    assert lines == [
        "my-target.yaml: unknown key 'bogus'",
        "my-target.yaml: 'name' must be a non-empty string",
        "my-target.yaml: command: unknown placeholder {x}",
        "my-target.yaml: command: must contain {cmd} (as its own element) or {cmd_shell}, or a file must hold {cmd_json}",
        "my-target.yaml: kernel: unknown feature 'nope' (known: landlock)",
    ]


def test_command_string_is_split_like_a_shell() -> None:
    spec = parse_target({"name": "t", "command": "env -i 'A=b c' {cmd}"}, "s")
    assert spec.command == ("env", "-i", "A=b c", "{cmd}")


def test_cmd_shell_alone_is_enough() -> None:
    spec = parse_target({"name": "t", "command": ["sh", "-c", "exec {cmd_shell}"]}, "s")
    assert spec.command == ("sh", "-c", "exec {cmd_shell}")


def test_requires_as_a_string_is_rejected() -> None:
    assert target_error(ok(requires="bwrap")) == [
        "my-target.yaml: 'requires' must be a list of executable names or {name, install} mappings"]


def test_unbalanced_quote_in_a_command_string_is_a_target_error() -> None:
    with pytest.raises(TargetError):
        parse_target({"name": "t", "command": "sh -c 'echo {cmd}"}, "s")


# --- load_target -------------------------------------------------------------------

def test_preset_names_are_the_bundled_files() -> None:
    names = preset_names()
    assert names == sorted(p.stem for p in presets_dir().glob("*.yaml"))
    assert {"none", "bwrap-strict", "bwrap-loose", "landlock"} <= set(names)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads(name: str) -> None:
    t = load_target(name)
    assert isinstance(t, Target)
    assert t.name == name
    assert t.description
    assert t.spec.source == str(presets_dir() / f"{name}.yaml")
    if isinstance(t, CommandTarget):  # agent presets (kind: agent) script the command instead
        assert "{cmd}" in t.spec.command or any("{cmd_shell}" in c for c in t.spec.command) \
            or any("{cmd_json}" in content for _, content in t.spec.files)
    # unavailable() is None or a reason, never an exception, on any machine.
    why = t.unavailable()
    assert why is None or (isinstance(why, str) and why)


def test_bwrap_presets_require_bwrap_with_an_install_hint() -> None:
    for name in ("bwrap-strict", "bwrap-loose"):
        assert load_target(name).spec.requires == (
            Requirement("bwrap", "apt-get install bubblewrap"),)


def test_none_preset_runs_the_command_as_is() -> None:
    t = load_target("none")
    assert t.argv({}, ["python3", "-c", "print(1)"]) == ["python3", "-c", "print(1)"]


def test_inline_command_becomes_a_target() -> None:
    t = load_target("env {cmd}")
    assert isinstance(t, CommandTarget)
    assert (t.name, t.spec.command, t.spec.source) == ("inline", ("env", "{cmd}"), "--target")
    assert t.argv({}, ["a", "b c"]) == ["env", "a", "b c"]


def test_inline_command_with_cmd_shell() -> None:
    t = load_target("sh -c {cmd_shell}")
    assert t.argv({}, ["echo", "a b"]) == ["sh", "-c", "echo 'a b'"]


def test_inline_command_is_validated() -> None:
    with pytest.raises(TargetError, match=r"^--target: command: unknown placeholder \{token\}$"):
        load_target("env {token} {cmd}")


def test_target_file(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text("name: mine\ncommand: [env, -i, '{cmd}']\npass_env: [LANG]\n")
    t = load_target(str(f))
    assert (t.name, t.spec.command, t.spec.source) == ("mine", ("env", "-i", "{cmd}"), str(f))


def test_invalid_target_file_names_the_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("name: bad\ncommand: [env]\n")
    with pytest.raises(TargetError) as info:
        load_target(str(f))
    assert str(info.value) == (f"{f}: command: must contain {{cmd}} (as its own element) "
                               "or {cmd_shell}, or a file must hold {cmd_json}")


def test_unparsable_target_file(tmp_path: Path) -> None:
    f = tmp_path / "broken.yaml"
    f.write_text("name: x\ncommand: [env\n")
    with pytest.raises(TargetError, match=r"cannot load target"):
        load_target(str(f))


def test_unknown_target_lists_presets() -> None:
    with pytest.raises(TargetError) as info:
        load_target("no-such-target-anywhere")
    msg = str(info.value)
    assert msg.startswith("unknown target 'no-such-target-anywhere': not a preset (")
    for name in preset_names():
        assert name in msg
    assert "{cmd}" in msg


# --- CommandTarget.argv --------------------------------------------------------------

def make(command: list[str], **kw) -> CommandTarget:
    return CommandTarget(TargetSpec(name="t", command=tuple(command), **kw))


CMD = ["python3", "-c", "print('it''s a test')", "two words"]


def test_cmd_is_spliced_as_several_arguments() -> None:
    t = make(["wrap", "--bind", "{workspace}", "{workspace}", "--", "{cmd}"])
    assert t.argv({"workspace": "/w"}, CMD) == ["wrap", "--bind", "/w", "/w", "--", *CMD]


def test_cmd_shell_is_one_shell_quoted_argument() -> None:
    t = make(["sh", "-c", "cd {workspace} && exec {cmd_shell}"])
    argv = t.argv({"workspace": "/w"}, CMD)
    assert argv[:2] == ["sh", "-c"]
    assert len(argv) == 3
    assert argv[2] == "cd /w && exec " + shlex.join(CMD)
    assert shlex.split(argv[2])[4:] == CMD  # round-trips through a shell


def test_python_placeholder_defaults_to_the_spec_python() -> None:
    t = make(["{python}", "launcher.py", "{cmd}"], python="/opt/py/bin/python3")
    assert t.argv({}, ["x"]) == ["/opt/py/bin/python3", "launcher.py", "x"]
    # An explicit value wins.
    assert t.argv({"python": "/usr/bin/python3"}, ["x"])[0] == "/usr/bin/python3"


def test_missing_value_raises_placeholder_error() -> None:
    t = make(["wrap", "{workspace}", "{cmd}"])
    with pytest.raises(PlaceholderError, match=r"\{workspace\}"):
        t.argv({}, ["x"])


def test_argv_does_not_expand_placeholders_inside_the_command() -> None:
    # The probe's own argv is data, never a template.
    t = make(["wrap", "{cmd}"])
    assert t.argv({"workspace": "/w"}, ["echo", "{workspace}"]) == ["wrap", "echo", "{workspace}"]


@pytest.fixture
def fake_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An executable 'fakebox' alone on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    tool = bindir / "fakebox"
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", str(bindir))
    return tool


def test_requirement_named_like_argv0_is_replaced_by_its_absolute_path(fake_tool: Path) -> None:
    t = make(["fakebox", "--flag", "{cmd}"], requires=(Requirement("fakebox"),))
    assert t.unavailable() is None
    assert t.argv({}, ["x"]) == [str(fake_tool), "--flag", "x"]


def test_a_name_that_is_not_a_requirement_is_left_as_written(fake_tool: Path) -> None:
    t = make(["fakebox", "{cmd}"])
    assert t.argv({}, ["x"]) == ["fakebox", "x"]


def test_unavailable_requirement_names_the_install_hint() -> None:
    t = make(["{cmd}"], requires=(Requirement(MISSING_TOOL, "apt-get install no-such-tool"),))
    assert t.unavailable() == Requirement(MISSING_TOOL, "apt-get install no-such-tool").hint()
    assert t.unavailable().startswith(f"{MISSING_TOOL} not found on PATH: apt-get install no-such-tool [also searched: ")


def test_unavailable_lists_every_missing_requirement() -> None:
    first, second = Requirement(MISSING_TOOL), Requirement(MISSING_TOOL + "2", "get it")
    t = make(["{cmd}"], requires=(first, second))
    assert t.unavailable() == f"{first.hint()}; {second.hint()}"
    assert t.unavailable().count(" [also searched: ") == 2
    assert f"{MISSING_TOOL}2 not found on PATH: get it [also searched: " in t.unavailable()


def test_missing_landlock_makes_a_target_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    t = make(["{cmd}"], kernel=("landlock",))
    monkeypatch.setattr(command, "landlock_abi", lambda: 0)
    why = t.unavailable()
    assert why is not None and "Landlock" in why and "5.13" in why
    monkeypatch.setattr(command, "landlock_abi", lambda: 4)
    assert t.unavailable() is None


def _isolated_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A lookup as an installed copy sees it: no checkout, an empty PATH; returns (cwd, cache)."""
    cwd, cache = tmp_path / "work", tmp_path / "cache"
    cwd.mkdir()
    monkeypatch.setattr(targets, "project_dir", lambda: None)
    monkeypatch.delenv("SANDBOXCHECK_TOOLS", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.chdir(cwd)
    return cwd, cache


def _fake_tool(folder: Path, name: str = MISSING_TOOL) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tool = folder / name
    tool.write_text("#!/bin/sh\nexit 0\n")
    tool.chmod(0o755)
    return tool


def test_requirement_hint_lists_every_folder_searched_and_the_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd, cache = _isolated_lookup(tmp_path, monkeypatch)
    npm = "npm install --prefix .tools/npm @anthropic-ai/sandbox-runtime@0.0.78"
    assert Requirement("srt", npm).hint() == (
        f"srt not found on PATH: {npm} [also searched: {cwd}/.tools/npm/node_modules/.bin, "
        f"{cache}/sandboxcheck/npm/node_modules/.bin; $SANDBOXCHECK_TOOLS unset]")
    monkeypatch.setenv("SANDBOXCHECK_TOOLS", "/opt/a:/opt/b")
    assert Requirement("bwrap").hint([Path("/pinned/bin")]) == (
        f"bwrap not found on PATH [also searched: /pinned/bin, /opt/a, /opt/b, "
        f"{cwd}/.tools/npm/node_modules/.bin, {cache}/sandboxcheck/npm/node_modules/.bin]")


def test_an_installed_copy_finds_tools_under_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # `npm install --prefix .tools/npm ...` run where sandboxcheck runs, as the hint says.
    cwd, _ = _isolated_lookup(tmp_path, monkeypatch)
    assert targets.find_tool(MISSING_TOOL) is None
    tool = _fake_tool(cwd / ".tools" / "npm" / "node_modules" / ".bin")
    assert targets.find_tool(MISSING_TOOL) == str(tool)


def test_an_installed_copy_finds_tools_in_the_callers_tool_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, cache = _isolated_lookup(tmp_path, monkeypatch)
    tool = _fake_tool(cache / "sandboxcheck" / "npm" / "node_modules" / ".bin")
    assert targets.user_tools_dir() == cache / "sandboxcheck" / "npm"
    assert targets.find_tool(MISSING_TOOL) == str(tool)
    # The working directory's folder comes first, then the caller's.
    nearer = _fake_tool(Path.cwd() / ".tools" / "npm" / "node_modules" / ".bin")
    assert targets.find_tool(MISSING_TOOL) == str(nearer)
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert targets.user_tools_dir() == tmp_path / "home" / ".cache" / "sandboxcheck" / "npm"


def test_a_missing_preset_tool_names_the_folders_and_the_npm_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = os.environ["PATH"]
    cwd, _ = _isolated_lookup(tmp_path, monkeypatch)
    monkeypatch.setenv("PATH", path)  # node, bwrap, socat, rg from the system; srt from npm only
    why = load_target("srt").unavailable()
    assert why is not None and why.startswith(
        "srt not found on PATH: npm install --prefix .tools/npm @anthropic-ai/sandbox-runtime@0.0.78 (or run .ci/run)")
    assert f"{cwd}/.tools/npm/node_modules/.bin" in why
    _fake_tool(cwd / ".tools" / "npm" / "node_modules" / ".bin", "srt")
    assert load_target("srt").unavailable() is None


# --- environment ---------------------------------------------------------------------

def test_environment_passes_only_pass_env_names_from_the_caller() -> None:
    t = make(["{cmd}"], pass_env=("LANG", "TERM", "NOT_SET_BY_CALLER"))
    base = {"PATH": "/usr/bin:/bin", "HOME": "/fake/home"}
    caller = {"LANG": "C.UTF-8", "TERM": "xterm", "AWS_SECRET_ACCESS_KEY": "secret",
              "HOME": "/root", "PATH": "/caller/bin"}
    env = t.environment(base, caller)
    assert env == {"PATH": "/usr/bin:/bin", "HOME": "/fake/home", "LANG": "C.UTF-8", "TERM": "xterm"}
    assert base == {"PATH": "/usr/bin:/bin", "HOME": "/fake/home"}  # not mutated


def test_environment_without_pass_env_is_the_base() -> None:
    env = make(["{cmd}"]).environment({"PATH": "/bin"}, dict(os.environ, SECRET="s"))
    assert env == {"PATH": "/bin"}


def test_spec_env_is_set_last() -> None:
    t = make(["{cmd}"], env=(("PATH", "/sandbox/bin"), ("X", "1")), pass_env=("PATH",))
    env = t.environment({"PATH": "/bin"}, {"PATH": "/caller"})
    assert env == {"PATH": "/sandbox/bin", "X": "1"}


def test_describe() -> None:
    t = make(["wrap", "{cmd}"], description="d", source="s.yaml")
    assert t.describe() == {"name": "t", "description": "d", "command": ["wrap", "{cmd}"],
                            "source": "s.yaml"}


# --- {token} in a target's files ---------------------------------------------------

def test_files_may_use_the_checks_token_but_options_and_command_may_not() -> None:
    spec = parse_target(ok(files={"{root}/run/{token}.json": '{"secret": "{token}"}'}), "t.yaml")
    assert spec.files == (("{root}/run/{token}.json", '{"secret": "{token}"}'),)
    assert target_error(ok(options={"settings": "{root}/{token}.json"})) == [
        "my-target.yaml: options/files: unknown placeholder {token}"]
    assert target_error(ok(files={"{root}/x": "{tokn}"})) == [
        "my-target.yaml: options/files: unknown placeholder {tokn}"]


def test_a_target_file_gets_the_runs_token_written_into_the_root(tmp_path: Path) -> None:
    from sandboxcheck.matrix.load import parse_matrix
    from sandboxcheck.model import Observed
    from sandboxcheck.run.options import RunOptions
    from sandboxcheck.run.schedule import run_matrix

    target = tmp_path / "tok.yaml"
    target.write_text('name: tok\ncommand: ["{cmd}"]\n'
                      'files: {"{root}/workspace/from-target.txt": "SCNRY-{token}-from-target"}\n')
    matrix = parse_matrix("""\
checks:
  - id: fs.read.target-file
    category: fs-read
    title: the target's file carries the check's canary
    probe: read_file
    args: {path: "{workspace}/from-target.txt"}
    expect: denied
""", "m.yaml")
    (r,) = run_matrix(matrix, load_target(str(target)), RunOptions(jobs=1, control=False)).results
    # Leak evidence matches only this check's token: the file held it, not the text "{token}".
    assert r.observed is Observed.ALLOWED, r
    assert r.evidence == ("canary of from-target in the target's stdout",)


def test_lookup_survives_a_removed_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd, cache = _isolated_lookup(tmp_path, monkeypatch)
    cwd.rmdir()
    assert targets.tool_dirs() == [cache / "sandboxcheck" / "npm" / "node_modules" / ".bin"]
    assert targets.find_tool(MISSING_TOOL) is None


def test_a_tool_is_asked_its_version_once_per_installed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir, state, asked = tmp_path / "bin", tmp_path / "state", tmp_path / "asked"
    bindir.mkdir()
    tool = bindir / "sc-fake-tool"
    tool.write_text(f"#!/bin/sh\necho x >> {asked}\necho 'sc-fake-tool 1.2.3'\n")
    tool.chmod(0o755)
    monkeypatch.setenv("SANDBOXCHECK_TOOLS", str(bindir))
    monkeypatch.setattr(targets, "state_dir", lambda name, create=True: state / name)
    targets.installed_version.cache_clear()
    assert targets.installed_version("sc-fake-tool") == "sc-fake-tool 1.2.3"
    targets.installed_version.cache_clear()  # as a new process would start
    assert targets.installed_version("sc-fake-tool") == "sc-fake-tool 1.2.3"
    assert asked.read_text().count("x") == 1
    # Another file at the same path (an upgrade) is asked again.
    tool.write_text(f"#!/bin/sh\necho x >> {asked}\necho 'sc-fake-tool 1.2.40'\n")
    targets.installed_version.cache_clear()
    assert targets.installed_version("sc-fake-tool") == "sc-fake-tool 1.2.40"
    targets.installed_version.cache_clear()
