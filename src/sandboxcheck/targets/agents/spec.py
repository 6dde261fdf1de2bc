"""What an agent target and an agent check declare, parsed and validated (no I/O).

An agent target file (``kind: agent``)::

    kind: agent
    name: my-claude
    description: Claude Code with my team's settings
    agent: claude-code                # the driver: claude-code, codex or gemini-cli
    requires: [{name: claude, install: "npm install ..."}]
    settings: {sandbox: {enabled: true}}   # merged into the workspace's .claude/settings.json
    user_settings: {}                 # merged into the fake HOME's ~/.claude/settings.json
    allowed_tools: [Bash]             # --allowedTools
    flags: []                         # further CLI flags
    env: {}                           # further environment for the agent
    python: /usr/bin/python3          # interpreter the probes use

A ``codex`` target takes ``config:`` (keys merged into the generated
CODEX_HOME/config.toml) instead of ``settings``, ``user_settings`` and
``allowed_tools``, which are Claude Code's. A ``gemini-cli`` target's
``settings`` and ``user_settings`` are Gemini CLI settings (the workspace's
``.gemini/settings.json`` and the fake HOME's ``~/.gemini/settings.json``).

An agent check carries an ``agent:`` mapping in the matrix (see
``CheckAgent``); without one, an agent target runs the check's probe as one
Bash tool call.
"""
from __future__ import annotations

import copy
import difflib
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ... import placeholders
from ...model import CheckAgent, StepSpec
from ..tools import Requirement

#: Tools a scripted step may call.
TOOLS: tuple[str, ...] = ("Bash", "Read", "Write", "Edit")
#: Placeholders an agent step may use besides the matrix's: ``{cmd}``, the probe
#: argv shell-quoted (the check's, or the step's own ``probe``).
STEP_PLACEHOLDERS: frozenset[str] = frozenset({"cmd"})
#: Target options (``--target-opt KEY=VALUE``) agent targets take, each meaning one driver's.
OPTIONS: dict[str, str] = {
    "settings": "a settings JSON file merged into the workspace's .claude/settings.json "
                "(gemini-cli: .gemini/settings.json)",
    "user_settings": "a settings JSON file merged into the fake HOME's ~/.claude/settings.json "
                     "(gemini-cli: ~/.gemini/settings.json)",
    "flags": "further CLI flags, split like a shell",
    "allowed_tools": "comma-separated --allowedTools rules, replacing the target's",
    "config": "a Codex config.toml merged into the generated CODEX_HOME/config.toml",
}


@dataclass(frozen=True, slots=True)
class Driver:
    """An agent driver: the one place that says what it runs, takes and is implemented by."""

    name: str
    #: The program it runs: a target must require it, or a machine without it would
    #: run every check into "inconclusive" instead of saying what is missing.
    executable: str
    #: The ``--target-opt`` keys it takes (from OPTIONS, or its own).
    options: tuple[str, ...]
    #: Target-file keys that belong to this driver only.
    keys: tuple[str, ...]
    #: ``module:Class`` of its AgentTarget subclass (imported only when a target is built).
    target: str


#: Every agent driver. A package adds one with an entry point in the group
#: ``sandboxcheck.agents`` whose object is a ``Driver``.
DRIVERS: dict[str, Driver] = {d.name: d for d in (
    Driver("claude-code", "claude", ("settings", "user_settings", "flags", "allowed_tools"),
           ("settings", "user_settings", "allowed_tools"), "sandboxcheck.targets.agents.claude:ClaudeCodeTarget"),
    Driver("codex", "codex", ("config", "flags"), ("config",), "sandboxcheck.targets.agents.codex:CodexTarget"),
    Driver("gemini-cli", "gemini", ("settings", "user_settings", "flags"), ("settings", "user_settings"),
           "sandboxcheck.targets.agents.gemini:GeminiTarget"),
)}


#: The options each driver takes (from OPTIONS).
DRIVER_OPTIONS: dict[str, tuple[str, ...]] = {d.name: d.options for d in DRIVERS.values()}
#: Options whose value is a file the harness reads (JSON settings, TOML config).
FILE_OPTIONS: frozenset[str] = frozenset({"settings", "user_settings", "config"})
#: The program each driver runs.
DRIVER_EXECUTABLES: dict[str, str] = {d.name: d.executable for d in DRIVERS.values()}
#: Target keys that belong to one driver only.
_DRIVER_KEYS: dict[str, tuple[str, ...]] = {d.name: d.keys for d in DRIVERS.values()}
_plugins_loaded = False


