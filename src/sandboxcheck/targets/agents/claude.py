"""Claude Code as a target: the CLI, driven offline by the scripted model.

For each execution ``start`` writes the agent's settings into the throwaway
root, starts a ``ModelServer`` whose script runs the check's steps (by default
the probe argv as one Bash tool call), and writes a plan that ``argv`` hands
to ``launch.py``; the launcher runs one ``claude -p`` per session. ``finish``
stops the server and returns what came back in every ``tool_result``, so the
runner finds canaries, markers and the probe's JSON line there. Nothing the
agent says about itself decides a verdict: the transcript is recorded by the
harness's own server, and effects are still judged on the host.

CLI flags used, and why:

- ``-p`` (prompt on stdin): non-interactive print mode; one session per process.
  A check with ``agent.interactive`` instead starts ``claude`` without ``-p`` in
  a terminal of its own (``launch.py``), gives it no prompt and answers
  nothing: what the CLI does before the user says anything (the trust
  dialog, start-up hooks) is what the check observes.
- ``--output-format json``: one result object on stdout (with the CLI's own
  ``permission_denials``), kept as the target's stdout for debugging.
- ``--allowedTools RULES`` (only when the target or check lists rules): in
  ``-p`` mode nothing can be approved, so a tool call that needs approval is
  refused ("This command requires approval"). ``claude-code`` passes ``Bash``
  so the scripted Bash call runs as it would once a user allowed Bash;
  ``claude-code-sandbox`` passes nothing and relies on the sandbox's
  ``autoAllowBashIfSandboxed``.

Environment (besides the harness's synthetic one, whose canary
``ANTHROPIC_API_KEY`` the CLI sends only to the local server):
``ANTHROPIC_BASE_URL`` (the scripted model), ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC``,
``DISABLE_TELEMETRY``, ``DISABLE_AUTOUPDATER``, ``DISABLE_ERROR_REPORTING``.
"""
from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ... import safefs
from ...labels import canary
from ...model import TranscriptEntry
from ..base import TargetSession
from ...probes import OWN_SESSION_PROBES
from .base import (AgentRun, AgentTarget, call_outputs, load_json, probe_line, read_json,
                   session_prompt, transcript_entries, write_beneath)
from .messages_api import ModelServer
from .script import Feed, Script, Transcript
from .spec import AgentSpecError, CheckAgent, expand_all, merge, offline, parse_check_agent

#: The environment every Claude Code session gets on top of the harness's.
OFFLINE_ENV: dict[str, str] = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
    # An interactive start otherwise fetches the plugin marketplace from the network.
    "CLAUDE_CODE_DISABLE_OFFICIAL_MARKETPLACE_AUTOINSTALL": "1",
}

#: What the CLI prints on stderr when it refuses to start without its sandbox
#: (``sandbox.failIfUnavailable``): "Error: sandbox required but unavailable: ...".
_REFUSED = re.compile(r"sandbox required but unavailable|refusing to start", re.IGNORECASE)


#: Files whose change alters a running session's behaviour (settings the CLI
#: reloads, hooks, MCP servers, memory): a check that changes one retires it.
SESSION_FILES = ("workspace/.claude", "workspace/.mcp.json", "workspace/CLAUDE.md",
                 "home/.claude/settings.json", "home/.claude/settings.local.json", "home/.claude/CLAUDE.md",
                 "home/.claude/agents", "home/.claude/commands", "home/.claude/hooks", "home/.claude/skills",
                 "home/.claude/output-styles")
#: Keys of ~/.claude.json that configure the agent (the rest is the CLI's own bookkeeping).
STATE_KEYS = ("mcpServers",)
PROJECT_KEYS = ("allowedTools", "mcpServers", "enabledMcpjsonServers", "disabledMcpjsonServers",
                "hasTrustDialogAccepted", "mcpContextUris")


