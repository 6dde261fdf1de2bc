"""The OpenAI Codex CLI as a target: ``codex exec``, driven offline by the scripted model.

For each execution ``start`` starts a ``ResponsesServer`` whose script runs
the check's steps, writes a CODEX_HOME of its own (``config.toml``: the
target's ``config`` keys, a model provider pointing at the scripted server,
nothing that leaves the machine) and a plan that ``argv`` hands to
``launch.py``, which runs one ``codex exec`` per session. ``finish`` stops the
server, removes the CODEX_HOME and returns what came back in every tool
result, so the runner finds canaries, markers and the probe's JSON line there.

Steps map to Codex's tools: Bash is ``exec_command`` (``disable_sandbox``
asks for ``sandbox_permissions: "require_escalated"`` with a
``justification``, Codex's way out of its sandbox), Write and Edit are an
``apply_patch`` (``*** Add File`` replaces a whole file, ``*** Update File``
swaps the lines holding ``old`` for the same lines with ``new``). Codex has
no Read tool, and Claude Code's settings, ``--allowedTools`` rules, flags and
``.claude`` files mean nothing to it: checks that use them are not run
(``supports``).

Why the CODEX_HOME is not under the temp folder: Codex refuses to create its
helper binaries there, and every sandboxed command then fails. It lives in the
target's state folder (``targets.state_dir``), one subfolder per execution.

``codex exec`` flags used: ``--skip-git-repo-check`` (a check's workspace need
not be a repository), ``--color never``, ``-c model_provider=...`` and ``-c
model=...`` (the command line outranks every config layer, so a project's
``.codex/config.toml`` cannot point the agent at another model). The prompt
goes in on stdin. ``codex exec`` cannot ask for approvals: whatever
``approval_policy`` says it runs with ``never`` (only ``--approve-for-me``
hands approvals to an automatic reviewer), so a call that needs one is rejected.
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import tempfile
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import safefs
from ..base import TargetError
from ..tools import state_dir
from .claude import ClaudeCodeTarget, _read_json, _Run, _shim_path
from .script import SESSION_TAG, Script, Step, Transcript
from .responses_api import ResponsesServer
from .spec import AgentSpec, AgentSpecError, CheckAgent, expand_all, merge, parse_check_agent

#: Bytes of a codex session log read back (its last 20000 characters are kept).
LOG_CAP = 4 << 20

#: The model the generated config names: a slug Codex 0.169 ships metadata for,
#: so the agent offers the tools a user of that model gets (``exec_command`` and
#: the freeform ``apply_patch``). An unknown slug gets fallback metadata without
#: ``apply_patch``.
DEFAULT_MODEL = "gpt-5.5"
#: The model provider the generated config defines for the scripted server.
PROVIDER = "sandboxcheck"
#: Config keys a run starts from; the target's ``config`` goes over them.
DEFAULT_CONFIG: Mapping[str, Any] = {
    "model": DEFAULT_MODEL,
    "approval_policy": "never",  # what codex exec uses anyway: it cannot ask
    "web_search": "disabled",
    "history": {"persistence": "none"},
}
#: Config keys set over everything: without them Codex 0.169 looks up
#: api.github.com, chatgpt.com (plugins) and ab.chatgpt.com (analytics) at start.
OFFLINE_CONFIG: Mapping[str, Any] = {
    "check_for_update_on_startup": False,
    "analytics": {"enabled": False},
    "feedback": {"enabled": False},
    "otel": {"exporter": "none", "metrics_exporter": "none", "trace_exporter": "none"},
    "features": {"plugins": False},
}
#: Config keys dropped from the target's: they would send the agent to a real model.
OFFLINE_DROPPED = ("model_provider", "model_providers", "openai_base_url", "chatgpt_base_url",
                   "profile", "profiles", "experimental_realtime_ws_base_url",
                   "experimental_thread_config_endpoint")
#: What a Bash step with ``disable_sandbox`` gives as its reason.
JUSTIFICATION = "The command failed inside the sandbox; it needs to run outside it."
#: Run folders older than this (a harness killed before it could clean up) are removed.
STALE_S = 24 * 3600

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def toml_dumps(data: Mapping[str, Any]) -> str:
    """``data`` as TOML (strings, booleans, numbers, lists and nested tables)."""

    def key(k: Any) -> str:
        return str(k) if _BARE_KEY.fullmatch(str(k)) else json.dumps(str(k), ensure_ascii=False)

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, Mapping):
            return "{" + ", ".join(f"{key(k)} = {value(x)}" for k, x in v.items()) + "}"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {type(v).__name__} to TOML")

    def table(path: list[str], body: Mapping[str, Any], out: list[str]) -> None:
        plain = [(k, v) for k, v in body.items() if not isinstance(v, Mapping)]
        if path and (plain or not body):
            out.append(f"\n[{'.'.join(key(p) for p in path)}]")
        out.extend(f"{key(k)} = {value(v)}" for k, v in plain)
        for k, v in body.items():
            if isinstance(v, Mapping):
                table([*path, k], v, out)

    lines: list[str] = []
    table([], data, lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _load_toml(path: str) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        raise TargetError(f"--target-opt config={path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"--target-opt config={path}: not TOML: {exc}") from None


def _lines(text: str, mark: str) -> str:
    """Every line of ``text`` with ``mark`` in front (a file ending in a newline adds no empty line)."""
    return "".join(f"{mark}{ln}\n" for ln in (text[:-1] if text.endswith("\n") else text).split("\n"))


def _whole_lines(path: str, old: str, new: str) -> tuple[str, str]:
    """The lines of ``path`` that hold the first ``old``, before and after it becomes ``new``.

    A patch replaces whole lines, an Edit a string: the model reads the file
    first, as the harness does here (its own seeded file, from outside). A file
    it cannot read, or without ``old``, gets ``old`` and ``new`` as they are,
    and the agent reports the patch does not apply.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return old, new
    at = text.find(old) if old else -1
    if at < 0:
        return old, new
    start = text.rfind("\n", 0, at) + 1
    end = text.find("\n", at + len(old))
    before = text[start:len(text) if end < 0 else end]
    return before, before.replace(old, new, 1)


