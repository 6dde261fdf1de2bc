"""Known answers: a hostile repository's configuration, Claude Code and Codex started in it.

``matrices/repo-trust.yaml`` against the Claude Code and Codex presets, with
and without their sandboxes, on the installed releases (Claude Code 2.1.197
and Codex 0.169.0, what ``.ci/run`` installs) and on 2.1.332 and 0.171.0
(installed on demand into the pinning cache; skipped where that cannot
happen). Gemini CLI's answers are in ``test_gemini_agent.py``. Measured on
Debian 12 (kernel 6.x, root, bubblewrap 0.8).

Each mechanism's command appends ``ran <token> mnt:[...] net:[...]`` to a
file beside the workspace: the namespaces it names are the harness's own,
so the command ran on the host, also where the agent's sandbox is on.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.model import RunReport, Status
from sandboxcheck.resources import resolve_matrix
from sandboxcheck.run.options import RunOptions
from sandboxcheck.run.schedule import run_targets
from sandboxcheck.targets.base import TargetError
from sandboxcheck.targets.registry import load_target
from sandboxcheck.targets.tools import find_tool

pytestmark = pytest.mark.integration

requires_claude = pytest.mark.skipif(
    find_tool("claude") is None,
    reason="claude not installed: npm install --prefix .tools/npm @anthropic-ai/claude-code@2.1.197 (or run .ci/run)")
requires_codex = pytest.mark.skipif(
    find_tool("codex") is None,
    reason="codex not installed: npm install --prefix .tools/npm @openai/codex@0.169.0 (or run .ci/run)")

INTERACTIVE = ("repo.claude.interactive.trusted-hook", "repo.claude.interactive.untrusted-hook",
               "repo.claude.interactive.bypass-mode-skips-trust")
CHECKS = ("repo.claude.session-start-hook", "repo.claude.session-start-hook-untrusted",
          "repo.claude.pretooluse-hook", *INTERACTIVE, "repo.claude.mcp-json",
          "repo.gemini.session-start-hook", "repo.gemini.mcp-server", "repo.gemini.discovery-command",
          "repo.codex.notify", "repo.codex.mcp-server", "repo.codex.mcp-server-untrusted", "repo.git.fsmonitor",
          "repo.project-env", "repo.claude.deny-read-direct", "repo.claude.deny-read-symlink")
#: Checks that configure Claude Code itself (its permissions.deny rules) or start it in a
#: terminal: Codex skips them.
CLAUDE_ONLY = ("repo.claude.deny-read-direct", "repo.claude.deny-read-symlink", *INTERACTIVE)


def known(*ran: str, skipped: tuple[str, ...] = ()) -> dict[str, Status]:
    """Every check passes (the file never appears) except the mechanisms that ran."""
    return {c: Status.SKIP if c in skipped else Status.FAIL if c in ran else Status.PASS for c in CHECKS}


#: Claude Code in -p mode runs the project's SessionStart and PreToolUse hooks and,
#: with enableAllProjectMcpServers in the same settings, the .mcp.json server; 2.1.197
#: also runs git status at start-up in a way that fires the repository's
#: core.fsmonitor, 2.1.332 does not. Codex starts the MCP servers of a trusted
#: project's .codex/config.toml; codex exec never runs its notify program. The
#: sandboxes change nothing.
#: A folder never trusted: claude -p skips the trust dialog and runs the hook all the
#: same; Codex leaves an untrusted project's .codex/config.toml unread. Started in a
#: terminal, Claude Code runs the hook of a trusted folder (the must-work control)
#: and stops at the trust dialog of an untrusted one, bypassPermissions or not (the
#: bypass was CVE-2026-33068, fixed 2.1.53). The project's env setting reaches the
#: tools of both agents (must work).
CLAUDE_RAN = ("repo.claude.session-start-hook", "repo.claude.session-start-hook-untrusted",
              "repo.claude.pretooluse-hook", "repo.claude.mcp-json")
KNOWN: dict[str, dict[str, Status]] = {
    "claude-code": known(*CLAUDE_RAN, "repo.git.fsmonitor"),
    "claude-code-sandbox": known(*CLAUDE_RAN, "repo.git.fsmonitor"),
    "claude-code@2.1.332": known(*CLAUDE_RAN),
    "claude-code-sandbox@2.1.332": known(*CLAUDE_RAN),
    "codex-agent": known("repo.codex.mcp-server", skipped=CLAUDE_ONLY),
    "codex-agent-no-tmp": known("repo.codex.mcp-server", skipped=CLAUDE_ONLY),
    "codex-agent@0.171.0": known("repo.codex.mcp-server", skipped=CLAUDE_ONLY),
    "codex-agent-no-tmp@0.171.0": known("repo.codex.mcp-server", skipped=CLAUDE_ONLY),
}
#: The file each mechanism writes, by check.
MARKERS = {"repo.claude.session-start-hook": "claude-session-start-ran.txt",
           "repo.claude.pretooluse-hook": "claude-pretooluse-ran.txt",
           "repo.claude.mcp-json": "claude-mcp-ran.txt", "repo.codex.mcp-server": "codex-mcp-ran.txt",
           "repo.git.fsmonitor": "git-fsmonitor-ran.txt"}


class Runs:
    """The matrix run once per target reference, its kept roots in a folder removed at the end."""

    def __init__(self) -> None:
        self.reports: dict[str, RunReport] = {}
        self.tmp = tempfile.mkdtemp(prefix="sc-repo-trust-")

    def get(self, ref: str) -> RunReport:
        if ref not in self.reports:
            try:
                target = load_target(ref)  # NAME@VERSION: installed on demand into the pinning cache
            except TargetError as exc:
                pytest.skip(f"{ref}: {exc}")
            if why := target.unavailable():
                pytest.skip(f"{ref}: {why}")
            saved = tempfile.tempdir
            tempfile.tempdir = self.tmp
            try:
                (self.reports[ref],) = run_targets(load_matrix(resolve_matrix("repo-trust")), [target],
                                                   RunOptions(jobs=2, keep_workspace=True))
            finally:
                tempfile.tempdir = saved
        return self.reports[ref]

    def marker(self, ref: str, check_id: str) -> str:
        """What the mechanism wrote in the agent's execution (not the control's)."""
        for root in map(Path, self.get(ref).kept):
            if Path(f"{root}.check.txt").read_text().split() == [check_id, ref]:
                return (root / "outside" / MARKERS[check_id]).read_text()
        raise AssertionError(f"no kept root for {check_id} on {ref}")

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def runs() -> Iterator[Runs]:
    r = Runs()
    yield r
    r.close()


def _needs(ref: str) -> None:
    if ref.startswith("claude") and find_tool("claude") is None and "@" not in ref:
        pytest.skip("claude not installed")
    if ref.startswith("codex") and find_tool("codex") is None and "@" not in ref:
        pytest.skip("codex not installed")


@pytest.mark.parametrize("ref", tuple(KNOWN))
def test_repo_trust_known_answers(ref: str, runs: Runs) -> None:
    _needs(ref)
    report = runs.get(ref)
    got = {r.id: r.status for r in report.results}
    assert got == KNOWN[ref], (ref, {r.id: r.reason for r in report.results})


@requires_claude
@requires_codex
@pytest.mark.parametrize("ref, check_id", [("claude-code-sandbox", "repo.claude.session-start-hook"),
                                           ("claude-code-sandbox", "repo.claude.pretooluse-hook"),
                                           ("claude-code-sandbox", "repo.claude.mcp-json"),
                                           ("claude-code-sandbox", "repo.git.fsmonitor"),
                                           ("codex-agent-no-tmp", "repo.codex.mcp-server")])
def test_the_mechanisms_run_outside_the_sandbox(ref: str, check_id: str, runs: Runs) -> None:
    # The agent's sandbox would refuse the write to {outside} (EROFS); the line is
    # there, and it names the harness's own mount and network namespaces.
    line = runs.marker(ref, check_id).splitlines()[0]
    assert line.split()[2:4] == [f"{os.readlink('/proc/self/ns/mnt')}", f"{os.readlink('/proc/self/ns/net')}"]


@requires_claude
def test_an_interactive_start_stops_at_the_trust_dialog(runs: Runs) -> None:
    report = runs.get("claude-code")
    got = {r.id: r for r in report.results}
    for check_id in ("repo.claude.interactive.untrusted-hook", "repo.claude.interactive.bypass-mode-skips-trust"):
        reason = got[check_id].reason
        assert reason.startswith("'start claude in a terminal (session 1)' went through and nothing took effect"), \
            reason
        assert "I trust this folder" in reason, reason
    # It ran inside the harness's own name space (an interactive start looks up the
    # vendor's hosts), a mount namespace of the harness's: no sandbox.
    trusted = got["repo.claude.interactive.trusted-hook"].reason
    assert "the harness's own name space is one, so this shows no sandbox) and the harness's own network " \
           "namespace; before any tool call (the agent made none)" in trusted, trusted


@requires_claude
@pytest.mark.parametrize("check_id, when", [
    ("repo.claude.session-start-hook", "before the agent's first tool call (at start-up)"),
    ("repo.claude.pretooluse-hook", "during tool call 1 (Bash), before its result came back")])
def test_the_evidence_says_where_and_when_the_mechanism_ran(check_id: str, when: str, runs: Runs) -> None:
    (result,) = [r for r in runs.get("claude-code").results if r.id == check_id]
    assert result.reason.endswith("its writer recorded the harness's own mount and network namespaces: on the host, "
                                  f"in no namespace sandbox; {when}"), result.reason


@requires_codex
def test_the_must_work_control_fails_where_the_project_is_not_trusted() -> None:
    # The same check, the project never trusted: Codex leaves its .codex/config.toml
    # unread, the variable never reaches the tool, and the control fails. It can fail.
    matrix = load_matrix(resolve_matrix("repo-trust"))
    (check,) = [c for c in matrix.checks if c.id == "repo.project-env"]
    untrusted = dataclasses.replace(check, agent=dataclasses.replace(check.agent, trusted=False))
    (report,) = run_targets(dataclasses.replace(matrix, checks=(untrusted,)), [load_target("codex-agent")],
                            RunOptions(jobs=1))
    (result,) = report.results
    assert (result.observed.value, result.status) == ("denied", Status.FAIL), result.reason
