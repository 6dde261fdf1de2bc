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
import shutil
import tempfile
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import safefs
from ..base import TargetError
from ..tools import state_dir
from .base import AgentRun, AgentTarget
from .script import Step
from .responses_api import ResponsesServer
from .spec import AgentSpecError, CheckAgent, expand_all, merge, parse_check_agent

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
class CodexRun(AgentRun):
    """One execution's state between ``start`` and ``finish``, with its CODEX_HOME."""

    home: Path = Path()
    model: str = DEFAULT_MODEL


class CodexTarget(AgentTarget):
    """``codex exec`` with a scripted model, a CODEX_HOME of its own per execution."""

    cli = "codex"
    server_class = ResponsesServer

    def configure(self, options: Mapping[str, str]) -> None:
        self._config: dict[str, Any] = dict(self.agent.config)
        if "config" in options:
            self._config = merge(self._config, _load_toml(options["config"]))

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
        if plan.interactive:
            return "the check starts Claude Code in a terminal (interactive); codex is driven headless (codex exec)"
        if any(s.tool == "Read" for s in plan.steps):
            return "codex has no Read tool (it reads files with exec_command): a Read step cannot be scripted"
        if any(".claude" in text for s in plan.steps
               for text in (s.command or "", s.path or "", *(str(v) for _, v in s.args))):
            return "the check tampers with Claude Code's files (.claude), which codex never reads"
        return None

    def session_reason(self, check: Any) -> str | None:
        return "codex exec runs one task per process"

    def shown_config(self) -> dict[str, Any]:
        return {"config": {k: v for k, v in self._config.items()
                           if k in ("sandbox_mode", "sandbox_workspace_write", "approval_policy",
                                    "default_permissions")}}

    # -- the driver ------------------------------------------------------------------
    def new_run(self, server: Any, folder: Path, plan: CheckAgent) -> CodexRun:
        return CodexRun(server=server, folder=folder, sessions=plan.sessions, home=self._new_home())

    def prepare(self, run: AgentRun, plan: CheckAgent, values: Mapping[str, str]) -> dict[str, str]:
        assert isinstance(run, CodexRun)
        config = self.config_for(run.server.url + "/v1", values, trusted=plan.trusted is not False)
        run.model = str(config["model"])
        (run.home / "config.toml").write_text(toml_dumps(config), encoding="utf-8")
        safefs.write_beneath(values["root"], str(run.folder / "config.toml"), toml_dumps(config).encode())
        return {"CODEX_HOME": str(run.home)}

    def session_argv(self, run: AgentRun, plan: CheckAgent, number: int) -> list[str]:
        assert isinstance(run, CodexRun)
        # codex exec logs every command and its output on stderr: that goes to a file of
        # the harness's, so what a command returned is found where the model got it (the
        # recorded tool result), as with any agent, not in the target's stderr.
        return ["/bin/sh", "-c", 'exec "$@" 2>"$0"', str(run.folder / f"codex-{number}.log"),
                *self.tool_argv("codex"), *self._argv_tail(run.model)]

    def tool_step(self, step: Step) -> Step:
        return codex_step(step)

    def cleanup(self, run: AgentRun) -> None:
        if isinstance(run, CodexRun):
            shutil.rmtree(run.home, ignore_errors=True)

    def collect(self, run: AgentRun, status: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each session's codex log becomes its stderr (bounded, read through descriptors: the
        code under test may have put symlinks, FIFOs or floods in the root)."""
        root = str(run.folder.parent)
        for ended in status:
            if not isinstance(ended, dict):
                continue
            log = safefs.read_beneath(root, str(run.folder / f"codex-{ended.get('session')}.log"), LOG_CAP)
            if log is not None:
                ended["stderr"] = log.decode("utf-8", "replace")[-20000:]
        if status:
            safefs.write_beneath(root, str(run.folder / "status.json"), json.dumps({"sessions": status}).encode())
        return status

    def failed_start(self, number: int, ended: Mapping[str, Any]) -> list[str]:
        # It never got to a tool call (a config it rejects, say): show why.
        return [f"    {ln}" for ln in str(ended.get("stderr") or "").strip().splitlines()[-5:]]

    def config_for(self, base_url: str, values: Mapping[str, str], trusted: bool = True) -> dict[str, Any]:
        """The config.toml of one execution: defaults, the workspace trusted (unless the
        check says the user never trusted it: then no entry, as after a fresh clone), the
        target's keys (placeholders expanded, keys that would leave the machine dropped),
        then the offline switches and the scripted model's provider."""
        own = {k: v for k, v in expand_all(self._config, values).items() if k not in OFFLINE_DROPPED}
        trust = {"projects": {values["workspace"]: {"trust_level": "trusted"}}} if trusted else {}
        config = merge(merge(DEFAULT_CONFIG, trust), own)
        return merge(config, {**OFFLINE_CONFIG, "model_provider": PROVIDER, "model_providers": {PROVIDER: {
            "name": "sandboxcheck scripted model", "base_url": base_url, "wire_api": "responses",
            "supports_websockets": False}}})

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

    def _argv_tail(self, model: str) -> list[str]:
        return ["exec", "--skip-git-repo-check", "--color", "never", "-c", f"model_provider={json.dumps(PROVIDER)}",
                "-c", f"model={json.dumps(model)}", *self._flags]

    def display_argv(self) -> list[str]:
        return ["codex", *self._argv_tail(str(self._config.get("model", DEFAULT_MODEL)))]
