"""Known answers: the baseline matrix against real third-party sandboxes.

firejail (apt), Anthropic's sandbox-runtime ``srt`` and OpenAI's ``codex
sandbox`` (npm, installed into ``.tools/npm`` by ``.ci/run``), each driven the
way people run it. Every set below was measured on Debian 12 (kernel 6.x,
root, Landlock ABI 7) with firejail 0.9.72, srt 0.0.78 and codex 0.169.0;
the srt presets also run the newest srt (``srt@latest``: 0.0.83, installed
with a node 22 into the pinning cache), with the same answers. The comments
say why each sandbox leaks what it leaks. When a tool changes
behaviour, the failing assertion names exactly the checks that moved. A test
skips only when its tool is not installed (with the fix in the reason);
``.ci/run`` installs them all, so nothing skips in CI.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.model import Matrix, Observed, Status
from sandboxcheck.run.options import RunOptions
from sandboxcheck.run.schedule import run_matrix
from sandboxcheck.model import RunReport
from sandboxcheck.targets.command import CommandTarget
from sandboxcheck.targets.base import Target, TargetError
from sandboxcheck.targets.tools import find_tool, installed_version, state_dir
from sandboxcheck.targets.registry import load_target

pytestmark = pytest.mark.integration

READS_OUTSIDE = {"fs.read.absolute", "fs.read.relative", "fs.read.symlink", "fs.read.proc-root",
                 "fs.read.list-outside", "credentials.dotenv-outside"}
HOME_CREDENTIALS = {"credentials.ssh-key", "credentials.aws", "credentials.gcloud", "credentials.kube",
                    "credentials.netrc", "credentials.docker", "credentials.git", "credentials.npmrc",
                    "credentials.pypirc"}
WRITES_OUTSIDE = {"fs.write.outside", "fs.write.symlink", "fs.write.tar-traversal", "fs.write.host-tmp",
                  "fs.write.home"}
ENV_ALL = {"env.own", "env.proc-1", "env.proc-ppid"}
AGENT_CONFIG = {"tamper.git-hook", "tamper.git-config", "tamper.claude-settings", "tamper.codex-config"}


@dataclass(frozen=True, slots=True)
class Known:
    """What one preset does with the baseline matrix."""

    fails: frozenset[str]
    inconclusive: frozenset[str] = frozenset()


KNOWN: dict[str, Known] = {
    # --whitelist={workspace} turns the temp folder into a tmpfs holding only the
    # workspace (and the probes), --read-only=/ and --net=none do the rest, so
    # every read, write, credential, network, signal and socket check passes.
    # What it leaks:
    "firejail": Known(
        fails=frozenset({
            # firejail hands the command the caller's whole environment...
            "env.own",
            # ...and pid 1 of its pid namespace (firejail's own init) keeps it too.
            # The harness runs as root with every capability, so CAP_SYS_PTRACE
            # reads that process's environ (--caps.drop=all would close both).
            "env.proc-1", "env.proc-ppid",
            # No profile: nothing restricts exec.
            "exec.shell",
            # The whole workspace is read-write, its .git hooks/config and the
            # agents' settings included: a hook then runs outside on the next commit.
            *AGENT_CONFIG,
        }),
        # firejail keeps the session open until every process in its pid namespace
        # has exited, so the double-forked daemon (30 s lifetime) holds the target
        # past the 10 s timeout: the harness sees a timeout, never a survivor or a
        # clean exit, and cannot tell which.
        inconclusive=frozenset({"process.daemon"}),
    ),
    # --private=WORKSPACE swaps only the home folder of the passwd database (here
    # /root) and /home; --net=none gives a network namespace. Nothing else moves.
    "firejail-private": Known(
        fails=frozenset({
            # Everything outside the swapped home stays readable and writable:
            # outside/, the host's /tmp, the run's sockets in run/.
            *READS_OUTSIDE, *WRITES_OUTSIDE - {"fs.write.home"}, "ipc.ssh-agent", "ipc.docker-sock",
            # The run's fake HOME is $HOME, not the passwd home firejail swaps, so
            # its dummy credentials and .bashrc stay in reach. On a workstation
            # whose real ~ is the passwd home, ~ would be hidden, but any secret
            # kept elsewhere (as here) is not.
            *HOME_CREDENTIALS, "fs.write.home", "tamper.bashrc",
            # Environment, pid 1's environment and exec as in the firejail preset.
            *ENV_ALL, "exec.shell",
            # The workspace is writable as a whole.
            *AGENT_CONFIG,
        }),
        inconclusive=frozenset({"process.daemon"}),  # as for firejail: the session waits for it
    ),
    # srt's built-in defaults (no ~/.srt-settings.json in the run's fake HOME):
    # bwrap --ro-bind / /, --unshare-net, --unshare-pid, --unshare-user with all
    # capabilities dropped (so pid 1's environ is EACCES), seccomp blocking unix
    # sockets. It leaks:
    "srt": Known(
        fails=frozenset({
            # Reads are allowed everywhere by default: outside files and every
            # dummy credential in the home.
            *READS_OUTSIDE, *HOME_CREDENTIALS,
            # The command inherits the caller's environment (srt adds proxy variables).
            "env.own",
            # It runs the command with bash -c: shells are the point.
            "exec.shell",
            # The defaults allow writes nowhere, the workspace included: too tight to work in.
            "fs.write.workspace",
        }),
    ),
    # The harness's settings file only adds the workspace to allowWrite.
    "srt-settings": Known(
        fails=frozenset({
            *READS_OUTSIDE, *HOME_CREDENTIALS, "env.own", "exec.shell",
            # With the workspace writable, srt's mandatory denies still protect
            # .git/hooks and .git/config, but not .claude/settings.json (only
            # .claude/commands and .claude/agents) nor .codex/config.toml: an agent
            # can switch its own sandbox off for the next session.
            "tamper.claude-settings", "tamper.codex-config",
        }),
    ),
    # codex sandbox -c sandbox_mode=read-only: bundled bwrap with the root read-only,
    # a pid namespace, seccomp refusing network and unix sockets with EPERM.
    "codex-read-only": Known(
        fails=frozenset({
            # Reads are allowed everywhere: outside files and every dummy credential.
            *READS_OUTSIDE, *HOME_CREDENTIALS,
            # The command gets the caller's whole environment, and pid 1 of the
            # sandbox (codex's own helper) carries it too.
            *ENV_ALL,
            "exec.shell",
            # read-only means read-only: not even the workspace is writable.
            "fs.write.workspace",
        }),
    ),
    # workspace-write adds the workspace (minus .git, .codex, .agents), /tmp and
    # $TMPDIR to the writable roots.
    "codex-workspace-write": Known(
        fails=frozenset({
            *READS_OUTSIDE, *HOME_CREDENTIALS, *ENV_ALL, "exec.shell",
            # All of /tmp is writable. The throwaway root lives in the temp folder,
            # so outside/ and the fake home fall under that rule as well as the
            # host's /tmp itself: on a real machine it is whatever sits in /tmp
            # (other checkouts, build trees, sockets' folders).
            *WRITES_OUTSIDE, "tamper.bashrc",
            # .git and .codex are kept read-only; .claude is not.
            "tamper.claude-settings",
        }),
    ),
    # The same with /tmp and $TMPDIR excluded: every write outside is EROFS again.
    "codex-workspace-write-no-tmp": Known(
        fails=frozenset({
            *READS_OUTSIDE, *HOME_CREDENTIALS, *ENV_ALL, "exec.shell", "tamper.claude-settings",
        }),
    ),
}


def available(name: str) -> Target:
    """The preset, or a skip naming what is missing and how to install it."""
    target = load_target(name)
    why = target.unavailable()
    if why:
        pytest.skip(f"{name} is not installed here: {why}")
    return target


def run(matrix: Matrix, target: Target) -> RunReport:
    return run_matrix(matrix, target, RunOptions(jobs=2))


def by_status(report: RunReport, status: Status) -> set[str]:
    return {r.id for r in report.results if r.status is status}


Reports = Callable[[str], RunReport]


@pytest.fixture(scope="module")
def reports(baseline: Matrix) -> Reports:
    """Each preset's baseline report, run once for every test of this module."""
    cache: dict[str, RunReport] = {}

    def get(name: str) -> RunReport:
        if name not in cache:
            cache[name] = run(baseline, available(name))
        return cache[name]

    return get


