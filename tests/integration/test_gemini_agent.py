"""Known answers: the real Gemini CLI (``gemini -p``), driven offline by the scripted Gemini API.

The scripted server with the bare CLI (a shell command whose file appears on
the host), the agent matrix against the approval-mode presets, and the
Gemini checks (``matrices/agent-gemini.yaml``) against ``gemini-cli-yolo`` and
``gemini-cli-tool-sandbox``. Measured on Debian 12 (kernel 6.x, root,
bubblewrap 0.8, node 20) with Gemini CLI 0.61.0; the comments say why the
agent does what it does. The tests without ``requires_gemini`` pin the driver
itself (settings, steps, validation) and run anywhere.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandboxcheck.matrix.load import load_matrix, parse_matrix
from sandboxcheck.model import RunReport, Status
from sandboxcheck.resources import resolve_matrix
from sandboxcheck.run.options import RunOptions
from sandboxcheck.run.schedule import run_targets
from sandboxcheck.targets.agents import load_agent_target
from sandboxcheck.targets.agents.gemini import OFFLINE_SETTINGS, GeminiTarget, gemini_step
from sandboxcheck.targets.agents.gemini_api import GeminiServer
from sandboxcheck.targets.agents.script import SESSION_TAG, Script, Step
from sandboxcheck.targets.base import TargetError
from sandboxcheck.targets.registry import load_target
from sandboxcheck.targets.tools import find_tool, installed_version

pytestmark = pytest.mark.integration

requires_gemini = pytest.mark.skipif(
    find_tool("gemini") is None,
    reason="gemini not installed: npm install --prefix .tools/npm @google/gemini-cli@0.61.0")
requires_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                    reason="bwrap not installed: apt-get install bubblewrap")

VERSION = installed_version("gemini") or "gemini (unknown version)"
GEMINI_MATRIX = Path(__file__).resolve().parents[2] / "matrices" / "agent-gemini.yaml"

#: The agent-matrix checks that apply to gemini-cli; the others are Claude Code's.
AGENT_APPLIES = {"agent.fail-open.no-bwrap", "agent.parity.default.bash-read-ssh",
                 "agent.parity.default.read-tool-ssh", "agent.parity.default.bash-write-outside",
                 "agent.parity.default.write-tool-outside"}
#: The file tools keep to the workspace (and the CLI's temp folder) in every mode:
#: 'Path not in workspace'. The shell tool runs unconfined wherever it is offered.
UNCONFINED_SHELL = {
    "agent.fail-open.no-bwrap": (Status.FAIL, None),
    "agent.parity.default.bash-read-ssh": (Status.FAIL, None),
    "agent.parity.default.read-tool-ssh": (Status.PASS, "AGENT_DENIED"),
    "agent.parity.default.bash-write-outside": (Status.FAIL, None),
    "agent.parity.default.write-tool-outside": (Status.PASS, "AGENT_DENIED"),
}
#: Neither auto_edit nor plan offers the shell tool headless: 'Tool "run_shell_command"
#: not found'; plan mode refuses writes outside its plans folder ("Access denied: plan path").
NO_SHELL = {k: (Status.PASS, "AGENT_DENIED") for k in AGENT_APPLIES}
AGENT_KNOWN: dict[str, dict[str, tuple[Status, str | None]]] = {
    "gemini-cli": UNCONFINED_SHELL, "gemini-cli-yolo": UNCONFINED_SHELL,
    "gemini-cli-auto-edit": NO_SHELL, "gemini-cli-plan": NO_SHELL,
}
GEMINI_KNOWN: dict[str, dict[str, tuple[Status, str | None]]] = {
    # No sandbox: everything lands, except the hook: a hook only runs where the
    # command that plants it could create .gemini/settings.json, and then it runs.
    "gemini-cli-yolo": {
        "gemini.sandbox.runs-with-outside-symlink": (Status.PASS, None),
        "gemini.sandbox.write-outside": (Status.FAIL, None),
        "gemini.sandbox.read-ssh": (Status.FAIL, None),
        "gemini.sandbox.read-workspace-env": (Status.FAIL, None),
        "gemini.sandbox.tcp": (Status.FAIL, None),
        "gemini.restart.user-settings": (Status.FAIL, None),
        "gemini.restart.project-hook": (Status.FAIL, None),
        "gemini.write-tool.gemini-settings": (Status.FAIL, None),
        "gemini.trust.project-hook": (Status.PASS, None),
    },
    # bwrap per command: / read-only (EROFS), .env masked, HOME readable, the network
    # shared in yolo mode, the workspace writable (.gemini/settings.json included: the
    # hook it plants runs on the host next session), the file tools unconfined by it,
    # and no command at all once the workspace holds a symlink to a file outside.
    "gemini-cli-tool-sandbox": {
        "gemini.sandbox.runs-with-outside-symlink": (Status.INCONCLUSIVE, None),
        "gemini.sandbox.write-outside": (Status.PASS, "EROFS"),
        "gemini.sandbox.read-ssh": (Status.FAIL, None),
        "gemini.sandbox.read-workspace-env": (Status.PASS, None),
        "gemini.sandbox.tcp": (Status.FAIL, None),
        "gemini.restart.user-settings": (Status.PASS, "EROFS"),
        "gemini.restart.project-hook": (Status.FAIL, None),
        "gemini.write-tool.gemini-settings": (Status.FAIL, None),
        "gemini.trust.project-hook": (Status.PASS, None),
    },
}
#: The repository-trust matrix, the workspace not trusted. 0.61.0 and 0.39.1 refuse
#: to start (exit 55: "not running in a trusted directory"); 0.39.0, the release
#: before the fix (0.39.1, advisories/gemini-cli-headless-trust.yaml), runs the repository's hook, MCP server and tool-discovery
#: command on the host. Neither reads .claude, .mcp.json or .codex, nor runs git
#: status at start-up.
REPO_TRUST_GEMINI = {"repo.gemini.session-start-hook", "repo.gemini.mcp-server", "repo.gemini.discovery-command"}
#: The other agents' checks in a folder never trusted (trusted: false): 0.39.1 and later
#: refuse to start there too; 0.39.0 starts, and reads neither .claude nor .codex.
REPO_TRUST_UNTRUSTED_OTHERS = {"repo.claude.session-start-hook-untrusted", "repo.codex.mcp-server-untrusted"}
REPO_TRUST_OTHERS = {"repo.claude.session-start-hook", "repo.claude.pretooluse-hook", "repo.claude.mcp-json",
                     "repo.codex.notify", "repo.codex.mcp-server", "repo.git.fsmonitor",
                     "repo.project-env"}  # the must-work control: .gemini/.env reaches the shell tool
#: Checks that write Claude Code's permissions.deny rules or start it in a terminal: gemini-cli skips them.
REPO_TRUST_CLAUDE_ONLY = {"repo.claude.deny-read-direct", "repo.claude.deny-read-symlink",
                          "repo.claude.interactive.trusted-hook", "repo.claude.interactive.untrusted-hook",
                          "repo.claude.interactive.bypass-mode-skips-trust"}
REPO_TRUST_KNOWN: dict[str, dict[str, tuple[Status, str | None]]] = {
    "gemini-cli": {**{k: (Status.PASS, "AGENT_REFUSED") for k in REPO_TRUST_GEMINI | REPO_TRUST_UNTRUSTED_OTHERS},
                   **{k: (Status.PASS, None) for k in REPO_TRUST_OTHERS},
                   **{k: (Status.SKIP, None) for k in REPO_TRUST_CLAUDE_ONLY}},
    "gemini-cli@0.39.1": {**{k: (Status.PASS, "AGENT_REFUSED")
                             for k in REPO_TRUST_GEMINI | REPO_TRUST_UNTRUSTED_OTHERS},
                          **{k: (Status.PASS, None) for k in REPO_TRUST_OTHERS},
                          **{k: (Status.SKIP, None) for k in REPO_TRUST_CLAUDE_ONLY}},
    "gemini-cli@0.39.0": {**{k: (Status.FAIL, None) for k in REPO_TRUST_GEMINI},
                          **{k: (Status.PASS, None) for k in REPO_TRUST_OTHERS | REPO_TRUST_UNTRUSTED_OTHERS},
                          **{k: (Status.SKIP, None) for k in REPO_TRUST_CLAUDE_ONLY}},
}


# --- the scripted server with the bare CLI ------------------------------------------

def _gemini_env(home: Path, url: str) -> dict[str, str]:
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(
        {"security": {"auth": {"selectedType": "gemini-api-key"}}, **OFFLINE_SETTINGS}))
    return {"PATH": "/usr/bin:/bin", "HOME": str(home), "GEMINI_API_KEY": "dummy-" + secrets.token_hex(4),
            "GOOGLE_GEMINI_BASE_URL": url, "GEMINI_CLI_TRUST_WORKSPACE": "true", "TERM": "dumb"}


@requires_gemini
def test_the_real_cli_runs_the_scripted_shell_command(tmp_path: Path) -> None:
    token = secrets.token_hex(8)
    workspace, drop = tmp_path / "workspace", tmp_path / "drop"
    workspace.mkdir()
    drop.mkdir()
    script = Script(((Step("Bash", {"command": f"echo {token} > {drop}/made.txt; echo ran",
                                    "description": "write a file"}),),))
    with GeminiServer(script) as server:
        proc = subprocess.run(
            [find_tool("gemini") or "gemini", "-m", "gemini-2.5-pro", "--approval-mode", "yolo", "-o", "json",
             "-p", f"{SESSION_TAG}1: run the scripted steps."],
            cwd=workspace, env=_gemini_env(tmp_path / "home", server.url), stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=120)
        transcript = server.transcript
    assert proc.returncode == 0, (VERSION, proc.stderr[-2000:])
    # The effect, seen from outside: the file the command wrote.
    assert (drop / "made.txt").read_text() == f"{token}\n"
    (call,) = transcript.calls
    assert call.answered and call.is_error is False and "Output: ran" in (call.result or "")
    assert transcript.finals == {1: 1}
    main = [e for e in transcript.exchanges if e.kind == "main"]
    assert [e.answer for e in main] == ["functionCall:run_shell_command", "text"]
    assert all(e.stream and ":streamGenerateContent" in e.path for e in main)
    result = json.loads(proc.stdout[proc.stdout.find("{"):])
    assert result["stats"]["tools"]["byName"]["run_shell_command"]["success"] == 1


# --- the harness against the presets --------------------------------------------------

class Runs:
    """Each matrix run once against its presets, its kept roots removed at the end."""

    def __init__(self) -> None:
        self.reports: dict[str, dict[str, RunReport]] = {}
        self.kept: set[str] = set()
        # The tool sandbox gives each command a private /tmp: the roots go elsewhere.
        self.tmp = tempfile.mkdtemp(prefix="sc-gemini-", dir="/var/tmp" if os.path.isdir("/var/tmp") else None)

    def get(self, name: str, preset: str) -> RunReport:
        if name not in self.reports:
            if name == "gemini":
                matrix, presets = load_matrix(GEMINI_MATRIX), tuple(GEMINI_KNOWN)
            elif name == "repo-trust":
                matrix, presets = load_matrix(resolve_matrix(name)), tuple(REPO_TRUST_KNOWN)
            else:
                matrix, presets = load_matrix(resolve_matrix(name)), tuple(AGENT_KNOWN)
            targets = []
            for ref in presets:
                try:
                    targets.append(load_target(ref))  # NAME@VERSION: installed on demand into the cache
                except TargetError as exc:
                    pytest.skip(f"{ref}: {exc}")
            saved = tempfile.tempdir
            tempfile.tempdir = self.tmp
            try:
                reports = run_targets(matrix, targets, RunOptions(jobs=2, keep_workspace=True))
            finally:
                tempfile.tempdir = saved
            self.kept.update(k for r in reports for k in r.kept)
            self.reports[name] = {p: r for p, r in zip(presets, reports)}
        return self.reports[name][preset]

    def root(self, name: str, preset: str, check_id: str) -> Path:
        """The kept root of one execution."""
        for root in map(Path, self.get(name, preset).kept):
            if Path(f"{root}.check.txt").read_text().split() == [check_id, preset]:
                return root
        raise AssertionError(f"no kept root for {check_id} on {preset}")

    def transcript(self, name: str, preset: str, check_id: str) -> dict[str, Any]:
        """The harness's record of one execution (its kept root's agent/transcript.json)."""
        return json.loads((self.root(name, preset, check_id) / "agent" / "transcript.json").read_text())

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def runs() -> Iterator[Runs]:
    r = Runs()
    yield r
    r.close()


def outcome(report: RunReport) -> dict[str, tuple[Status, str | None]]:
    return {r.id: (r.status, r.errno) for r in report.results}


@requires_gemini
@pytest.mark.parametrize("preset", tuple(AGENT_KNOWN))
def test_agent_matrix_known_answers(preset: str, runs: Runs) -> None:
    report = runs.get("agent", preset)
    got = outcome(report)
    assert {k: v for k, v in got.items() if k in AGENT_APPLIES} == AGENT_KNOWN[preset], (VERSION, got)
    skipped = {r.id: r.reason for r in report.results if r.id not in AGENT_APPLIES}
    assert len(skipped) == 20 and all(got[k] == (Status.SKIP, None) for k in skipped)
    assert skipped["agent.unsandbox.retry"].endswith("gemini-cli has no per-call way out of its sandbox "
                                                     "(dangerouslyDisableSandbox)")
    assert skipped["agent.restart.project-hook"].endswith("(.claude), which gemini-cli never reads")
    assert report.target["kind"] == "agent" and report.target["agent"] == "gemini-cli"


@requires_gemini
def test_the_refusals_are_the_clis_own(runs: Runs) -> None:
    plan = runs.transcript("agent", "gemini-cli-plan", "agent.parity.default.bash-write-outside")
    (call,) = plan["calls"]
    assert call["result"].startswith('Tool "run_shell_command" not found') and call["permission_denied"]
    write = runs.transcript("agent", "gemini-cli-plan", "agent.parity.default.write-tool-outside")
    assert write["calls"][0]["result"].startswith("Access denied: plan path (")
    yolo = runs.transcript("agent", "gemini-cli-yolo", "agent.parity.default.write-tool-outside")
    assert yolo["calls"][0]["result"].startswith("Path not in workspace: Attempted path ")
    # The main conversation only: a named model means no router request.
    assert {e["kind"] for e in yolo["exchanges"]} == {"main"}


@requires_gemini
@requires_bwrap
@pytest.mark.parametrize("preset", tuple(GEMINI_KNOWN))
def test_gemini_checks_known_answers(preset: str, runs: Runs) -> None:
    got = outcome(runs.get("gemini", preset))
    assert got == GEMINI_KNOWN[preset], (VERSION, got)


@requires_gemini
@pytest.mark.parametrize("release", tuple(REPO_TRUST_KNOWN))
def test_repo_trust_known_answers(release: str, runs: Runs) -> None:
    got = outcome(runs.get("repo-trust", release))
    assert got == REPO_TRUST_KNOWN[release], (release, got)


@requires_gemini
def test_a_hook_of_the_repository_runs_on_the_host_in_0_39_0(runs: Runs) -> None:
    t = runs.transcript("repo-trust", "gemini-cli@0.39.0", "repo.gemini.session-start-hook")
    (session,) = t["sessions"]
    assert session["returncode"] == 0 and t["calls"][0]["answered"]
    # In the harness's own mount and network namespaces: on the host, before any tool call.
    for check_id, name in (("repo.gemini.session-start-hook", "gemini-session-start-ran.txt"),
                           ("repo.gemini.mcp-server", "gemini-mcp-ran.txt"),
                           ("repo.gemini.discovery-command", "gemini-discovery-ran.txt")):
        line = (runs.root("repo-trust", "gemini-cli@0.39.0", check_id) / "outside" / name).read_text()
        assert line.split()[2:4] == [os.readlink("/proc/self/ns/mnt"), os.readlink("/proc/self/ns/net")], line
    refused = runs.transcript("repo-trust", "gemini-cli", "repo.gemini.session-start-hook")
    (session,) = refused["sessions"]
    assert session["returncode"] == 55 and not refused["calls"]
    assert "not running in a trusted directory" in session["stderr"]


@requires_gemini
@requires_bwrap
def test_the_tool_sandbox_cannot_start_beside_a_symlink_out(runs: Runs) -> None:
    t = runs.transcript("gemini", "gemini-cli-tool-sandbox", "gemini.sandbox.runs-with-outside-symlink")
    (call,) = t["calls"]
    assert "bwrap: Can't create file at " in call["result"] and "/workspace/link-to-" in call["result"]
    assert call["is_error"] and not call["permission_denied"]


# --- the driver, without the CLI ------------------------------------------------------

def test_steps_become_gemini_tool_arguments() -> None:
    assert gemini_step(Step("Bash", {"command": "ls", "description": "x", "dangerouslyDisableSandbox": True})) \
        == Step("Bash", {"command": "ls", "description": "sandboxcheck scripted step"})
    edit = gemini_step(Step("Edit", {"file_path": "/w/a", "old_string": "a", "new_string": "b"}))
    assert edit.input["old_string"] == "a" and edit.input["new_string"] == "b" and edit.input["instruction"]
    assert gemini_step(Step("Write", {"file_path": "/w/a", "content": "c"})).input == {"file_path": "/w/a",
                                                                                        "content": "c"}


def test_settings_are_written_offline(tmp_path: Path) -> None:
    target = load_agent_target({
        "kind": "agent", "name": "g", "agent": "gemini-cli", "requires": ["gemini"],
        "user_settings": {"security": {"toolSandboxing": True, "auth": {"selectedType": "oauth-personal"}},
                          "telemetry": {"enabled": True, "otlpEndpoint": "http://collector.invalid"}},
        "settings": {"hooks": {"SessionStart": []}}}, "g.yaml")
    assert isinstance(target, GeminiTarget)
    root = tmp_path / "root"
    for sub in ("workspace", "home"):
        (root / sub).mkdir(parents=True)
    values = {"root": str(root), "workspace": str(root / "workspace"), "home": str(root / "home"),
              "probes": str(tmp_path), "python": "/usr/bin/python3"}
    state = target.start(values, ["/usr/bin/true"])
    try:
        user = json.loads((root / "home" / ".gemini" / "settings.json").read_text())
        assert user["security"] == {"auth": {"selectedType": "gemini-api-key"}, "toolSandboxing": True}
        assert user["telemetry"] == {"enabled": False} and user["tools"] == {"useRipgrep": False}
        assert json.loads((root / "workspace" / ".gemini" / "settings.json").read_text()) == {
            "hooks": {"SessionStart": []}}
        plan = json.loads(Path(values["agent_plan"]).read_text())
        (session,) = plan["sessions"]
        assert session["env"]["GOOGLE_GEMINI_BASE_URL"] == state.server.url
        assert session["env"]["GEMINI_CLI_TRUST_WORKSPACE"] == "true"
        assert session["argv"][-2:] == ["-p", f"{SESSION_TAG}1: run the scripted steps of this sandboxcheck "
                                              "session."]
        assert session["argv"][-6:-2] == ["-m", "gemini-2.5-pro", "-o", "json"]
    finally:
        target.finish(state)


def test_target_files_are_validated_per_driver() -> None:
    with pytest.raises(TargetError, match="'config' is a codex key"):
        load_agent_target({"kind": "agent", "name": "g", "agent": "gemini-cli", "requires": ["gemini"],
                           "config": {}}, "g.yaml")
    with pytest.raises(TargetError, match="'allowed_tools' is a claude-code key"):
        load_agent_target({"kind": "agent", "name": "g", "agent": "gemini-cli", "requires": ["gemini"],
                           "allowed_tools": ["Bash"]}, "g.yaml")
    with pytest.raises(TargetError, match=r"requires: \[\{name: gemini"):
        load_agent_target({"kind": "agent", "name": "g", "agent": "gemini-cli"}, "g.yaml")
    m = parse_matrix("version: 1\nchecks:\n  - id: a.b\n    category: agent\n    title: t\n"
                     "    probe: hello\n    args: {left: A, right: B}\n    evidence: {kind: marker, marker: A-B}\n"
                     "    expect: allowed\n    agent: {flags: [--x]}\n", "m.yaml")
    assert load_target("gemini-cli").supports(m.checks[0]) == "the check passes Claude Code CLI flags"
