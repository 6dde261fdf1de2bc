"""The ``sandboxcheck`` fixture's object: run a matrix or one check from a test."""
from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Iterable
from pathlib import Path

import pytest

from ..matrix.load import MatrixError, load_matrix
from ..model import Matrix, Result
from ..run.options import RunOptions
from ..model import RunReport
from ..matrix.suite import missing_matrix_message, resolve_matrix_ref, resolve_target_ref
from ..targets.base import Target, TargetError
from ..targets.registry import load_target
from .runs import RunError
from .runs import Runs
from .options import _first


class Sandboxcheck:
    """The ``sandboxcheck`` fixture: run matrices and checks from Python tests.

    Relative matrix paths resolve against the test file's folder, then the
    folder pytest was started in; a bare name may be a bundled matrix. Runs
    share the session's Harness and are cached per session (same matrix,
    target and options). A target that is not available here skips the test
    (fails it under ``--sandboxcheck-strict``); bad matrices and targets fail
    it with the loader's file:line messages.
    """

    def __init__(self, runs: Runs, base: Path, invocation_dir: Path) -> None:
        self._runs = runs
        self._bases = (base, invocation_dir)

    def matrix(self, ref: MatrixRef) -> Matrix:
        """A loaded matrix: a Matrix as is, a path, or a bundled name."""
        if isinstance(ref, Matrix):
            return ref
        text = os.fspath(ref)
        path = next((p for p in (resolve_matrix_ref(text, b) for b in self._bases) if p), None)
        if path is None:
            pytest.fail(missing_matrix_message(text), pytrace=False)
        stat = path.stat()
        try:
            return self._runs.cached(("matrix", str(path.resolve()), stat.st_mtime_ns, stat.st_size),
                                     lambda: load_matrix(path))
        except MatrixError as exc:
            problem = f"invalid matrix:\n{exc}"
        pytest.fail(problem, pytrace=False)  # outside the except: no chained traceback

    def target(self, ref: TargetRef | None = None) -> Target:
        """A loaded target: a Target as is, a preset, a target file or an inline command."""
        ref = self._runs.settings.default_target() if ref is None else ref
        if isinstance(ref, Target):
            return ref
        resolved = next((r for r in (resolve_target_ref(ref, b) for b in self._bases) if r != ref), ref)
        try:
            opts = self._runs.settings.target_options
            return self._runs.cached(("target", resolved), lambda: load_target(resolved, opts, strict=False))
        except TargetError as exc:
            problem = str(exc)
        pytest.fail(problem, pytrace=False)

    def _options(self, jobs: int | None, timeout: float | None, control: bool | None) -> RunOptions:
        base = self._runs.settings.run_options()
        return dataclasses.replace(base, jobs=jobs or base.jobs, timeout=_first(timeout, base.timeout),
                                   control=_first(control, base.control))

    def _require(self, target: Target) -> None:
        why = self._runs.unavailable(target)
        if why:
            message = f"target {target.name!r} is not available here: {why}"
            if self._runs.settings.strict():
                pytest.fail(message + " [--sandboxcheck-strict]", pytrace=False)
            pytest.skip(message)

    def run(self, matrix: MatrixRef, target: TargetRef | None = None, *, only: Iterable[str] | None = None,
            jobs: int | None = None, timeout: float | None = None,
            control: bool | None = None) -> RunReport:
        """Run the checks of ``matrix`` against ``target`` (default: the first configured
        target, else landlock), with the matrix's waivers applied.

        ``only`` keeps the checks whose id or category it names.
        """
        m, t = self.matrix(matrix), self.target(target)
        if only is not None:
            m = self._select(m, only)
        self._require(t)
        try:
            return self._runs.report(m, t, self._options(jobs, timeout, control))
        except RunError as exc:
            problem = str(exc)
        pytest.fail(problem, pytrace=False)

    @staticmethod
    def _select(m: Matrix, only: Iterable[str]) -> Matrix:
        wanted = [only] if isinstance(only, str) else list(only)
        known = {c.id for c in m.checks} | {c.category for c in m.checks}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            pytest.fail(f"matrix {m.name!r} has no check or category {unknown[0]!r}"
                        f"{_close(unknown[0], known)}", pytrace=False)
        return dataclasses.replace(m, checks=tuple(c for c in m.checks
                                                   if c.id in wanted or c.category in wanted))

    def check(self, check_id: str, target: TargetRef | None = None, matrix: MatrixRef = "baseline",
              *, timeout: float | None = None, control: bool | None = None) -> Result:
        """Run one check of ``matrix`` (default: the bundled baseline) against ``target``."""
        m, t = self.matrix(matrix), self.target(target)
        check = next((c for c in m.checks if c.id == check_id), None)
        if check is None:
            pytest.fail(f"matrix {m.name!r} has no check {check_id!r}"
                        f"{_close(check_id, (c.id for c in m.checks))}", pytrace=False)
        self._require(t)
        try:
            return self._runs.check(m, check, t, self._options(None, timeout, control))
        except RunError as exc:
            problem = str(exc)
        pytest.fail(problem, pytrace=False)

    @staticmethod
    def explain(result: Result) -> str:
        """One line for an assertion message: expected, observed, status and why."""
        return (f"{result.id}: expected {result.expect}, observed {result.observed.value} "
                f"({result.status.value}): {result.reason}")


def _close(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


MatrixRef = Matrix | str | os.PathLike[str]


TargetRef = Target | str