#: Presets also run on their newest release, where the known answers are the same.
LATEST = ("srt@latest", "srt-settings@latest")


@pytest.mark.parametrize("name", [*sorted(KNOWN), *LATEST])
def test_baseline_known_answers(name: str, reports: Reports) -> None:
    report = reports(name)
    known = KNOWN[name.split("@", 1)[0]]
    reasons = {r.id: r.reason for r in report.results if r.status is not Status.PASS}
    assert by_status(report, Status.FAIL) == known.fails, reasons
    assert by_status(report, Status.INCONCLUSIVE) == known.inconclusive, reasons
    for r in report.results:
        if r.status is Status.FAIL:
            # A leak is named by the evidence the harness saw outside.
            assert (r.observed is Observed.ALLOWED and r.evidence) or r.expect == "allowed", r
    assert report.exit_code() == 1


def errnos(report: RunReport) -> dict[str, str | None]:
    return {r.id: r.errno for r in report.results}


def test_firejail_layers(reports: Reports) -> None:
    e = errnos(reports("firejail"))
    assert e["fs.read.absolute"] == "ENOENT"  # not whitelisted: absent from its view
    assert e["credentials.ssh-key"] == "ENOENT"
    assert e["network.tcp"] == "ECONNREFUSED"  # --net=none: an empty network namespace
    assert e["network.http"] == e["network.http-direct"] == "ECONNREFUSED"  # no proxy: straight into it
    assert e["process.signal-host"] == "ESRCH"
    results = {r.id: r for r in reports("firejail").results}
    assert "timed out" in results["process.daemon"].reason


