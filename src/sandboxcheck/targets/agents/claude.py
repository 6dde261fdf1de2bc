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
import os
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import placeholders, safefs
from ...model import TranscriptEntry
from ..tools import DEFAULT_PATH, Requirement
from ..base import Target, TargetError, TargetSession, TargetSpec
from .script import SESSION_TAG, Feed, Script, Step, ToolCall, Transcript
from .messages_api import ModelServer
from .spec import AgentSpec, AgentSpecError, CheckAgent, expand_all, merge, offline, parse_check_agent

#: The environment every Claude Code session gets on top of the harness's.
OFFLINE_ENV: dict[str, str] = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
}
LAUNCHER = Path(__file__).resolve().parent / "launch.py"
PROBE_PREFIX = "SANDBOXCHECK-PROBE "

#: What the CLI prints on stderr when it refuses to start without its sandbox
#: (``sandbox.failIfUnavailable``): "Error: sandbox required but unavailable: ...".
_REFUSED = re.compile(r"sandbox required but unavailable|refusing to start", re.IGNORECASE)


@dataclass(slots=True)
class _Run:
    """One execution's state between ``start`` and ``finish``."""

    server: ModelServer
    folder: Path
    sessions: int
    #: The check's tool calls and results, set by ``finish`` (the runner reads it).
    transcript: tuple[TranscriptEntry, ...] | None = field(default=None, kw_only=True)


def _probe_argv(values: Mapping[str, str], probe: str, args: Sequence[tuple[str, Any]]) -> list[str]:
    """A probe's argv, built the way the runner builds a check's."""
    argv = [values["python"], "-B", "-E", "-s", "-S", str(Path(values["probes"]) / f"{probe}.py")]
    for key, val in args:
        argv += [f"--{key}", placeholders.expand(str(val), values)]
    return argv