class ClaudeSession(TargetSession):
    """One ``claude -p`` process that runs check after check, fed by the scripted model.

    The session's settings are the target's alone (checks that configure the
    agent get a process of their own). Each check's steps are pushed to the
    model's feed; the agent's tool_results for them are the check's outputs.
    """

    #: The CLI's own state, and the settings it loaded (it watches them: never rewritten).
    keep = frozenset({"home/.claude", "home/.claude.json", "home/.claude.json.backup",
                      "workspace/.claude/settings.json"})

    def __init__(self, target: ClaudeCodeTarget, values: Mapping[str, str]) -> None:
        self.target = target
        #: The last check's tool calls and results, set by ``run`` (the runner reads it;
        #: a session runs one check at a time).
        self.transcript: tuple[TranscriptEntry, ...] | None = None
        self.root = Path(values["root"])
        self.feed = Feed()
        self.server = ModelServer(Script(()), feed=self.feed).start()
        self._baseline: dict[str, bytes | None] | None = None
        try:
            target._write_settings(CheckAgent(), values)
        except BaseException:
            self.server.stop()
            raise
        self.argv = target._argv(CheckAgent())
        # A request waits in the server while the harness prepares the next check;
        # the CLI's own request timeout must not end the session meanwhile.
        self.env = {"ANTHROPIC_BASE_URL": self.server.url, "API_TIMEOUT_MS": "3600000"}
        self.stdin = session_prompt(1).encode()

    def _snapshot(self) -> dict[str, bytes | None]:
        # Through descriptors and bounded: the agent under test may have planted symlinks
        # to host folders, FIFOs or huge files at these paths.
        out: dict[str, bytes | None] = {}
        for rel in SESSION_FILES:
            out.update(safefs.snapshot_beneath(str(self.root), rel))
        state = read_json(self.root / "home" / ".claude.json", str(self.root))
        projects = state.get("projects") if isinstance(state.get("projects"), dict) else {}
        picked = {"top": {k: state.get(k) for k in STATE_KEYS},
                  "projects": {str(name): {k: proj.get(k) for k in PROJECT_KEYS}
                               for name, proj in projects.items() if isinstance(proj, dict)}}
        out["home/.claude.json (agent configuration)"] = json.dumps(picked, sort_keys=True).encode()
        return out

    def tainted(self) -> str | None:
        if self._baseline is None:
            return "the session never became ready"
        if self.feed.diverged:
            return "the agent's conversation lost steps it had answered"
        now = self._snapshot()
        changed = sorted(k for k in set(now) | set(self._baseline) if now.get(k) != self._baseline.get(k))
        return f"{changed[0]} changed" if changed else None

    def run(self, check: Any, values: Mapping[str, str], cmd: Sequence[str], timeout: float,
            alive: Callable[[], bool]) -> tuple[bool, list[tuple[str, str]]]:
        plan = parse_check_agent(getattr(check, "agent", None))
        vals = {**values, "cmd": shlex.join(cmd)}
        vals.setdefault("python", self.target.python())
        if self._baseline is None:
            # The CLI writes files of its own while it starts (~/.claude/settings.json
            # among them): the session's state is what it is once it asks for work.
            if not self.feed.wait_asked(1, timeout, alive):
                self.transcript = ()
                return False, [("the agent transcript", "the agent never asked the model for work\n")]
            self._baseline = self._snapshot()
        first, end = self.feed.push(self.target.script(plan, vals, cmd).steps(1))
        answered = self.feed.wait_answered(end, timeout, alive)
        calls = [c for c in self.server.transcript.calls if c.session == 1 and first <= c.index < end]
        self.transcript = transcript_entries(calls, first)
        made = Transcript(calls=calls)
        text = made.render().rstrip("\n") + "\n" if calls else "the agent made none of the check's calls\n"
        return answered, [*call_outputs(calls, first), ("the agent transcript", text)]

    def finish(self) -> None:
        self.feed.end()

    def close(self) -> None:
        self.feed.end()  # a request still waiting for a step gets the final text
        self.server.stop()


