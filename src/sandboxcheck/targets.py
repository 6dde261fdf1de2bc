"""Targets: how to run a command inside the sandbox under test.

A target is a YAML file (or a bundled preset, or an inline command string
containing ``{cmd}``) with an argv template. Presets live in ``presets/``.
"""
from __future__ import annotations

import ctypes
import difflib
import os
import shlex
import shutil
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from . import placeholders
from .resources import presets_dir

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


class TargetError(Exception):
    """A target file or reference is invalid (bad input: exit code 2)."""


@dataclass(frozen=True, slots=True)
class Requirement:
    """An executable a target needs, and how to get it."""

    name: str
    install: str = ""

    def hint(self) -> str:
        """Human message for a missing requirement."""
        return f"{self.name} not found on PATH" + (f": {self.install}" if self.install else "")


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A target as declared in YAML."""

    name: str
    command: tuple[str, ...]
    description: str = ""
    requires: tuple[Requirement, ...] = ()
    kernel: tuple[str, ...] = ()
    python: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    pass_env: tuple[str, ...] = ()
    source: str = ""


class Target(ABC):
    """Something that can run a probe argv inside a sandbox."""

    name: str
    description: str

    @abstractmethod
    def unavailable(self) -> str | None:
        """None when the target can run here, else why not (with the fix)."""

    @abstractmethod
    def argv(self, values: Mapping[str, str], cmd: Sequence[str]) -> list[str]:
        """The full argv that runs ``cmd`` inside the sandbox."""

    @abstractmethod
    def environment(self, base: Mapping[str, str], caller: Mapping[str, str]) -> dict[str, str]:
        """The environment the target process starts with."""

    def python(self) -> str:
        """Interpreter path probes use inside the sandbox."""
        return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3") or "python3"

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for reports."""
        return {"name": self.name, "description": self.description}


@lru_cache(maxsize=1)
def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        v = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
        return int(v) if v > 0 else 0
    except (OSError, AttributeError):
        return 0


def installed_version(binary: str) -> str | None:
    """Best-effort version string of an executable (first line of --version)."""
    import subprocess

    path = shutil.which(binary)
    if not path:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=5,
                             env={"PATH": DEFAULT_PATH})
    except (OSError, subprocess.SubprocessError):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else None


class CommandTarget(Target):
    """A target defined by an argv template."""

    def __init__(self, spec: TargetSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.description = spec.description

    def unavailable(self) -> str | None:
        missing = [r.hint() for r in self.spec.requires if not shutil.which(r.name)]
        if "landlock" in self.spec.kernel and landlock_abi() < 1:
            missing.append("the kernel does not offer Landlock (needs Linux >= 5.13 with lsm=landlock)")
        return "; ".join(missing) or None

    def python(self) -> str:
        return self.spec.python or super().python()

    def argv(self, values: Mapping[str, str], cmd: Sequence[str]) -> list[str]:
        vals = dict(values)
        vals["cmd_shell"] = shlex.join(cmd)
        vals.setdefault("python", self.python())
        resolved = {r.name: shutil.which(r.name) for r in self.spec.requires}
        out: list[str] = []
        for part in self.spec.command:
            if part == "{cmd}":
                out.extend(cmd)
            elif part in resolved and resolved[part]:
                out.append(resolved[part])  # type: ignore[arg-type]
            else:
                out.append(placeholders.expand(part, vals))
        return out

    def environment(self, base: Mapping[str, str], caller: Mapping[str, str]) -> dict[str, str]:
        env = dict(base)
        for name in self.spec.pass_env:
            if name in caller:
                env[name] = caller[name]
        env.update(dict(self.spec.env))
        return env

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "command": list(self.spec.command), "source": self.spec.source}


_TARGET_KEYS = {"name", "description", "requires", "kernel", "command", "python", "env", "pass_env"}


def parse_target(data: Any, source: str) -> TargetSpec:
    """Validate a target mapping; raises TargetError naming every problem."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise TargetError(f"{source}: a target is a mapping with 'name' and 'command'")
    for key in sorted(set(data) - _TARGET_KEYS):
        close = difflib.get_close_matches(key, sorted(_TARGET_KEYS), n=1)
        problems.append(f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    name = data.get("name")
    if not isinstance(name, str) or not name:
        problems.append("'name' must be a non-empty string")
    command = data.get("command")
    if isinstance(command, str):
        try:
            command = shlex.split(command)
        except ValueError as exc:
            problems.append(f"command: cannot split {command!r} like a shell: {exc}")
            command = []
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        problems.append("'command' must be a non-empty list of strings (an argv template)")
        command = []
    used = set().union(*(placeholders.names(c) for c in command)) if command else set()
    for bad in sorted(used - placeholders.TARGET_PLACEHOLDERS):
        problems.append(f"command: unknown placeholder {{{bad}}}")
    if command and not any("{cmd}" in c or "{cmd_shell}" in c for c in command):
        problems.append("command: must contain {cmd} (as its own element) or {cmd_shell}")
    if any("{cmd}" in c and c != "{cmd}" for c in command):
        problems.append("command: {cmd} must be an element of its own; use {cmd_shell} inside a string")
    reqs: list[Requirement] = []
    raw_reqs = data.get("requires") or []
    if not isinstance(raw_reqs, list):
        problems.append("'requires' must be a list of executable names or {name, install} mappings")
        raw_reqs = []
    for item in raw_reqs:
        if isinstance(item, str):
            reqs.append(Requirement(item))
        elif isinstance(item, dict) and isinstance(item.get("name"), str) and set(item) <= {"name", "install"}:
            reqs.append(Requirement(item["name"], str(item.get("install", ""))))
        else:
            problems.append(f"requires: {item!r} is neither a name nor {{name, install}}")
    kernel = data.get("kernel") or []
    if not isinstance(kernel, list):
        problems.append("'kernel' must be a list of kernel features (known: landlock)")
        kernel = []
    for k in kernel:
        if k != "landlock":
            problems.append(f"kernel: unknown feature {k!r} (known: landlock)")
    env = data.get("env") or {}
    if not isinstance(env, dict):
        problems.append("'env' must be a mapping")
        env = {}
    pass_env = data.get("pass_env") or []
    if not isinstance(pass_env, list) or not all(isinstance(n, str) for n in pass_env):
        problems.append("'pass_env' must be a list of variable names")
        pass_env = []
    python = data.get("python")
    if python is not None and not (isinstance(python, str) and python.startswith("/")):
        problems.append("'python' must be an absolute path to an interpreter")
    if problems:
        raise TargetError("\n".join(f"{source}: {p}" for p in problems))
    return TargetSpec(name=name, command=tuple(command), description=str(data.get("description", "")),
                      requires=tuple(reqs), kernel=tuple(kernel), python=data.get("python"),
                      env=tuple((str(k), str(v)) for k, v in env.items()),
                      pass_env=tuple(pass_env), source=source)


def preset_names() -> list[str]:
    """Names of the bundled presets."""
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))


def load_target(ref: str) -> Target:
    """A target from a preset name, a target file path, or an inline command with {cmd}."""
    preset = presets_dir() / f"{ref}.yaml"
    if "{cmd" in ref and not Path(ref).exists():
        return CommandTarget(parse_target({"name": "inline", "description": "inline command",
                                           "command": ref}, "--target"))
    path = preset if preset.exists() else Path(ref)
    if not path.exists():
        raise TargetError(f"unknown target {ref!r}: not a preset ({', '.join(preset_names())}), "
                          "not a file, and not an inline command containing {cmd}")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise TargetError(f"{path}: cannot load target: {exc}") from None
    return CommandTarget(parse_target(data, str(path)))