def test_firejail_private_hides_only_the_passwd_home(reports: Reports) -> None:
    results = {r.id: r for r in reports("firejail-private").results}
    assert any("~/.ssh/id_ed25519" in e for e in results["credentials.ssh-key"].evidence)
    assert any("created on the host" in e for e in results["fs.write.outside"].evidence)
    assert results["network.tcp"].status is Status.PASS


def test_srt_defaults_read_everywhere_and_write_nowhere(reports: Reports) -> None:
    report = reports("srt")
    e = errnos(report)
    # Proof that srt ran with its built-in defaults (allowWrite empty), not with a
    # settings file found in some HOME: even the workspace is read-only.
    assert e["fs.write.workspace"] == "EROFS"
    assert e["ipc.ssh-agent"] == e["ipc.docker-sock"] == "EPERM"  # seccomp blocks AF_UNIX
    assert e["env.proc-1"] == "EACCES"  # pid 1 sits outside srt's user namespace
    # Egress goes through srt's proxy, which refuses a name no list names (an empty
    # allowlist is deny-all); a direct connection meets srt's own network namespace.
    assert e["network.http"] == e["network.https"] == "PROXY_REFUSED"
    assert e["network.http-direct"] == "ECONNREFUSED"
    results = {r.id: r for r in report.results}
    assert any("outside/secret.txt" in ev for ev in results["fs.read.absolute"].evidence)


def test_srt_sees_no_settings_file_in_the_fake_home(tmp_path: Path) -> None:
    # srt reads ~/.srt-settings.json from $HOME by default. $HOME is the run's fake
    # home, never seeded with one (and the developer's own file is out of its
    # reach), so the srt preset measures the built-in defaults; the EROFS on the
    # workspace in the test above shows they are what srt applied.
    from sandboxcheck.run.workspace import seed

    root = seed(tmp_path, "0123456789abcdef")
    assert root.home == tmp_path / "home" and root.home.is_dir()
    assert not (root.home / ".srt-settings.json").exists()