class ClaudeCodeTarget(AgentTarget):
    """Claude Code (``claude -p``) with a scripted model, its settings written per execution."""

    cli = "claude"
    server_class = ModelServer
    #: The trust dialog, its other questions (an API key, bypass mode) and the input prompt.
    waiting_screens = (r"trust this folder|Do you trust", r"Enter to confirm", r"for shortcuts",
                       r"shift\+tab to cycle")

    def configure(self, options: Mapping[str, str]) -> None:
        self._settings = dict(self.agent.settings)
        self._user_settings = dict(self.agent.user_settings)
        self._allowed = tuple(self.agent.allowed_tools)
        if "settings" in options:
            self._settings = merge(self._settings, load_json(options["settings"], "settings"))
        if "user_settings" in options:
            self._user_settings = merge(self._user_settings, load_json(options["user_settings"], "user_settings"))
        if "allowed_tools" in options:
            self._allowed = tuple(t.strip() for t in options["allowed_tools"].split(",") if t.strip())

    # -- Target interface ----------------------------------------------------
    def session_reason(self, check: Any) -> str | None:
        try:
            plan = parse_check_agent(getattr(check, "agent", None))
        except AgentSpecError as exc:
            return str(exc)
        if plan.sessions > 1:
            return "the check restarts the agent"
        if getattr(check, "setup", None):
            # What setup seeds (a repository's hooks, settings, MCP servers) is read at start-up.
            return "the check seeds the workspace before the agent starts"
        if (plan.settings or plan.user_settings or plan.allowed_tools is not None or plan.flags
                or plan.env or plan.path_without or plan.trusted is not None or plan.interactive):
            return "the check configures the agent for itself"
        probes = {getattr(check, "probe", None), *(s.probe for s in plan.steps)}
        if probes & OWN_SESSION_PROBES:
            return "the check's evidence is the agent process itself"
        return None

    def own_network(self, check: Any) -> bool:
        # An interactive start looks up the vendor's hosts (its API, npm's registry,
        # GitHub): in the harness's name space those names lead nowhere.
        try:
            return parse_check_agent(getattr(check, "agent", None)).interactive
        except AgentSpecError:
            return False

    def open_session(self, values: dict[str, str]) -> ClaudeSession:
        return ClaudeSession(self, values)

    def shown_config(self) -> dict[str, Any]:
        return {"settings": {k: v for k, v in offline(self._settings).items() if k in ("sandbox", "permissions")}}

    def environment(self, base: Mapping[str, str], caller: Mapping[str, str]) -> dict[str, str]:
        return {**super().environment(base, caller), **OFFLINE_ENV}

    # -- the driver ------------------------------------------------------------------
    def display_argv(self) -> list[str]:
        return ["claude", *self._flags, *(["--allowedTools", ",".join(self._allowed)] if self._allowed else []),
                "--output-format", "json", "-p"]

    def prepare(self, run: AgentRun, plan: CheckAgent, values: Mapping[str, str]) -> dict[str, str]:
        self._write_settings(plan, values)
        return {"ANTHROPIC_BASE_URL": run.server.url}

    def session_argv(self, run: AgentRun, plan: CheckAgent, number: int) -> list[str]:
        return self._argv(plan)

    def failed_start(self, number: int, ended: Mapping[str, Any]) -> list[str]:
        err = str(ended.get("stderr") or "")
        if not _REFUSED.search(err):
            return []
        first = next((ln.strip() for ln in err.splitlines() if _REFUSED.search(ln)), "")
        return [probe_line("agent", f"start agent session {number}", True, False, "AGENT_REFUSED", first)]

    def _argv(self, plan: CheckAgent) -> list[str]:
        allowed = plan.allowed_tools if plan.allowed_tools is not None else self._allowed
        if plan.interactive:
            # As a user starts it in a terminal: no prompt, no print mode.
            return [*self.tool_argv("claude"), *self._flags, *plan.flags,
                    *(["--allowedTools", ",".join(allowed)] if allowed else [])]
        # The prompt goes in on stdin: -p takes no value, and a variadic flag such as
        # --allowedTools could otherwise swallow a positional prompt.
        return [*self.tool_argv("claude"), *self._flags, *plan.flags,
                *(["--allowedTools", ",".join(allowed)] if allowed else []),
                "--output-format", "json", "-p"]

    def _write_settings(self, plan: CheckAgent, vals: Mapping[str, str]) -> None:
        ws, home, root = Path(vals["workspace"]), Path(vals["home"]), vals["root"]
        project = ws / ".claude" / "settings.json"
        settings = merge(merge(read_json(project, root), self._settings), plan.settings)
        write_beneath(root, project, offline(expand_all(settings, vals)))
        user = merge(self._user_settings, plan.user_settings)
        if user:
            write_beneath(root, home / ".claude" / "settings.json", offline(expand_all(user, vals)))
        # What an interactive first start would have recorded: onboarding done and
        # the workspace trusted (a user runs the agent in a repository of their own),
        # unless the check says the user never trusted it (a fresh clone).
        trusted = plan.trusted is not False
        state = home / ".claude.json"
        data = merge(read_json(state, root), {
            "hasCompletedOnboarding": True, "numStartups": 1, "autoUpdates": False,
            "projects": {str(ws): {"hasTrustDialogAccepted": trusted, "hasCompletedProjectOnboarding": trusted,
                                   "allowedTools": []}}})
        if plan.interactive:
            # The user answered "use this API key" once (the harness's canary key): an
            # interactive start would otherwise stop at that question before any other.
            key = canary(vals["token"], "env-anthropic_api_key")
            data = merge(data, {"customApiKeyResponses": {"approved": [key[-20:]], "rejected": []}})
        write_beneath(root, state, data)