def load_plugin_drivers() -> None:
    """Add the drivers other packages register (entry point group ``sandboxcheck.agents``);
    done once, when a target names a driver that is not built in."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="sandboxcheck.agents"):
        try:
            driver = ep.load()
        except Exception:  # noqa: BLE001 - a broken plugin must not break the built-in drivers
            continue
        if isinstance(driver, Driver) and driver.name not in DRIVERS:
            DRIVERS[driver.name] = driver
            DRIVER_OPTIONS[driver.name] = driver.options
            DRIVER_EXECUTABLES[driver.name] = driver.executable
            _DRIVER_KEYS[driver.name] = driver.keys
#: Settings keys dropped from every merged settings file: they would send the
#: agent to a real model or run a credential helper, and a run must stay offline.
OFFLINE_DROPPED = ("apiKeyHelper", "awsAuthRefresh", "awsCredentialExport", "otelHeadersHelper")

_TARGET_KEYS = {"kind", "name", "description", "agent", "requires", "settings", "user_settings",
                "allowed_tools", "flags", "env", "python", "config"}
_CHECK_KEYS = {"steps", "settings", "user_settings", "allowed_tools", "flags", "env", "path_without", "trusted",
               "interactive"}
_STEP_KEYS = {"tool", "command", "probe", "args", "disable_sandbox", "path", "content", "old", "new",
              "session"}


class AgentSpecError(ValueError):
    """An agent target or an agent check mapping is invalid; the message lists every problem."""


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` deep-merged onto ``base``: mappings merge key by key, anything else is replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def offline(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Settings without what would make the agent leave the machine (see OFFLINE_DROPPED)."""
    out = {k: copy.deepcopy(v) for k, v in settings.items() if k not in OFFLINE_DROPPED}
    env = out.get("env")
    if isinstance(env, Mapping):
        out["env"] = {k: v for k, v in env.items()
                      if not str(k).startswith(("ANTHROPIC_", "CLAUDE_CODE_USE_"))}
    return out