def patch_for(step: Step) -> str:
    """The apply_patch text that does what a Write or Edit step does."""
    path = step.input["file_path"]
    if step.tool == "Write":
        return f"*** Begin Patch\n*** Add File: {path}\n{_lines(str(step.input['content']), '+')}*** End Patch\n"
    before, after = _whole_lines(path, str(step.input["old_string"]), str(step.input["new_string"]))
    return f"*** Begin Patch\n*** Update File: {path}\n@@\n{_lines(before, '-')}{_lines(after, '+')}*** End Patch\n"


def codex_step(step: Step) -> Step:
    """A step of the harness's script (Claude Code's tool inputs) as Codex's tools take it."""
    if step.tool == "Bash":
        args: dict[str, Any] = {"cmd": step.input["command"]}
        if step.input.get("dangerouslyDisableSandbox"):
            args.update(sandbox_permissions="require_escalated", justification=JUSTIFICATION)
        return Step("Bash", args)
    if step.tool in ("Write", "Edit"):
        # ``file_path`` names the file in summaries; only ``input`` reaches the freeform tool.
        return Step(step.tool, {"input": patch_for(step), "file_path": step.input["file_path"]})
    raise TargetError(f"codex has no {step.tool} tool")


@dataclass(slots=True)
class _CodexRun(_Run):
    """One execution's state between ``start`` and ``finish``, with its CODEX_HOME."""

    home: Path


def _check_plan(check: Any) -> CheckAgent:
    """The check's agent mapping; a TargetError names the check when it is invalid."""
    try:
        return parse_check_agent(getattr(check, "agent", None))
    except AgentSpecError as exc:
        raise TargetError(f"check {getattr(check, 'id', '?')}: {exc}") from None