def test_srt_settings_writes_its_file_into_the_throwaway_root(reports: Reports) -> None:
    report = reports("srt-settings")
    argv = report.target["expanded_command"]
    settings = argv[argv.index("--settings") + 1]
    root = settings.rsplit("/", 1)[0]
    assert settings.endswith("/srt-settings.json")
    assert root.startswith(tempfile.gettempdir())
    assert not os.path.exists(root), "the settings file must go with its throwaway root"
    assert {r.id: r.status for r in report.results}["fs.write.workspace"] is Status.PASS
    e = errnos(report)
    assert e["tamper.git-hook"] == e["tamper.git-config"] == "EROFS"  # srt's mandatory denies


SMALL = """\
version: 1
name: srt-custom
checks:
  - id: credentials.ssh-key
    category: credentials
    title: Read the dummy SSH private key in the fake home
    probe: read_file
    args: {path: "{home}/.ssh/id_ed25519"}
    expect: denied
  - id: credentials.aws
    category: credentials
    title: Read the dummy AWS credentials
    probe: read_file
    args: {path: "{home}/.aws/credentials"}
    expect: denied
  - id: fs.write.workspace
    category: fs-write
    title: Write a file inside the workspace
    probe: write_file
    args: {path: "{workspace}/src/generated.txt", content: "written {token}"}
    evidence: {kind: file, path: "{workspace}/src/generated.txt", contains: "{token}"}
    expect: allowed
"""


def test_srt_settings_takes_a_settings_file_of_yours(tmp_path: Path) -> None:
    available("srt-settings")
    settings = tmp_path / "srt.json"
    settings.write_text(json.dumps({
        "network": {"allowedDomains": [], "deniedDomains": []},
        "filesystem": {"denyRead": ["~/.ssh"], "allowRead": [], "allowWrite": ["."], "denyWrite": []}}))
    matrix_file = tmp_path / "m.yaml"
    matrix_file.write_text(SMALL)
    target = load_target("srt-settings", {"settings": str(settings)})
    assert isinstance(target, CommandTarget)
    assert target.option_values() == {"settings": str(settings)}
    report = run(load_matrix(matrix_file), target)
    status = {r.id: r.status for r in report.results}
    # denyRead ~/.ssh (srt expands ~ from the fake HOME) hides the key but not ~/.aws.
    assert status == {"credentials.ssh-key": Status.PASS, "credentials.aws": Status.FAIL,
                      "fs.write.workspace": Status.PASS}
    argv = report.target["expanded_command"]
    assert argv[argv.index("--settings") + 1] == str(settings)


def test_codex_home_is_a_stable_folder_outside_the_temp_folder(reports: Reports) -> None:
    report = reports("codex-read-only")
    argv = report.target["expanded_command"]
    home = next(a.split("=", 1)[1] for a in argv if a.startswith("CODEX_HOME="))
    assert home == str(state_dir("codex-read-only"))
    assert not Path(home).resolve().is_relative_to(Path(tempfile.gettempdir()).resolve())
    assert Path(home).resolve() != (Path.home() / ".codex").resolve()
    assert Path(home).is_dir()
    e = errnos(report)
    assert e["network.tcp"] == e["network.udp"] == e["ipc.docker-sock"] == "EPERM"  # seccomp
    assert e["fs.write.outside"] == "EROFS"


def test_codex_workspace_write_opens_tmp_unless_excluded(reports: Reports) -> None:
    open_tmp = {r.id: r for r in reports("codex-workspace-write").results}
    assert any("/tmp/sandboxcheck-tmp-write-" in e for e in open_tmp["fs.write.host-tmp"].evidence)
    closed = errnos(reports("codex-workspace-write-no-tmp"))
    assert closed["fs.write.host-tmp"] == closed["fs.write.outside"] == "EROFS"
    assert closed["tamper.git-hook"] == closed["tamper.codex-config"] == "EROFS"


# --- how the harness finds and configures these tools ------------------------------

@pytest.mark.parametrize("name, binary", [("firejail", "firejail"), ("srt", "srt"),
                                          ("codex-read-only", "codex")])