def expand_all(value: Any, values: Mapping[str, str]) -> Any:
    """Every string inside ``value`` (mappings, lists) with its placeholders expanded."""
    if isinstance(value, str):
        return placeholders.expand(value, values)
    if isinstance(value, Mapping):
        return {k: expand_all(v, values) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [expand_all(v, values) for v in value]
    return value


def option_file_problems(options: Mapping[str, str]) -> list[str]:
    """Why a file named by a ``--target-opt`` (settings=FILE, config=FILE) cannot be read, if it cannot.

    Checked before the target is built, so a FIFO, a device or a huge file is
    refused up front instead of blocking or filling memory when it is read.
    """
    from ...safeyaml import InputError, read_bytes

    out = []
    for key in sorted(FILE_OPTIONS & set(options)):
        try:
            read_bytes(os.path.expanduser(options[key]), f"{key} file")
        except InputError as exc:
            out.append(f"--target-opt {key}={options[key]}: {exc.message}")
    return out


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """An agent target as declared in YAML."""

    name: str
    description: str = ""
    driver: str = "claude-code"
    requires: tuple[Requirement, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict, hash=False)
    user_settings: Mapping[str, Any] = field(default_factory=dict, hash=False)
    allowed_tools: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    python: str | None = None
    source: str = ""
    config: Mapping[str, Any] = field(default_factory=dict, hash=False)


def parse_agent_target(data: Any, source: str) -> AgentSpec:
    """Validate a ``kind: agent`` target mapping; AgentSpecError names every problem."""
    if not isinstance(data, Mapping):
        raise AgentSpecError(f"{source}: an agent target is a mapping with 'kind: agent' and 'name'")
    problems: list[str] = []
    for key in sorted(set(data) - _TARGET_KEYS):
        problems.append(f"unknown key {key!r}{_suggest(key, sorted(_TARGET_KEYS))}")
    name = data.get("name")
    if not isinstance(name, str) or not name:
        problems.append("'name' must be a non-empty string")
    driver = data.get("agent", "claude-code")
    if isinstance(driver, str) and driver not in DRIVERS:
        load_plugin_drivers()
    if driver not in DRIVERS:
        problems.append(f"agent: {driver!r} is not a known agent (known: {', '.join(DRIVERS)})")
    if driver in DRIVERS:
        owners: dict[str, list[str]] = {}
        for other, keys in _DRIVER_KEYS.items():
            for key in keys:
                if other != driver and key in data and key not in _DRIVER_KEYS[driver]:
                    owners.setdefault(key, []).append(other)
        for key, others in owners.items():  # one line per key, naming every driver that takes it
            problems.append(f"'{key}' is a {' and '.join(others)} key; an agent: {driver} target does not take it")
    reqs: list[Requirement] = []
    raw_reqs = data.get("requires") or []
    reqs_ok = isinstance(raw_reqs, list)
    if not reqs_ok:
        problems.append("'requires' must be a list of executable names or {name, install} mappings")
        raw_reqs = []
    for item in raw_reqs:
        if isinstance(item, str):
            reqs.append(Requirement(item))
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str) and set(item) <= {"name", "install"}:
            reqs.append(Requirement(item["name"], str(item.get("install", ""))))
        else:
            reqs_ok = False
            problems.append(f"requires: {item!r} is neither a name nor {{name, install}}")
    exe = DRIVER_EXECUTABLES.get(driver) if isinstance(driver, str) else None
    if exe and reqs_ok and not reqs:
        chosen = "" if "agent" in data else " (the default 'agent:')"
        problems.append(f"'requires' must name the program agent: {driver}{chosen} runs, e.g. "
                        f"requires: [{{name: {exe}, install: \"npm install ...\"}}]")
    for key in ("settings", "user_settings"):
        if not isinstance(data.get(key) or {}, Mapping):
            problems.append(f"'{key}' must be a mapping ({'Gemini CLI' if driver == 'gemini-cli' else 'Claude Code'} "
                            "settings)")
    if not isinstance(data.get("config") or {}, Mapping):
        problems.append("'config' must be a mapping (Codex config.toml keys)")
    tools = data.get("allowed_tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        problems.append("'allowed_tools' must be a list of permission rules such as Bash or Bash(npm:*)")
        tools = []
    flags = data.get("flags") or []
    if isinstance(flags, str):
        try:
            flags = shlex.split(flags)
        except ValueError as exc:
            problems.append(f"flags: cannot split {flags!r} like a shell: {exc}")
            flags = []
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        problems.append("'flags' must be a list of command-line arguments")
        flags = []
    env = data.get("env") or {}
    if not isinstance(env, Mapping):
        problems.append("'env' must be a mapping")
        env = {}
    python = data.get("python")
    if python is not None and not (isinstance(python, str) and python.startswith("/")):
        problems.append("'python' must be an absolute path to an interpreter")
    if problems:
        raise AgentSpecError("\n".join(f"{source}: {p}" for p in problems))
    return AgentSpec(name=str(name), description=str(data.get("description", "")), driver=str(driver),
                     requires=tuple(reqs), settings=dict(data.get("settings") or {}),
                     user_settings=dict(data.get("user_settings") or {}), allowed_tools=tuple(tools),
                     flags=tuple(flags), env=tuple((str(k), str(v)) for k, v in env.items()),
                     python=python, source=source, config=dict(data.get("config") or {}))






def check_agent_problems(raw: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Problems of a check's ``agent:`` mapping as (path below ``agent``, message) pairs:
    its shape (what the matrix JSON Schema also says) and ``semantic_problems``."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    if not isinstance(raw, Mapping):
        return [((), "must be a mapping (steps, settings, allowed_tools, flags, env, path_without, trusted, "
                     "interactive)")]
    for key in sorted(set(raw) - _CHECK_KEYS):
        out.append(((key,), f"unknown key{_suggest(key, sorted(_CHECK_KEYS))}"))
    steps = raw.get("steps", [{}])
    if not isinstance(steps, list) or not steps:
        out.append((("steps",), "must be a non-empty list of tool calls"))
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        here: tuple[str | int, ...] = ("steps", i)
        if not isinstance(step, Mapping):
            out.append((here, "a step is a mapping such as {tool: Bash, command: '{cmd}'}"))
            continue
        for key in sorted(set(step) - _STEP_KEYS):
            out.append((here + (key,), f"unknown key{_suggest(key, sorted(_STEP_KEYS))}"))
        if step.get("tool", "Bash") not in TOOLS:
            out.append((here + ("tool",), f"{step.get('tool')!r} is not one of: {', '.join(TOOLS)}"))
        session = step.get("session", 1)
        if not isinstance(session, int) or isinstance(session, bool) or not 1 <= session <= 5:
            out.append((here + ("session",), f"{session!r} is not a session number from 1 to 5"))
    for key in ("settings", "user_settings"):
        if key in raw and not isinstance(raw[key], Mapping):
            out.append(((key,), "must be a mapping (Claude Code settings)"))
    for key in ("allowed_tools", "flags", "path_without"):
        if key in raw and not (isinstance(raw[key], list) and all(isinstance(v, str) for v in raw[key])):
            out.append(((key,), "must be a list of strings"))
    if "env" in raw and not isinstance(raw["env"], Mapping):
        out.append((("env",), "must be a mapping of variable names to values"))
    if "trusted" in raw and not isinstance(raw["trusted"], bool):
        out.append((("trusted",), "must be true or false (did the user trust the workspace?)"))
    if "interactive" in raw and not isinstance(raw["interactive"], bool):
        out.append((("interactive",), "must be true or false (start the CLI in a terminal?)"))
    elif raw.get("interactive") and "steps" in raw:
        out.append((("steps",), "an interactive session is given no prompt, so it makes no scripted "
                                "tool calls: drop steps"))
    return out + semantic_problems(raw)


def semantic_problems(raw: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """What the JSON Schema cannot say about an ``agent:`` mapping: keys that belong to
    another tool, a step probe's arguments, session numbering, placeholders."""
    from ...probes import PROBES

    out: list[tuple[tuple[str | int, ...], str]] = []
    if not isinstance(raw, Mapping):
        return out
    steps = raw.get("steps", [{}])
    steps = [s for s in steps if isinstance(s, Mapping)] if isinstance(steps, list) else []
    for i, step in enumerate(steps):
        here: tuple[str | int, ...] = ("steps", i)
        tool = step.get("tool", "Bash")
        if tool != "Bash":
            for key in ("command", "probe", "args", "disable_sandbox"):
                if key in step:
                    out.append((here + (key,), f"only a Bash step takes {key!r}"))
        if tool == "Edit" and not ("old" in step and "new" in step):
            out.append((here, "an Edit step needs 'old' and 'new'"))
        if "args" in step and "probe" not in step:
            out.append((here + ("args",), "'args' goes with the step's own 'probe'"))
        if "command" in step and "probe" in step and "{cmd}" not in str(step["command"]):
            out.append((here + ("command",), "a step with its own probe must use {cmd} in its command"))
        probe = PROBES.get(step.get("probe")) if isinstance(step.get("probe"), str) else None
        args = step.get("args") or {}
        if probe is not None and isinstance(args, Mapping):
            for name in sorted(set(args) - set(probe.required) - set(probe.optional)):
                out.append((here + ("args", name), f"probe {probe.name!r} takes no argument {name!r}"
                            f"{_suggest(name, probe.required + probe.optional)}"))
            for name in probe.required:
                if name not in args:
                    out.append((here + ("args",), f"probe {probe.name!r} needs argument {name!r}"))
    sessions = sorted({s.get("session", 1) for s in steps if isinstance(s.get("session", 1), int)})
    if sessions and sessions != list(range(1, sessions[-1] + 1)):
        out.append((("steps",), f"sessions must be numbered 1, 2, ... without gaps (found {sessions})"))
    known = placeholders.MATRIX_PLACEHOLDERS | STEP_PLACEHOLDERS
    for sub, text in _strings(raw):
        for name in sorted(placeholders.names(text) - known):
            out.append((sub, f"unknown placeholder {{{name}}}{_suggest(name, sorted(known))}"))
    return out


def _strings(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, Mapping):
        return [item for k, v in value.items() for item in _strings(v, path + (k,))]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in _strings(v, path + (i,))]
    return []


def parse_check_agent(raw: Mapping[str, Any] | CheckAgent | None) -> CheckAgent:
    """The CheckAgent of a check's ``agent:`` mapping (None: one Bash call of the probe).

    Raises AgentSpecError when the mapping is invalid (the matrix loader reports
    the same problems with line numbers first).
    """
    if raw is None:
        return CheckAgent()
    if isinstance(raw, CheckAgent):
        return raw
    problems = check_agent_problems(raw)
    if problems:
        raise AgentSpecError("; ".join(f"agent.{'.'.join(map(str, p))}: {m}" if p else f"agent: {m}"
                                       for p, m in problems))
    steps = tuple(StepSpec(tool=s.get("tool", "Bash"), command=s.get("command"), probe=s.get("probe"),
                           args=tuple((s.get("args") or {}).items()),
                           disable_sandbox=bool(s.get("disable_sandbox", False)), path=s.get("path"),
                           content=s.get("content"), old=s.get("old"), new=s.get("new"),
                           session=int(s.get("session", 1)))
                  for s in raw.get("steps", [{}]))
    tools = raw.get("allowed_tools")
    return CheckAgent(steps=steps, settings=dict(raw.get("settings") or {}),
                      user_settings=dict(raw.get("user_settings") or {}),
                      allowed_tools=tuple(tools) if tools is not None else None,
                      flags=tuple(raw.get("flags") or ()),
                      env=tuple((str(k), str(v)) for k, v in (raw.get("env") or {}).items()),
                      path_without=tuple(raw.get("path_without") or ()),
                      trusted=raw.get("trusted"), interactive=bool(raw.get("interactive", False)))
