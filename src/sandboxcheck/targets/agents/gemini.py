"""Gemini CLI as a target: ``gemini -p``, driven offline by the scripted model.

For each execution ``start`` starts a ``GeminiServer`` whose script runs the
check's steps, writes the fake HOME's ``~/.gemini/settings.json`` (API-key
auth, no telemetry, no update check, then the target's ``user_settings``)
and, when the target has ``settings``, merges them into the workspace's
``.gemini/settings.json``; then it writes a plan that ``argv`` hands to
``launch.py``, which runs one ``gemini -p`` per session. ``finish`` stops the
server and returns what came back in every function response, so the runner
finds canaries, markers and the probe's JSON line there.

Steps map to the CLI's tools: Bash is ``run_shell_command`` (``command``,
``description``), Read ``read_file``, Write ``write_file``, Edit
``replace`` (``old_string``, ``new_string``, ``instruction``). The CLI has
no per-call way out of its sandbox and none of Claude Code's settings,
``--allowedTools`` rules, flags or ``.claude`` files: checks that use them are
not run (``supports``).

Environment (besides the harness's synthetic one, whose canary
``GEMINI_API_KEY`` the CLI sends as ``x-goog-api-key`` to the local server
only): ``GOOGLE_GEMINI_BASE_URL`` (the scripted model) and
``GEMINI_CLI_TRUST_WORKSPACE=true`` (headless mode refuses an untrusted folder
with exit 55 from 0.39.1 on; a user runs the agent in a repository of their
own; ``false`` for a check whose ``agent.trusted`` is false). A check's
``env`` goes over both.

CLI flags used: ``-m gemini-2.5-pro`` (a named model: without one the CLI
first asks a router model to pick one), ``-o json`` (one result object with
the CLI's own tool statistics, kept as the target's stdout), ``-p PROMPT``
(headless mode). The target's ``flags`` choose the approval mode
(``--approval-mode yolo|auto_edit|plan``); in the default mode headless
``gemini`` offers no tool that needs a confirmation (no shell, no writes), so
the scripted call of one is answered 'Tool "run_shell_command" not found'.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..base import TargetError
from .base import AgentRun, AgentTarget, load_json, probe_line, read_json, session_prompt, write_beneath
from .gemini_api import GeminiServer
from .script import Step
from .spec import AgentSpecError, CheckAgent, expand_all, merge, parse_check_agent

#: The model every session names (any name reaches the scripted server; a named
#: one keeps the CLI from asking its router model first).
DEFAULT_MODEL = "gemini-2.5-pro"
#: The fake HOME's ~/.gemini/settings.json a run starts from; the target's
#: ``user_settings`` go over it, ``OFFLINE_SETTINGS`` over everything.
DEFAULT_USER_SETTINGS: Mapping[str, Any] = {
    "security": {"auth": {"selectedType": "gemini-api-key"}},
}
#: Settings that keep the CLI on the machine: no usage statistics, no
#: telemetry, no update check, and no ripgrep (0.39.0 downloads it from
#: github.com at start-up when ~/.gemini/tmp/bin has none). With them strace
#: shows one connect() of 0.39.0 and 0.61.0, to the scripted model.
OFFLINE_SETTINGS: Mapping[str, Any] = {
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
    "tools": {"useRipgrep": False},
}
#: Settings keys dropped from the target's: they would send the agent to a real
#: model, a real account or a real telemetry collector.
OFFLINE_DROPPED = ("auth", "telemetry", "privacy")
#: What an Edit step gives as the replace tool's ``instruction``.
EDIT_INSTRUCTION = "Replace the given text, as the sandboxcheck scripted step says."
#: What a Bash step gives as its ``description``.
BASH_DESCRIPTION = "sandboxcheck scripted step"
#: Lines of a session's stderr the summary shows when no call was made.
_TAIL_LINES = 5
#: How the CLI refuses to start in a folder the user has not trusted (0.39.1 and
#: later, exit 55): "Gemini CLI is not running in a trusted directory. To proceed, ...".
_REFUSED = re.compile(r"not running in a trusted directory", re.IGNORECASE)


def _offline(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings without what would make the agent leave the machine (see OFFLINE_DROPPED)."""
    out = {k: v for k, v in settings.items() if k not in OFFLINE_DROPPED}
    security = out.get("security")
    if isinstance(security, Mapping):
        out["security"] = {k: v for k, v in security.items() if k != "auth"}
    return out


