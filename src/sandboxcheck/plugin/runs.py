"""The session's runs: items of one matrix node run as one batch (all their targets
interleaved, one control per check), results cached for the session; the Harness is shared."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

import pytest

from ..model import Check, Matrix, Result
from ..redact import scrub_initial_environ
from ..run.harness import Harness
from ..run.options import RunOptions
from ..run.schedule import run_targets
from ..matrix.conform_option import conformed_targets
from ..model import RunReport
from ..run.roots import check_temp_dir
from ..targets.base import Target
from .options import Settings, T

if TYPE_CHECKING:
    from .items import CheckItem


class RunError(Exception):
    """A run could not happen (not a verdict): the message says why."""


class Runs:
    """Runs matrices for this pytest process, sharing Harnesses and caching results.

    One Harness per set of harness-level options (timeout, workspace keeping,
    fork-server controls), which is one per session unless suites differ in
    timeout; all are closed at the end of the session.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._harnesses: dict[tuple[Any, ...], Harness] = {}
        self._results: dict[tuple[str, str, str], Result] = {}
        self._errors: dict[tuple[str, str, str], str] = {}
        self._unavailable: dict[int, tuple[Target, str | None]] = {}
        self._reports: dict[tuple[Any, ...], RunReport] = {}
        self._loaded: dict[tuple[Any, ...], Any] = {}

    def close(self) -> None:
        """Close every Harness (kills what still runs, removes every temporary path)."""
        while self._harnesses:
            _, harness = self._harnesses.popitem()
            harness.close()

    def unavailable(self, target: Target) -> str | None:
        """Why ``target`` cannot run here (asked once per target), else None."""
        if id(target) not in self._unavailable:
            self._unavailable[id(target)] = (target, target.unavailable())
        return self._unavailable[id(target)][1]

    def run(self, matrix: Matrix, targets: Sequence[Target], options: RunOptions) -> list[RunReport]:
        """``run_targets`` on the session's Harness for these options."""
        problem = check_temp_dir()
        if problem:
            raise RunError(problem)
        key = (options.timeout, options.keep_workspace, options.fork_controls, options.sessions)
        harness = self._harnesses.get(key)
        if harness is None:
            # The test process is the harness here: a leaky target must not find the
            # caller's secrets in its /proc/PID/environ (os.environ stays as it is).
            scrub_initial_environ()
            harness = self._harnesses[key] = Harness(options)
        try:
            # A matrix with conform: runs srt with the settings it names, as `sandboxcheck run` does.
            return run_targets(matrix, conformed_targets(matrix, targets), options, harness=harness)
        except BaseException:
            # run_targets closes the Harness on the way out: never reuse it.
            self._harnesses.pop(key, None)
            harness.close()
            raise

    # -- items
    def result(self, item: CheckItem) -> Result:
        """The item's result, running its batch the first time one of its items asks."""
        if item.key not in self._results and item.key not in self._errors:
            self._run_batch(item)
        if item.key in self._errors:
            raise RunError(self._errors[item.key])
        return self._results[item.key]

    def _run_batch(self, item: CheckItem) -> None:
        parent = item.parent
        from .items import CheckItem

        batch = [i for i in _pending(item) if isinstance(i, CheckItem) and i.parent is parent
                 and i.key not in self._results and i.key not in self._errors]
        if item not in batch:
            batch.insert(0, item)
        node = item.key[0]
        wanted: dict[str, set[str]] = {}
        for i in batch:
            wanted.setdefault(i.check.id, set()).add(i.target.name)
        # Checks wanted for the same targets run together (usually: one group).
        groups: dict[frozenset[str], set[str]] = {}
        for check_id, target_names in wanted.items():
            groups.setdefault(frozenset(target_names), set()).add(check_id)
        plan = item.plan
        for names, ids in groups.items():
            targets = [t for t in plan.targets if t.name in names]
            sub = dataclasses.replace(plan.matrix, checks=tuple(c for c in plan.matrix.checks if c.id in ids))
            try:
                reports = self.run(sub, targets, plan.options)
            except Exception as exc:
                # The other items of the batch report the error without running it again;
                # the item that ran it shows the traceback unless it is a known RunError.
                text = str(exc) if isinstance(exc, RunError) else f"{type(exc).__name__}: {exc}"
                for t in targets:
                    self._errors.update({(node, t.name, i): text for i in ids})
                if item.check.id in ids and item.target.name in names and not isinstance(exc, RunError):
                    raise
                continue
            for target, report in zip(targets, reports):
                for r in report.results:
                    self._results[(node, target.name, r.id)] = r

    # -- fixture
    def cached(self, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        """``make()`` once per ``key`` for this session (loaded matrices and targets)."""
        if key not in self._loaded:
            self._loaded[key] = make()
        return cast(T, self._loaded[key])

    def report(self, matrix: Matrix, target: Target, options: RunOptions) -> RunReport:
        """The report of ``matrix`` against ``target``, run once per session and options."""
        key = (_identity(matrix), id(target), options)
        if key not in self._reports:
            self._reports[key] = self.run(matrix, [target], options)[0]
            self._loaded[("keep", id(target))] = target  # keeps id() unique while cached
        report = self._reports[key]
        return dataclasses.replace(report, results=list(report.results), kept=list(report.kept))

    def check(self, matrix: Matrix, check: Check, target: Target, options: RunOptions) -> Result:
        """One check's result: from a cached report of its matrix, else a run of it alone."""
        full = self._reports.get((_identity(matrix), id(target), options))
        if full is not None:
            return next(r for r in full.results if r.id == check.id)
        sub = dataclasses.replace(matrix, checks=(check,))
        return self.report(sub, target, options).results[0]


def _identity(matrix: Matrix) -> Any:
    try:
        hash(matrix)
        return matrix
    except TypeError:  # a hand-made Matrix holding lists
        return id(matrix)


def _pending(item: CheckItem) -> list[pytest.Item]:
    """Items this process will run from here on that can share ``item``'s batch.

    Without xdist: every collected item. Under xdist with ``--dist loadgroup``, the
    items of ``item``'s group (a worker gets whole groups). Under any other
    distribution a worker cannot know what it will be handed: the item alone.
    """
    if not hasattr(item.config, "workerinput"):
        return list(item.session.items)
    if item.config.getoption("dist", None) == "loadgroup":
        group = item.group
        return [i for i in item.session.items if getattr(i, "group", None) == group]
    return [item]


_RUNS = pytest.StashKey[Runs]()


def _runs(config: pytest.Config) -> Runs:
    return config.stash[_RUNS]