def _load_json(path: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        raise TargetError(f"--target-opt {what}={path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise TargetError(f"--target-opt {what}={path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TargetError(f"--target-opt {what}={path}: a settings file is a JSON object")
    return data


def _read_json(path: Path, root: str | None = None) -> dict[str, Any]:
    """A JSON object from ``path`` ({} if none); beneath ``root`` read through descriptors only."""
    try:
        if root is not None:
            raw = safefs.read_beneath(root, str(path))
            if raw is None:
                return {}
            data = json.loads(raw.decode("utf-8"))
        else:
            data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_beneath(root: str, path: Path, data: Any) -> None:
    """Write JSON into the throwaway root without following anything the target planted."""
    safefs.write_beneath(root, str(path), (json.dumps(data, indent=2) + "\n").encode())


def _shim_path(folder: Path, without: Sequence[str]) -> str:
    """A folder of symlinks to every program on the harness's PATH except ``without``."""
    folder.mkdir(parents=True, exist_ok=True)
    for d in DEFAULT_PATH.split(os.pathsep):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            link = folder / name
            if name in without or link.exists() or link.is_symlink():
                continue
            target = os.path.join(d, name)
            if os.access(target, os.X_OK) and not os.path.isdir(target):
                link.symlink_to(target)
    return str(folder)


def _probe_line(probe: str, action: str, attempted: bool, ok: bool, errno: str | None, message: str) -> str:
    rec = {"probe": probe, "action": action, "attempted": attempted, "ok": ok, "errno": errno,
           "message": message[:300]}
    return PROBE_PREFIX + json.dumps(rec)


def _classify(call: ToolCall) -> str | None:
    """A probe-style line for a call whose result carries none, else None.

    The harness wrote it from what its own server received (the agent's
    ``tool_result``); like any probe line it explains, never proves. A Bash call
    that ran but printed no probe line (exit 127, say) gets none: unknown.
    """
    if not call.answered or PROBE_PREFIX in (call.result or ""):
        return None
    action = f"{call.step.summary()} (agent tool call)"
    text = (call.result or "").strip()
    first = text.splitlines()[0] if text else ""
    if call.permission_denied:
        return _probe_line("agent", action, True, False, "AGENT_DENIED", first)
    if call.step.tool == "Bash":
        return None
    if not call.is_error:
        return _probe_line("agent", action, True, True, None, "")
    lowered = text.lower()
    errno = ("ENOENT" if "does not exist" in lowered or "no such file" in lowered else
             "EACCES" if "permission denied" in lowered or "eacces" in lowered else
             "EROFS" if "read-only file system" in lowered else
             "EPERM" if "operation not permitted" in lowered else "AGENT_ERROR")
    return _probe_line("agent", action, True, False, errno, first)


def _reported_failure(text: str) -> bool:
    """The first probe line in ``text`` reports an attempt that failed."""
    idx = text.find(PROBE_PREFIX)
    if idx < 0:
        return False
    try:
        rec = json.loads(text[idx + len(PROBE_PREFIX):].splitlines()[0])
    except (ValueError, IndexError):
        return False
    return isinstance(rec, dict) and bool(rec.get("attempted")) and not rec.get("ok")


def transcript_entries(calls: Sequence[ToolCall], first: int = 0) -> tuple[TranscriptEntry, ...]:
    """The calls of one check as report entries, in the order the model made them.

    ``first`` is the index of the check's first step in a shared session. Texts are
    whole here: the runner redacts, then trims them.
    """
    ordered = sorted(calls, key=lambda c: (c.session, c.index))
    return tuple(TranscriptEntry(turn, c.step.tool, dict(c.step.input), c.result, c.is_error, c.session)
                 for turn, c in enumerate(ordered, 1))


def _call_outputs(calls: Sequence[ToolCall], first: int = 0) -> list[tuple[str, str]]:
    """What came back from each answered call, as (where, text), the telling one first.

    ``first`` is the index of the check's first step in a shared session, so steps
    are numbered per check and evidence reads the same however the check ran.
    """
    results: list[tuple[str, str]] = []
    for call in calls:
        if call.answered:
            line = _classify(call)
            step = call.index - first + 1 if call.session == 1 else call.index + 1
            results.append((f"the agent's {call.step.tool} result (session {call.session}, step {step})",
                            (line + "\n" if line else "") + (call.result or "")))
    # The runner explains a denial with the first probe line it finds: put first
    # the last call that was refused or failed (the retry of a self-unsandbox,
    # the tamper of a restart check), else the last call.
    failed = [i for i, (_, text) in enumerate(results) if _reported_failure(text)]
    lead = failed[-1] if failed else len(results) - 1
    return ([results[lead]] + [r for i, r in reversed(list(enumerate(results))) if i != lead]
            if results else [])


#: Probes whose evidence is the agent process itself, so a check using one gets a
#: session of its own: read_env and read_proc_environ look for the canaries of the
#: agent's environment (a shared session has one set for all its checks), and
#: daemon's evidence is a process that outlives the agent.
OWN_SESSION_PROBES = frozenset({"read_env", "read_proc_environ", "daemon"})
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
        self.stdin = f"{SESSION_TAG}1: run the scripted steps of this sandboxcheck session.".encode()

    def _snapshot(self) -> dict[str, bytes | None]:
        # Through descriptors and bounded: the agent under test may have planted symlinks
        # to host folders, FIFOs or huge files at these paths.
        out: dict[str, bytes | None] = {}
        for rel in SESSION_FILES:
            out.update(safefs.snapshot_beneath(str(self.root), rel))
        state = _read_json(self.root / "home" / ".claude.json", str(self.root))
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
        first, end = self.feed.push(self.target._script(plan, vals, cmd).steps(1))
        answered = self.feed.wait_answered(end, timeout, alive)
        calls = [c for c in self.server.transcript.calls if c.session == 1 and first <= c.index < end]
        self.transcript = transcript_entries(calls, first)
        made = Transcript(calls=calls)
        text = made.render().rstrip("\n") + "\n" if calls else "the agent made none of the check's calls\n"
        return answered, [*_call_outputs(calls, first), ("the agent transcript", text)]

    def finish(self) -> None:
        self.feed.end()

    def close(self) -> None:
        self.feed.end()  # a request still waiting for a step gets the final text
        self.server.stop()


class ClaudeCodeTarget(Target):
    """Claude Code (``claude -p``) with a scripted model, its settings written per execution."""

    #: A session takes 1 to 3 s on an idle machine (start-up, two model round trips);
    #: a loaded CI runner can take several times that.
    extra_timeout = 20.0

    def __init__(self, agent: AgentSpec, options: Mapping[str, str] | None = None) -> None:
        self.agent = agent
        self.name = agent.name
        self.description = agent.description
        opts = dict(options or {})
        self._settings = dict(agent.settings)
        self._user_settings = dict(agent.user_settings)
        self._allowed = tuple(agent.allowed_tools)
        self._flags = tuple(agent.flags)
        if "settings" in opts:
            self._settings = merge(self._settings, _load_json(opts["settings"], "settings"))
        if "user_settings" in opts:
            self._user_settings = merge(self._user_settings, _load_json(opts["user_settings"], "user_settings"))
        if "flags" in opts:
            try:
                self._flags += tuple(shlex.split(opts["flags"]))
            except ValueError as exc:
                raise TargetError(f"--target-opt flags={opts['flags']!r}: {exc}") from None
        if "allowed_tools" in opts:
            self._allowed = tuple(t.strip() for t in opts["allowed_tools"].split(",") if t.strip())
        #: A TargetSpec view, so listings show the CLI's version like any target's.
        self.spec = TargetSpec(name=agent.name, command=tuple(self._display_argv()),
                               description=agent.description,
                               requires=tuple(Requirement(r.name, r.install) for r in agent.requires),
                               python=agent.python, env=agent.env, source=agent.source)

    # -- Target interface ----------------------------------------------------
    def unavailable(self) -> str | None:
        missing = [Requirement(r.name, r.install).hint() for r in self.agent.requires if self.missing_tool(r.name)]
        return "; ".join(missing) or None

    def python(self) -> str:
        return self.agent.python or super().python()

    def supports(self, check: Any) -> str | None:
        return None  # an agent target runs agent checks and plain ones alike

    def session_reason(self, check: Any) -> str | None:
        try:
            plan = parse_check_agent(getattr(check, "agent", None))
        except AgentSpecError as exc:
            return str(exc)
        if plan.sessions > 1:
            return "the check restarts the agent"
        if (plan.settings or plan.user_settings or plan.allowed_tools is not None or plan.flags
                or plan.env or plan.path_without):
            return "the check configures the agent for itself"
        probes = {getattr(check, "probe", None), *(s.probe for s in plan.steps)}
        if probes & OWN_SESSION_PROBES:
            return "the check's evidence is the agent process itself"
        return None

    def open_session(self, values: dict[str, str]) -> ClaudeSession:
        return ClaudeSession(self, values)

    def describe(self) -> dict[str, Any]:
        # Only the sandbox and permission sections: a user's settings file may hold
        # secrets in env, hooks or helpers, and reports get shared.
        shown = {k: v for k, v in offline(self._settings).items() if k in ("sandbox", "permissions")}
        return {"name": self.name, "description": self.description, "kind": "agent",
                "agent": self.agent.driver, "command": self._display_argv(), "settings": shown,
                "source": self.agent.source}

    def environment(self, base: Mapping[str, str], caller: Mapping[str, str]) -> dict[str, str]:
        env = dict(base)
        env.update(dict(self.agent.env))
        env.update(OFFLINE_ENV)
        return env

    def argv(self, values: Mapping[str, str], cmd: Sequence[str]) -> list[str]:
        plan = values.get("agent_plan")
        if not plan:
            raise TargetError(f"target {self.name!r}: argv() before start(): the plan is written by start()")
        return [self.python(), "-I", "-S", "-B", str(LAUNCHER), plan]

    def start(self, values: dict[str, str], cmd: Sequence[str], check: Any = None) -> _Run:
        """Write settings and the plan, start the scripted model; see the module docstring."""
        try:
            plan = parse_check_agent(getattr(check, "agent", None))
        except AgentSpecError as exc:
            raise TargetError(f"check {getattr(check, 'id', '?')}: {exc}") from None
        vals = {**values, "cmd": shlex.join(cmd)}
        vals.setdefault("python", self.python())
        root = Path(values["root"])
        folder = root / "agent"
        folder.mkdir(parents=True, exist_ok=True)
        script = self._script(plan, vals, cmd)
        server = ModelServer(script).start()
        try:
            self._write_settings(plan, vals)
            session_env = {"ANTHROPIC_BASE_URL": server.url, **dict(plan.env)}
            if plan.path_without:
                session_env["PATH"] = _shim_path(folder / "path", plan.path_without)
            sessions = [{"argv": self._argv(plan), "env": session_env, "cwd": values["workspace"],
                         "stdin": f"{SESSION_TAG}{n}: run the scripted steps of this sandboxcheck session."}
                        for n in range(1, plan.sessions + 1)]
            plan_path = folder / "plan.json"
            _write_beneath(str(root), plan_path, {"sessions": sessions, "status": str(folder / "status.json")})
        except BaseException:
            server.stop()
            raise
        values["agent_plan"] = str(plan_path)
        return _Run(server=server, folder=folder, sessions=plan.sessions)

    def finish(self, state: Any) -> list[tuple[str, str]]:
        """Stop the model; return every tool_result (last step first) and the transcript."""
        if not isinstance(state, _Run):
            return []
        state.server.stop()
        transcript = state.server.transcript
        root = str(state.folder.parent)  # the throwaway root: read and written through descriptors
        status = _read_json(state.folder / "status.json", root).get("sessions", [])
        if not isinstance(status, list):
            status = []
        _write_beneath(root, state.folder / "transcript.json", {**transcript.to_dict(), "sessions": status})
        state.transcript = transcript_entries(transcript.calls)
        ordered = _call_outputs(transcript.calls)
        return [*ordered, ("the agent transcript", self._summary(transcript, status, state.sessions))]

    # -- helpers ---------------------------------------------------------------
    def _display_argv(self) -> list[str]:
        return ["claude", *self._flags, *(["--allowedTools", ",".join(self._allowed)] if self._allowed else []),
                "--output-format", "json", "-p"]

    def _argv(self, plan: CheckAgent) -> list[str]:
        allowed = plan.allowed_tools if plan.allowed_tools is not None else self._allowed
        # The prompt goes in on stdin: -p takes no value, and a variadic flag such as
        # --allowedTools could otherwise swallow a positional prompt.
        return [*self.tool_argv("claude"), *self._flags, *plan.flags,
                *(["--allowedTools", ",".join(allowed)] if allowed else []),
                "--output-format", "json", "-p"]

    def _script(self, plan: CheckAgent, vals: Mapping[str, str], cmd: Sequence[str]) -> Script:
        """The model's script: each step's tool input with its placeholders expanded."""
        check_args = dict(_args_from_cmd(cmd))
        sessions: list[list[Step]] = [[] for _ in range(plan.sessions)]
        for spec in plan.steps:
            svals = dict(vals)
            if spec.probe:
                svals["cmd"] = shlex.join(_probe_argv(vals, spec.probe, spec.args))
            if spec.tool == "Bash":
                inp: dict[str, Any] = {"command": placeholders.expand(spec.command or "{cmd}", svals),
                                       "description": "sandboxcheck scripted step"}
                if spec.disable_sandbox:
                    inp["dangerouslyDisableSandbox"] = True
            else:
                path = placeholders.expand(spec.path, svals) if spec.path else check_args.get("path")
                if not path:
                    raise TargetError(f"a {spec.tool} step needs a path (the step's 'path' or the check's)")
                inp = {"file_path": os.path.abspath(os.path.join(vals["workspace"], path))}
                if spec.tool == "Write":
                    content = spec.content if spec.content is not None else check_args.get("content", "")
                    inp["content"] = placeholders.expand(content, svals)
                elif spec.tool == "Edit":
                    inp["old_string"] = placeholders.expand(spec.old or "", svals)
                    inp["new_string"] = placeholders.expand(spec.new or "", svals)
            sessions[spec.session - 1].append(Step(spec.tool, inp))
        return Script(tuple(tuple(s) for s in sessions))

    def _write_settings(self, plan: CheckAgent, vals: Mapping[str, str]) -> None:
        ws, home, root = Path(vals["workspace"]), Path(vals["home"]), vals["root"]
        project = ws / ".claude" / "settings.json"
        settings = merge(merge(_read_json(project, root), self._settings), plan.settings)
        _write_beneath(root, project, offline(expand_all(settings, vals)))
        user = merge(self._user_settings, plan.user_settings)
        if user:
            _write_beneath(root, home / ".claude" / "settings.json", offline(expand_all(user, vals)))
        # What an interactive first start would have recorded: onboarding done and
        # the workspace trusted (a user runs the agent in a repository of their own).
        state = home / ".claude.json"
        data = merge(_read_json(state, root), {
            "hasCompletedOnboarding": True, "numStartups": 1, "autoUpdates": False,
            "projects": {str(ws): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True,
                                   "allowedTools": []}}})
        _write_beneath(root, state, data)

    def _summary(self, transcript: Transcript, status: list[dict[str, Any]], sessions: int) -> str:
        lines = [transcript.render().rstrip("\n")]
        ended = {s.get("session"): s for s in status if isinstance(s, dict)}
        for n in range(1, sessions + 1):
            s = ended.get(n)
            if s is None:
                lines.append(f"--- session {n}: did not finish (killed or never started)")
                continue
            lines.append(f"--- session {n}: claude exited {s.get('returncode')} after {s.get('duration_s')}s")
            made = [c for c in transcript.calls if c.session == n]
            err = str(s.get("stderr") or "")
            if not made and s.get("returncode") != 0 and _REFUSED.search(err):
                first = next((ln.strip() for ln in err.splitlines() if _REFUSED.search(ln)), "")
                lines.append(_probe_line("agent", f"start agent session {n}", True, False, "AGENT_REFUSED", first))
        return "\n".join(lines) + "\n"


def _args_from_cmd(cmd: Sequence[str]) -> list[tuple[str, str]]:
    """``--name value`` pairs of a probe argv (the check's own arguments, expanded)."""
    out: list[tuple[str, str]] = []
    items = list(cmd)
    for i, item in enumerate(items):
        if item == "--":
            break
        if item.startswith("--") and i + 1 < len(items):
            out.append((item[2:], items[i + 1]))
    return out
