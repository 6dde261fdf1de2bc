"""What a target is: the interface every target kind implements, and its errors."""
from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .pinning import Installed, InstallSpec
from .tools import Requirement, find_tool, installed_version, landlock_abi



class TargetError(Exception):
    """A target file or reference is invalid (bad input: exit code 2)."""




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
    options: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, str], ...] = ()
    install: InstallSpec | None = None
    bin_dirs: tuple[Path, ...] = ()  # searched first for requirements (a pinned install)
    version: str | None = None
    pin: Installed | None = None  # the pinned release and the node that runs it


class Target(ABC):
    """Something that can run a probe argv inside a sandbox."""

    name: str
    description: str
    #: Seconds added to a check's own timeout (unless --timeout is given) for the
    #: target's start-up: an agent target starts a CLI that talks to a model.
    extra_timeout: float = 0.0
    #: The pinned release this target runs (``--target NAME@VERSION``), else None.
    pin: Installed | None = None

    def tool_argv(self, name: str) -> list[str]:
        """The argv prefix that starts executable ``name``: the pinned release's (with the
        node it needs) when there is one, else the one found on the tool path."""
        launch = self.pin.launcher(name) if self.pin is not None else None
        return launch or [find_tool(name) or name]

    def missing_tool(self, name: str) -> bool:
        """Whether executable ``name`` is neither in the pinned release nor on the tool path."""
        return (self.pin is None or self.pin.launcher(name) is None) and not find_tool(name)

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

    def start(self, values: dict[str, str], cmd: Sequence[str], check: Any = None) -> Any:
        """Set up per-execution state before launch (e.g. a scripted model server).

        May add entries to ``values`` for ``argv`` and ``environment`` to use.
        ``check`` is the Check being run (an agent target reads its ``agent``
        script). The default has no state.
        """
        return None

    def option_names(self) -> frozenset[str]:
        """The ``--target-opt`` keys this target takes."""
        return frozenset()

    def supports(self, check: Any) -> str | None:
        """None when this target can run ``check``, else why not (an agent check needs an agent)."""
        if getattr(check, "agent", None) is not None:
            return "this check scripts an agent (agent:); run it against an agent target such as claude-code"
        return None

    def finish(self, state: Any) -> list[tuple[str, str]]:
        """Tear down ``start``'s state; return extra outputs seen outside as
        (where, text) pairs, e.g. ("agent transcript", ...). Default: none."""
        return []

    def own_network(self, check: Any) -> bool:
        """True when ``check`` must run inside the harness's own name space (names
        resolve only to the harness's sinks) whatever placeholders it uses."""
        return False

    def session_reason(self, check: Any) -> str | None:
        """None when ``check`` can run in a long-lived session shared with other
        checks (see ``open_session``), else why it needs a process of its own."""
        return "the target starts one process per check"

    def open_session(self, values: dict[str, str]) -> TargetSession:
        """Set up a long-lived session in the root ``values`` describe (only when
        ``session_reason`` can return None)."""
        raise TargetError(f"target {self.name!r} has no long-lived sessions")


class TargetSession(ABC):
    """One long-lived target process that runs many checks one after another.

    The harness starts ``argv`` (with ``env`` added to the target's environment
    and ``stdin`` written to it) in a root of its own. Before each check it
    reseeds that root with the check's token, keeping the paths in ``keep``,
    and calls ``restore``; then ``run`` hands the check to the process and
    returns what came back. ``tainted`` says when a check changed the session
    itself (its settings), after which the harness retires it.
    """

    argv: list[str]
    env: dict[str, str]
    stdin: bytes = b""
    #: Paths relative to the root that survive reseeding (the session's own state).
    keep: frozenset[str] = frozenset()

    def restore(self) -> None:
        """Put back the session's own files after the root was reseeded."""

    def tainted(self) -> str | None:
        """None while the session is as it started, else what changed."""
        return None

    @abstractmethod
    def run(self, check: Any, values: Mapping[str, str], cmd: Sequence[str], timeout: float,
            alive: Callable[[], bool]) -> tuple[bool, list[tuple[str, str]]]:
        """Run one check's steps; (answered in time, outputs seen outside as (where, text))."""

    @abstractmethod
    def finish(self) -> None:
        """Tell the process there is nothing more to do (it should exit soon after)."""

    @abstractmethod
    def close(self) -> None:
        """Stop the session's helpers (the process has exited or was killed)."""


def requirement_versions(target: Target) -> list[str]:
    """``'<tool> <version>'`` of each installed requirement of ``target`` (empty for none)."""
    spec = getattr(target, "spec", None)
    if not isinstance(spec, TargetSpec):
        return []
    found = []
    pin = spec.pin
    for r in spec.requires:
        if pin is not None and (pin.bin_dir / r.name).exists():
            found.append(f"{r.name} {pin.describe()}")  # the pinned release (NAME@VERSION) and its node
        elif pin is not None and r.name == "node" and pin.node is not None:
            continue  # the pinned release names the node it runs under
        elif (version := installed_version(r.name, spec.bin_dirs)):
            found.append(version)
    if "landlock" in spec.kernel and landlock_abi() > 0:
        found.append(f"Landlock ABI {landlock_abi()}")
    return found