def gemini_step(step: Step) -> Step:
    """A step of the harness's script (Claude Code's tool inputs) as Gemini CLI's tools take them."""
    inp = step.input
    if step.tool == "Bash":
        return Step("Bash", {"command": inp["command"], "description": BASH_DESCRIPTION})
    if step.tool == "Read":
        return Step("Read", {"file_path": inp["file_path"]})
    if step.tool == "Write":
        return Step("Write", {"file_path": inp["file_path"], "content": inp["content"]})
    if step.tool == "Edit":
        return Step("Edit", {"file_path": inp["file_path"], "old_string": inp["old_string"],
                             "new_string": inp["new_string"], "instruction": EDIT_INSTRUCTION})
    raise TargetError(f"gemini-cli has no {step.tool} tool")


class GeminiTarget(AgentTarget):
    """``gemini -p`` with a scripted model, its settings written per execution."""

    cli = "gemini"
    server_class = GeminiServer
    #: A session takes 3 to 7 s alone (node start-up, one model round trip per step).
    extra_timeout = 30.0

    def configure(self, options: Mapping[str, str]) -> None:
        self._settings = dict(self.agent.settings)
        self._user_settings = dict(self.agent.user_settings)
        if "settings" in options:
            self._settings = merge(self._settings, load_json(options["settings"], "settings"))
        if "user_settings" in options:
            self._user_settings = merge(self._user_settings, load_json(options["user_settings"], "user_settings"))

    # -- Target interface ----------------------------------------------------
    def supports(self, check: Any) -> str | None:
        try:
            plan = parse_check_agent(getattr(check, "agent", None))
        except AgentSpecError as exc:
            return str(exc)
        if plan.settings or plan.user_settings:
            return "the check writes Claude Code settings (settings, user_settings); gemini-cli has its own"
        if plan.allowed_tools is not None:
            return "the check sets Claude Code --allowedTools rules; gemini-cli has approval modes and policies"
        if plan.flags:
            return "the check passes Claude Code CLI flags"
        if plan.interactive:
            return "the check starts Claude Code in a terminal (interactive); gemini-cli is driven headless (gemini -p)"
        if any(s.disable_sandbox for s in plan.steps):
            return "gemini-cli has no per-call way out of its sandbox (dangerouslyDisableSandbox)"
        if any(".claude" in text for s in plan.steps
               for text in (s.command or "", s.path or "", *(str(v) for _, v in s.args))):
            return "the check tampers with Claude Code's files (.claude), which gemini-cli never reads"
        return None

    def session_reason(self, check: Any) -> str | None:
        return "gemini -p runs one task per process"

    def shown_config(self) -> dict[str, Any]:
        # Only what decides the sandbox and approvals: a user's settings may hold secrets.
        keys = ("security", "tools", "general")
        return {"settings": {k: v for k, v in _offline(self._settings).items() if k in keys},
                "user_settings": {k: v for k, v in _offline(self._user_settings).items() if k in keys}}

    # -- the driver ------------------------------------------------------------------
    def display_argv(self) -> list[str]:
        return ["gemini", *self._argv_tail("PROMPT")]

    def prepare(self, run: AgentRun, plan: CheckAgent, values: Mapping[str, str]) -> dict[str, str]:
        self._write_gemini_settings(values)
        trusted = "false" if plan.trusted is False else "true"
        return {"GOOGLE_GEMINI_BASE_URL": run.server.url, "GEMINI_CLI_TRUST_WORKSPACE": trusted}

    def session_argv(self, run: AgentRun, plan: CheckAgent, number: int) -> list[str]:
        return [*self.tool_argv("gemini"), *self._argv_tail(session_prompt(number))]

    def session_stdin(self, number: int) -> str:
        return ""  # the prompt is -p's value

    def tool_step(self, step: Step) -> Step:
        return gemini_step(step)

    def failed_start(self, number: int, ended: Mapping[str, Any]) -> list[str]:
        # It never got to a tool call (an untrusted folder, a bad setting): show why.
        err = str(ended.get("stderr") or "").strip().splitlines()
        out = [f"    {ln}" for ln in err[-_TAIL_LINES:]]
        refusal = next((ln.strip() for ln in err if _REFUSED.search(ln)), "")
        if refusal:
            out.append(probe_line("agent", f"start agent session {number}", True, False, "AGENT_REFUSED",
                                  re.sub(r"\x1b\[[0-9;]*m", "", refusal)))
        return out

    def _write_gemini_settings(self, vals: Mapping[str, str]) -> None:
        root = vals["root"]
        user = merge(merge(DEFAULT_USER_SETTINGS, _offline(self._user_settings)), OFFLINE_SETTINGS)
        write_beneath(root, Path(vals["home"]) / ".gemini" / "settings.json", expand_all(user, vals))
        if self._settings:
            project = Path(vals["workspace"]) / ".gemini" / "settings.json"
            merged = merge(read_json(project, root), _offline(self._settings))
            write_beneath(root, project, expand_all(merged, vals))

    def _argv_tail(self, prompt: str) -> list[str]:
        return ["-m", DEFAULT_MODEL, *self._flags, "-o", "json", "-p", prompt]