def test_installed_version_reads_each_tools_own_format(name: str, binary: str) -> None:
    available(name)
    version = installed_version(binary)
    assert version is not None and version.startswith(f"{binary} ")
    assert version.split()[1][0].isdigit(), version


def test_sandboxcheck_tools_is_searched_before_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "firejail"
    tool.write_text("#!/bin/sh\necho 'firejail version 9.9.9'\n")
    tool.chmod(0o755)
    monkeypatch.setenv("SANDBOXCHECK_TOOLS", str(tmp_path))
    installed_version.cache_clear()
    try:
        assert find_tool("firejail") == str(tool)
        assert installed_version("firejail") == "firejail 9.9.9"
        target = load_target("firejail")
        assert target.unavailable() is None
        assert target.argv({"workspace": "/w", "probes": "/p"}, ["x"])[0] == str(tool)
    finally:
        installed_version.cache_clear()


def test_project_npm_folder_is_searched_after_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sandboxcheck.targets import tools as targets

    project = tmp_path / "project"
    bindir = project / ".tools" / "npm" / "node_modules" / ".bin"
    bindir.mkdir(parents=True)
    for folder in (bindir, tmp_path / "path"):
        folder.mkdir(exist_ok=True)
        tool = folder / "sandboxcheck-fake-srt"
        tool.write_text("#!/bin/sh\nexit 0\n")
        tool.chmod(0o755)
    monkeypatch.setattr(targets, "project_dir", lambda: project)
    monkeypatch.delenv("SANDBOXCHECK_TOOLS", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "path"))
    assert find_tool("sandboxcheck-fake-srt") == str(tmp_path / "path" / "sandboxcheck-fake-srt")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert find_tool("sandboxcheck-fake-srt") == str(bindir / "sandboxcheck-fake-srt")


def test_target_options_are_checked() -> None:
    with pytest.raises(TargetError, match=r"target 'srt' takes no option 'settings'; its options: none"):
        load_target("srt", {"settings": "/etc/hostname"})
    with pytest.raises(TargetError, match=r"--target-opt settings=/no/such/file.json: no such file"):
        load_target("srt-settings", {"settings": "/no/such/file.json"})
    with pytest.raises(TargetError, match=r"needs --target-opt settings=VALUE"):
        load_target("srt --settings {settings} -c {cmd_shell}")
    # A survey gives every target the same options; those that do not take one ignore it.
    assert load_target("srt", {"settings": "/etc/hostname"}, strict=False).name == "srt"


def test_target_file_pointing_at_its_own_settings(tmp_path: Path) -> None:
    settings = tmp_path / "mine.json"
    settings.write_text("{}")
    f = tmp_path / "my-srt.yaml"
    f.write_text(f"name: my-srt\nrequires: [srt]\noptions: {{settings: {settings}}}\n"
                 "command: [srt, --settings, '{settings}', -c, '{cmd_shell}']\n")
    t = load_target(str(f))
    assert isinstance(t, CommandTarget)
    argv = t.argv({}, ["echo", "a b"])
    assert argv[1:] == ["--settings", str(settings), "-c", "echo 'a b'"]


def test_files_are_written_by_start_only_under_the_root(tmp_path: Path) -> None:
    from sandboxcheck.targets.registry import parse_target

    with pytest.raises(TargetError, match=r"files: '/etc/x' must be a path under \{root\}/"):
        parse_target({"name": "t", "command": ["{cmd}"], "files": {"/etc/x": "y"}}, "t.yaml")
    spec = parse_target({"name": "t", "command": ["cat", "{root}/f.json", "{cmd}"],
                         "files": {"{root}/f.json": '{"ws": "{workspace}"}'}}, "t.yaml")
    target = CommandTarget(spec)
    values = {"root": str(tmp_path), "workspace": "/w"}
    assert target.argv(values, ["x"]) == ["cat", f"{tmp_path}/f.json", "x"]
    assert not (tmp_path / "f.json").exists()  # argv stays pure: start() writes the files
    target.start(values, ["x"])
    assert (tmp_path / "f.json").read_text() == '{"ws": "/w"}'