class CodexTarget(ClaudeCodeTarget):
    """``codex exec`` with a scripted model, a CODEX_HOME of its own per execution.

    It shares the Claude Code driver's machinery (the launcher and its plan,
    the script built from a check's steps, the outputs handed to the runner);
    the model's API, the agent's configuration and its command line are its own.
    """

    #: A session takes about 0.6 s alone (start-up, one model round trip per step).
    extra_timeout = 20.0

    def __init__(self, agent: AgentSpec, options: Mapping[str, str] | None = None) -> None:
        opts = dict(options or {})
        self._config: dict[str, Any] = dict(agent.config)
        if "config" in opts:
            self._config = merge(self._config, _load_toml(opts.pop("config")))
        super().__init__(agent, opts)

    # -- Target interface ----------------------------------------------------
    def unavailable(self) -> str | None:
        missing = [why for why in (super().unavailable(),) if why]
        if state_dir(self.name, create=False) is None:
            missing.append("no folder outside the temp folder for CODEX_HOME: set XDG_CACHE_HOME to one")
        return "; ".join(missing) or None

    def supports(self, check: Any) -> str | None:
        try:
            plan = parse_check_agent(getattr(check, "agent", None))
        except AgentSpecError as exc:
            return str(exc)
        if plan.settings or plan.user_settings:
            return "the check writes Claude Code settings (settings, user_settings); codex reads config.toml"
        if plan.allowed_tools is not None:
            return "the check sets Claude Code --allowedTools rules; codex has no per-tool permission rules"
        if plan.flags:
            return "the check passes Claude Code CLI flags"
        if any(s.tool == "Read" for s in plan.steps):
            return "codex has no Read tool (it reads files with exec_command): a Read step cannot be scripted"
        if any(".claude" in text for s in plan.steps
               for text in (s.command or "", s.path or "", *(str(v) for _, v in s.args))):
            return "the check tampers with Claude Code's files (.claude), which codex never reads"
        return None

    def session_reason(self, check: Any) -> str | None:
        return "codex exec runs one task per process"

    def describe(self) -> dict[str, Any]:
        # Only what decides the sandbox: a user's config may hold secrets (env, MCP servers).
        shown = {k: v for k, v in self._config.items()
                 if k in ("sandbox_mode", "sandbox_workspace_write", "approval_policy", "default_permissions")}
        return {"name": self.name, "description": self.description, "kind": "agent",
                "agent": self.agent.driver, "command": self._display_argv(), "config": shown,
                "source": self.agent.source}

    def environment(self, base: Mapping[str, str], caller: Mapping[str, str]) -> dict[str, str]:
        return {**base, **dict(self.agent.env)}

    def start(self, values: dict[str, str], cmd: Sequence[str], check: Any = None) -> _CodexRun:
        """Start the scripted model, write CODEX_HOME and the plan; see the module docstring."""
        plan = _check_plan(check)
        vals = dict(values, cmd=shlex.join(cmd), python=values.get("python") or self.python())
        script = self._script(plan, vals, cmd)
        folder = Path(values["root"]) / "agent"
        folder.mkdir(parents=True, exist_ok=True)
        home = self._new_home()
        server = ResponsesServer(script).start()
        try:
            config = self.config_for(server.url + "/v1", vals)
            (home / "config.toml").write_text(toml_dumps(config), encoding="utf-8")
            safefs.write_beneath(values["root"], str(folder / "config.toml"), toml_dumps(config).encode())
            plan_path = self._write_plan(folder, plan, home, str(config["model"]), values["workspace"])
        except BaseException:
            server.stop()
            shutil.rmtree(home, ignore_errors=True)
            raise
        values["agent_plan"] = str(plan_path)
        return _CodexRun(server=server, folder=folder, sessions=plan.sessions, home=home)

    def finish(self, state: Any) -> list[tuple[str, str]]:
        """Remove CODEX_HOME, then as the Claude driver: every tool result (the telling one
        first) and the transcript, with each session's codex log as its stderr."""
        if isinstance(state, _CodexRun):
            shutil.rmtree(state.home, ignore_errors=True)
            # The agent folder is in the throwaway root: read and written through descriptors,
            # bounded (the code under test may have put symlinks, FIFOs or floods there).
            root = str(state.folder.parent)
            status_path = state.folder / "status.json"
            raw = safefs.read_beneath(root, str(status_path))
            if raw is not None:
                status = _read_json(status_path, root).get("sessions", [])
                status = status if isinstance(status, list) else []
                for ended in status:
                    if not isinstance(ended, dict):
                        continue
                    log = safefs.read_beneath(root, str(state.folder / f"codex-{ended.get('session')}.log"),
                                              LOG_CAP)
                    if log is not None:
                        ended["stderr"] = log.decode("utf-8", "replace")[-20000:]
                safefs.write_beneath(root, str(status_path), json.dumps({"sessions": status}).encode())
        return super().finish(state)

    # -- helpers ---------------------------------------------------------------
    def config_for(self, base_url: str, values: Mapping[str, str]) -> dict[str, Any]:
        """The config.toml of one execution: defaults, the target's keys (placeholders
        expanded, keys that would leave the machine dropped), then the offline switches
        and the scripted model's provider."""
        own = {k: v for k, v in expand_all(self._config, values).items() if k not in OFFLINE_DROPPED}
        config = merge(merge(DEFAULT_CONFIG, {"projects": {values["workspace"]: {"trust_level": "trusted"}}}),
                       own)
        return merge(config, {**OFFLINE_CONFIG, "model_provider": PROVIDER, "model_providers": {PROVIDER: {
            "name": "sandboxcheck scripted model", "base_url": base_url, "wire_api": "responses",
            "supports_websockets": False}}})

    def _script(self, plan: CheckAgent, vals: Mapping[str, str], cmd: Sequence[str]) -> Script:
        """The Claude driver's script of the check's steps, played with Codex's tools."""
        script = super()._script(plan, vals, cmd)
        return Script(tuple(tuple(codex_step(s) for s in steps) for steps in script.sessions))

    def _new_home(self) -> Path:
        base = state_dir(self.name)
        if base is None:
            raise TargetError(f"target {self.name!r}: no folder outside the temp folder for CODEX_HOME: "
                              "set XDG_CACHE_HOME to one")
        for old in base.glob("run-*"):
            try:
                if time.time() - old.stat().st_mtime > STALE_S:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass
        return Path(tempfile.mkdtemp(prefix="run-", dir=base))

    def _write_plan(self, folder: Path, plan: CheckAgent, home: Path, model: str, workspace: str) -> Path:
        env = {"CODEX_HOME": str(home), **dict(plan.env)}
        if plan.path_without:
            env["PATH"] = _shim_path(folder / "path", plan.path_without)
        codex = [*self.tool_argv("codex"), *self._argv_tail(model)]
        # codex exec logs every command and its output on stderr: that goes to a file of
        # the harness's, so what a command returned is found where the model got it (the
        # recorded tool result), as with any agent, not in the target's stderr.
        sessions = [{"argv": ["/bin/sh", "-c", 'exec "$@" 2>"$0"', str(folder / f"codex-{n}.log"), *codex],
                     "env": env, "cwd": workspace,
                     "stdin": f"{SESSION_TAG}{n}: run the scripted steps of this sandboxcheck session."}
                    for n in range(1, plan.sessions + 1)]
        path = folder / "plan.json"
        safefs.write_beneath(str(folder.parent), str(path),
                             json.dumps({"sessions": sessions, "status": str(folder / "status.json")},
                                        indent=1).encode())
        return path

    def _argv_tail(self, model: str) -> list[str]:
        return ["exec", "--skip-git-repo-check", "--color", "never", "-c", f"model_provider={json.dumps(PROVIDER)}",
                "-c", f"model={json.dumps(model)}", *self._flags]

    def _display_argv(self) -> list[str]:
        return ["codex", *self._argv_tail(str(self._config.get("model", DEFAULT_MODEL)))]

    def _summary(self, transcript: Transcript, status: list[dict[str, Any]], sessions: int) -> str:
        ended = {s.get("session"): s for s in status if isinstance(s, dict)}
        out = [transcript.render().rstrip("\n")]
        for n in range(1, sessions + 1):
            out += self._session_lines(n, ended.get(n), any(c.session == n for c in transcript.calls))
        return "\n".join(out) + "\n"

    @staticmethod
    def _session_lines(number: int, ended: Mapping[str, Any] | None, called: bool) -> list[str]:
        if ended is None:
            return [f"--- session {number}: did not finish (killed or never started)"]
        rc = ended.get("returncode")
        head = f"--- session {number}: codex exited {rc} after {ended.get('duration_s')}s"
        if rc == 0 or called:
            return [head]
        # It never got to a tool call (a config it rejects, say): show why.
        return [head, *(f"    {ln}" for ln in str(ended.get("stderr") or "").strip().splitlines()[-5:])]
