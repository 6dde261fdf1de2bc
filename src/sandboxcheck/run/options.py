"""Options of a run, and the progress interface the scheduler reports to."""
from __future__ import annotations

from dataclasses import dataclass

from ..model import Result


class Progress:
    """Progress sink for long runs; the default does nothing (the core knows no terminal)."""

    def start(self, total: int) -> None:
        """Called once with the number of checks."""

    def advance(self, result: Result) -> None:
        """Called after each check."""

    def finish(self) -> None:
        """Called once at the end."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Options of one run."""

    jobs: int = 1
    timeout: float | None = None
    keep_workspace: bool = False
    control: bool = True
    fork_controls: bool = True
    preflight: bool = True
    #: Run the checks a target can share a long-lived process for (an agent's) in
    #: such sessions, instead of one process each.
    sessions: bool = True
    #: Run every check inside the harness's own name space (not only those using its network).
    own_network: bool = False
