"""What every agent target shares: the neutral base each driver subclasses.

An agent target runs a whole agent CLI in the throwaway root, its model a
scripted server on 127.0.0.1 (``script.py`` holds the protocol-neutral
steps, feed and transcript; ``messages_api.py``, ``responses_api.py`` and the
like speak each vendor's wire protocol). ``AgentTarget`` holds the common
life cycle of one execution:

- ``start``: build the check's script, start the driver's model server, let
  the driver write the agent's configuration (``prepare``), and write the plan
  that ``launch.py`` (the target process) runs, one agent session after another;
- ``finish``: stop the server, read how each session ended, record the
  transcript in the root and hand the runner every tool result (the telling
  one first) plus the transcript, where it finds canaries, markers and probe
  lines. Nothing the agent says about itself decides a verdict.

A driver names its CLI, its server class and its settings, and maps the
harness's steps to its tools (``tool_step``). Steps use the harness's own
vocabulary: Bash (``command``, ``dangerouslyDisableSandbox``), Read, Write
(``file_path``, ``content``) and Edit (``old_string``, ``new_string``).
"""
from __future__ import annotations

import json
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ... import placeholders, safefs
from ...model import WAITED_PROBE, TranscriptEntry
from ...probes import PROBE_PREFIX, probe_argv
from ..base import Target, TargetError, TargetSpec
from ..tools import DEFAULT_PATH
from .script import SESSION_TAG, Script, Step, ToolCall, Transcript
from .spec import AgentSpec, AgentSpecError, CheckAgent, parse_check_agent

LAUNCHER = Path(__file__).resolve().parent / "launch.py"
#: How ``launch.py`` runs an interactive session: a 40x100 terminal, ended once its screen
#: has been still for 5 s (the CLI waits for the user) or after 30 s.
TERMINAL: dict[str, float] = {"rows": 40, "cols": 100, "quiet_s": 5, "max_s": 30}



@dataclass(slots=True)
class AgentRun:
    """One execution's state between ``start`` and ``finish``."""

    server: Any  # the driver's model server (start()ed, has .url, .transcript, .stop())
    folder: Path
    sessions: int
    #: The check's tool calls and results, set by ``finish`` (the runner reads it).
    transcript: tuple[TranscriptEntry, ...] | None = field(default=None, kw_only=True)


