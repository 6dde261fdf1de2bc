"""The one interface every evidence kind implements, and their registry.

After a check's action the harness hands the check's evidence kind an
``Observation``: everything it saw outside the sandbox (the target's output,
the root, the sinks, the watched file's state before) and the check. The
kind's ``Observer`` answers with evidence lines, each a fact seen on the host
("{outside}/created.txt created on the host with the check's canary"); none
means the action left no trace. An observer that finds the evidence cannot
prove anything says why in ``Observation.problem`` (the check is then
inconclusive).

Adding an evidence kind: a module here with an ``Observer`` subclass, its
name and meaning in ``model.EVIDENCE_KINDS``, and one line in ``OBSERVERS``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model import Check


@dataclass(slots=True)
class Observation:
    """What the harness saw of one execution, outside the sandbox."""

    check: Check
    #: The throwaway root (``path``, ``fd``, ``token``, ``env_canaries``).
    root: Any
    #: The check's placeholder values.
    values: Mapping[str, str]
    #: Everything seen of the target: (where, text), stdout and stderr first.
    outputs: list[tuple[str, str]]
    #: The command line that ran.
    argv: Sequence[str]
    #: The harness's sinks (``evidence.sinks.Sinks``) and the unix ones' paths by name.
    sinks: Any
    unix: Mapping[str, Path] = field(default_factory=dict)
    #: The workspace's state before the action (leak evidence).
    ws_before: Mapping[str, Any] = field(default_factory=dict)
    #: The watched path (file evidence) and its state before the action.
    watch: Path | None = None
    before: Any = None
    #: Processes of the launch left alive when it ended: (pid, command line).
    survivors: Sequence[tuple[int, str]] = ()
    #: The harness's witness process (signal evidence); an observer that stops it sets None.
    witness: Any = None
    #: The harness's own network when the check runs in it (``network.world.OwnedNetwork``).
    network: Any = None
    #: An agent check's tool calls (``model.TranscriptEntry``), None for a plain target.
    transcript: Sequence[Any] | None = None
    #: Why the evidence cannot prove anything, when an observer finds so.
    problem: str | None = None


class Observer(ABC):
    """One evidence kind: how the effect of an action is seen from outside."""

    kind: str = ""

    @abstractmethod
    def observe(self, obs: Observation) -> list[str]:
        """Evidence lines (facts seen on the host); empty when the action left no trace."""


def observers() -> dict[str, Observer]:
    """Every evidence kind's observer, by kind."""
    from .file import FileObserver
    from .leak import LeakObserver
    from .marker import MarkerObserver
    from .witness import SignalObserver
    from .sink import SinkObserver
    from .survivor import SurvivorObserver

    return {o.kind: o for o in (LeakObserver(), FileObserver(), SinkObserver(), MarkerObserver(),
                                SurvivorObserver(), SignalObserver())}