def load_json(path: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        raise TargetError(f"--target-opt {what}={path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise TargetError(f"--target-opt {what}={path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TargetError(f"--target-opt {what}={path}: a settings file is a JSON object")
    return data


def read_json(path: Path, root: str | None = None) -> dict[str, Any]:
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


def write_beneath(root: str, path: Path, data: Any) -> None:
    """Write JSON into the throwaway root without following anything the target planted."""
    safefs.write_beneath(root, str(path), (json.dumps(data, indent=2) + "\n").encode())


def shim_path(folder: Path, without: Sequence[str]) -> str:
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


def probe_line(probe: str, action: str, attempted: bool, ok: bool, errno: str | None, message: str) -> str:
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
        return probe_line("agent", action, True, False, "AGENT_DENIED", first)
    if call.step.tool == "Bash":
        return None
    if not call.is_error:
        return probe_line("agent", action, True, True, None, "")
    lowered = text.lower()
    errno = ("ENOENT" if "does not exist" in lowered or "no such file" in lowered else
             "EACCES" if "permission denied" in lowered or "eacces" in lowered else
             "EROFS" if "read-only file system" in lowered else
             "EPERM" if "operation not permitted" in lowered else "AGENT_ERROR")
    return probe_line("agent", action, True, False, errno, first)


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
    return tuple(TranscriptEntry(turn, c.step.tool, dict(c.step.input), c.result, c.is_error, c.session,
                                 sent_at=c.sent_at, answered_at=c.answered_at)
                 for turn, c in enumerate(ordered, 1))


def call_outputs(calls: Sequence[ToolCall], first: int = 0) -> list[tuple[str, str]]:
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



def args_from_cmd(cmd: Sequence[str]) -> list[tuple[str, str]]:
    """``--name value`` pairs of a probe argv (the check's own arguments, expanded)."""
    out: list[tuple[str, str]] = []
    items = list(cmd)
    for i, item in enumerate(items):
        if item == "--":
            break
        if item.startswith("--") and i + 1 < len(items):
            out.append((item[2:], items[i + 1]))
    return out


def check_plan(check: Any) -> CheckAgent:
    """The check's ``agent:`` mapping, typed; a TargetError names the check when it is invalid."""
    try:
        return parse_check_agent(getattr(check, "agent", None))
    except AgentSpecError as exc:
        raise TargetError(f"check {getattr(check, 'id', '?')}: {exc}") from None


def session_prompt(number: int) -> str:
    """The prompt of agent session ``number``: the tag the scripted model reads the session from."""
    return f"{SESSION_TAG}{number}: run the scripted steps of this sandboxcheck session."


class AgentTarget(Target):
    """An agent CLI with a scripted model; see the module docstring.

    Subclasses set ``cli`` (the executable), ``server_class`` (the scripted model's
    protocol) and implement ``prepare`` and ``session_argv``; they may override
    ``tool_step``, ``collect``, ``cleanup`` and ``failed_start``.
    """

    #: The executable the target runs (a requirement of every preset of the driver).
    cli = ""
    #: The scripted model server class: ``server_class(script).start()`` serves ``.url``.
    server_class: Any = None
    #: A session takes seconds on an idle machine (start-up, model round trips);
    #: a loaded CI runner can take several times that.
    extra_timeout = 20.0

    def __init__(self, agent: AgentSpec, options: Mapping[str, str] | None = None) -> None:
        self.agent = agent
        self.name = agent.name
        self.description = agent.description
        opts = dict(options or {})
        self._flags = tuple(agent.flags)
        if "flags" in opts:
            try:
                self._flags += tuple(shlex.split(opts["flags"]))
            except ValueError as exc:
                raise TargetError(f"--target-opt flags={opts['flags']!r}: {exc}") from None
        self.configure(opts)
        #: A TargetSpec view, so listings show the CLI's version like any target's.
        self.spec = TargetSpec(name=agent.name, command=tuple(self.display_argv()),
                               description=agent.description,
                               requires=tuple(agent.requires),
                               python=agent.python, env=agent.env, source=agent.source)

    # -- what a driver provides -------------------------------------------------
    def configure(self, options: Mapping[str, str]) -> None:
        """Take the driver's own ``--target-opt`` values (``flags`` is taken already)."""

    def display_argv(self) -> list[str]:
        """The CLI's command line as listings show it."""
        return [self.cli, *self._flags]

    def shown_config(self) -> dict[str, Any]:
        """What ``describe`` shows of the agent's configuration: only what decides the
        sandbox (a user's settings may hold secrets, and reports get shared)."""
        return {}

    def prepare(self, run: AgentRun, plan: CheckAgent, values: Mapping[str, str]) -> dict[str, str]:
        """Write the agent's configuration for one execution; return the sessions' environment."""
        raise NotImplementedError

    def session_argv(self, run: AgentRun, plan: CheckAgent, number: int) -> list[str]:
        """The argv of agent session ``number`` (its prompt goes in on stdin)."""
        raise NotImplementedError

    def new_run(self, server: Any, folder: Path, plan: CheckAgent) -> AgentRun:
        """The execution's state (a driver with more to keep returns a subclass)."""
        return AgentRun(server=server, folder=folder, sessions=plan.sessions)

    def tool_step(self, step: Step) -> Step:
        """A step of the harness's vocabulary as this agent's tools take it."""
        return step

    def session_stdin(self, number: int) -> str:
        """What session ``number`` reads on stdin: its prompt (a CLI taking it as an argument: "")."""
        return session_prompt(number)

    def collect(self, run: AgentRun, status: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add what the driver kept of each session (a log, say) to its status entry."""
        return status

    def cleanup(self, run: AgentRun) -> None:
        """Remove what ``prepare`` made outside the root."""

    #: Patterns of the screens at which the CLI, started in a terminal, waits for the user
    #: (its questions and its input prompt); an interactive session ends at one of them.
    waiting_screens: tuple[str, ...] = ()

    def terminal_lines(self, number: int, ended: Mapping[str, Any]) -> list[str]:
        """How an interactive session ended, and (when the CLI sat waiting for the user,
        nothing it started still at work, until the launcher ended it) a probe line saying
        the start itself went through: what a repository's files did by then is judged on
        the host. The status is the root's, written by the launcher: its screen lines can
        never pass for a probe line, and the harness's own line comes first."""
        note = str(ended.get("terminal") or "")[:600]
        screen = [ln.strip().replace(PROBE_PREFIX, PROBE_PREFIX.rstrip() + "(on the screen) ")
                  for ln in str(ended.get("stdout") or "").splitlines() if ln.strip()][-12:]
        lines = [f"--- session {number}: {self.cli} in a terminal, {note} "
                 f"(exit {ended.get('returncode')} after {ended.get('duration_s')}s)"]
        if ended.get("waited") is True:
            lines.append(probe_line(WAITED_PROBE, f"start {self.cli} in a terminal (session {number})", True, True,
                                    None, "it waited for the user at: " + " / ".join(screen[-4:])))
        lines += [f"    | {ln}" for ln in screen]
        if ended.get("waited") is not True and (not screen or ended.get("returncode") not in (0, None)):
            lines += self.failed_start(number, ended)
        return lines

    def failed_start(self, number: int, ended: Mapping[str, Any]) -> list[str]:
        """Lines saying why session ``number`` ended without a tool call."""
        return []

    # -- Target interface ----------------------------------------------------------
    def option_names(self) -> frozenset[str]:
        from .spec import DRIVER_OPTIONS

        return frozenset(DRIVER_OPTIONS.get(self.agent.driver, ()))

    def unavailable(self) -> str | None:
        missing = [r.hint() for r in self.agent.requires if self.missing_tool(r.name)]
        return "; ".join(missing) or None

    def python(self) -> str:
        return self.agent.python or super().python()

    def supports(self, check: Any) -> str | None:
        return None  # an agent target runs agent checks and plain ones alike

    def session_reason(self, check: Any) -> str | None:
        return f"{self.cli} runs one task per process"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "kind": "agent",
                "agent": self.agent.driver, "command": self.display_argv(), **self.shown_config(),
                "source": self.agent.source}

    def environment(self, base: Mapping[str, str], caller: Mapping[str, str]) -> dict[str, str]:
        return {**base, **dict(self.agent.env)}

    def argv(self, values: Mapping[str, str], cmd: Sequence[str]) -> list[str]:
        plan = values.get("agent_plan")
        if not plan:
            raise TargetError(f"target {self.name!r}: argv() before start(): the plan is written by start()")
        return [self.python(), "-I", "-S", "-B", str(LAUNCHER), plan]

    def start(self, values: dict[str, str], cmd: Sequence[str], check: Any = None) -> AgentRun:
        """Start the scripted model, write the agent's configuration and the plan."""
        plan = check_plan(check)
        vals = {**values, "cmd": shlex.join(cmd)}
        vals.setdefault("python", self.python())
        root = Path(values["root"])
        folder = root / "agent"
        folder.mkdir(parents=True, exist_ok=True)
        # An interactive session is given no prompt: the model has nothing to script.
        script = Script(tuple(() for _ in range(plan.sessions))) if plan.interactive else self.script(plan, vals, cmd)
        server = self.server_class(script).start()
        try:
            run = self.new_run(server, folder, plan)
        except BaseException:
            server.stop()
            raise
        try:
            env = {**self.prepare(run, plan, vals), **dict(plan.env)}
            if plan.path_without:
                env["PATH"] = shim_path(folder / "path", plan.path_without)
            sessions = [{"argv": self.session_argv(run, plan, n), "env": env, "cwd": values["workspace"],
                         "stdin": self.session_stdin(n)} for n in range(1, plan.sessions + 1)]
            if plan.interactive:
                for session in sessions:
                    session["terminal"] = {**TERMINAL, "waiting": list(self.waiting_screens)}
                    session["stdin"] = ""
            plan_path = folder / "plan.json"
            write_beneath(str(root), plan_path, {"sessions": sessions, "status": str(folder / "status.json")})
        except BaseException:
            server.stop()
            self.cleanup(run)
            raise
        values["agent_plan"] = str(plan_path)
        return run

    def finish(self, state: Any) -> list[tuple[str, str]]:
        """Stop the model; return every tool result (the telling one first) and the transcript."""
        if not isinstance(state, AgentRun):
            return []
        state.server.stop()
        self.cleanup(state)
        transcript = state.server.transcript
        root = str(state.folder.parent)  # the throwaway root: read and written through descriptors
        status = read_json(state.folder / "status.json", root).get("sessions", [])
        status = self.collect(state, status if isinstance(status, list) else [])
        write_beneath(root, state.folder / "transcript.json", {**transcript.to_dict(), "sessions": status})
        state.transcript = transcript_entries(transcript.calls)
        return [*call_outputs(transcript.calls), ("the agent transcript", self.summary(transcript, status, state.sessions))]

    # -- shared helpers ---------------------------------------------------------------
    def script(self, plan: CheckAgent, vals: Mapping[str, str], cmd: Sequence[str]) -> Script:
        """The model's script: each step's tool input with its placeholders expanded,
        mapped to the agent's tools."""
        check_args = dict(args_from_cmd(cmd))
        sessions: list[list[Step]] = [[] for _ in range(plan.sessions)]
        for spec in plan.steps:
            svals = dict(vals)
            if spec.probe:
                svals["cmd"] = shlex.join(probe_argv(vals["python"], vals["probes"], spec.probe, spec.args, vals))
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
            sessions[spec.session - 1].append(self.tool_step(Step(spec.tool, inp)))
        return Script(tuple(tuple(s) for s in sessions))

    def summary(self, transcript: Transcript, status: list[dict[str, Any]], sessions: int) -> str:
        """The transcript, then how each session ended."""
        lines = [transcript.render().rstrip("\n")]
        ended = {s.get("session"): s for s in status if isinstance(s, dict)}
        for n in range(1, sessions + 1):
            s = ended.get(n)
            if s is None:
                lines.append(f"--- session {n}: did not finish (killed or never started)")
                continue
            if s.get("terminal"):
                lines += self.terminal_lines(n, s)
                continue
            lines.append(f"--- session {n}: {self.cli} exited {s.get('returncode')} after {s.get('duration_s')}s")
            if s.get("returncode") != 0 and not any(c.session == n for c in transcript.calls):
                lines += self.failed_start(n, s)
        return "\n".join(lines) + "\n"
