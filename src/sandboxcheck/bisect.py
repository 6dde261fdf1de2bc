"""Find the release of a pinnable target where a check's verdict changed.

``sandboxcheck bisect MATRIX --target srt --old 0.0.50 --new 0.0.78`` lists
the releases between the two ends from the registry (semver order,
prereleases only when an end is one), runs the chosen checks against both
ends, then binary-searches for the adjacent pair of runnable releases where
the verdicts (observed, status) differ. A release that cannot run here (it
does not install, the target does not support it, or a chosen check comes
back inconclusive) is skipped like ``git bisect skip``: reported, never taken
for a change, and a neighbour is tried instead.

The search itself (``search``) knows nothing of npm or of running checks: it
takes the ordered releases and a function that evaluates one.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from .compare import Change, Comparison, diff_reports, results_by_id, side
from .compare import render as render_diff
from .targets.pinning import PinError, is_prerelease, registry_versions, version_key

#: Statuses of a tried release.
OLD, NEW, SKIPPED = "old", "new", "skipped"


class BisectError(Exception):
    """Bisect cannot start or cannot decide (bad input, an end that cannot run): exit 2."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What running the chosen checks against one release gave: a report, or why it was skipped."""

    version: str
    report: Mapping[str, Any] | None = None  # the canonical JSON report of the run
    skipped: str = ""  # why the release could not be judged here

    def verdicts(self) -> tuple[tuple[str, str, str], ...]:
        """(check id, observed, status) of every result: what bisect compares."""
        return tuple((cid, str(r.get("observed")), str(r.get("status")))
                     for cid, r in sorted(results_by_id(self.report or {}).items()))

    def summary(self) -> dict[str, Any]:
        """Counts by status and each check's ``STATUS observed`` (empty when skipped)."""
        results = results_by_id(self.report or {})
        counts: dict[str, int] = {}
        for r in results.values():
            counts[str(r.get("status"))] = counts.get(str(r.get("status")), 0) + 1
        return {"counts": counts,
                "checks": {cid: f"{str(r.get('status')).upper()} {r.get('observed')}" for cid, r in results.items()}}


@dataclass(frozen=True, slots=True)
class Tried:
    """One release bisect ran, in the order it ran."""

    version: str
    status: str  # old (verdicts as at the old end), new (they differ), skipped
    summary: Mapping[str, Any]
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {"version": self.version, "status": self.status, "summary": dict(self.summary),
                **({"reason": self.reason} if self.reason else {})}


@dataclass(frozen=True, slots=True)
class BisectResult:
    """The adjacent pair where the verdicts change, the diff there, and every release tried."""

    target: str
    matrix: str
    checks: tuple[str, ...]
    releases: tuple[str, ...]  # every release between the ends, in order
    old_side: Outcome
    new_side: Outcome
    changes: tuple[Change, ...]
    tried: tuple[Tried, ...]
    skipped_between: tuple[str, ...] = ()  # skipped releases between the pair: the change may be in any
    #: Where it ran (hostfacts.host_facts of every release that loaded), None when not recorded.
    host: Mapping[str, Any] | None = None
    #: Which part of the checks this bisect followed (shard.Shard.describe), None for all of them.
    shard: Mapping[str, Any] | None = None
    #: The digest of the matrix with the chosen checks (all shards of one bisect share it).
    matrix_digest: str | None = None

    @property
    def found(self) -> bool:
        """Whether the verdicts differ between the ends at all."""
        return any(c.moved for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (``schema_version`` 1)."""
        return {"schema_version": 1, "command": "bisect", "target": self.target, "matrix": self.matrix,
                **({"matrix_digest": self.matrix_digest} if self.matrix_digest else {}),
                **({"host": dict(self.host)} if self.host is not None else {}),
                **({"shard": dict(self.shard)} if self.shard is not None else {}),
                "checks": list(self.checks), "releases": list(self.releases),
                "old_side": {"version": self.old_side.version, "summary": self.old_side.summary()},
                "new_side": {"version": self.new_side.version, "summary": self.new_side.summary()},
                "skipped_between": list(self.skipped_between),
                "changes": [c.to_dict() for c in self.changes if c.moved],
                "tried": [t.to_dict() for t in self.tried]}


def releases_between(versions: Sequence[str], old: str, new: str) -> list[str]:
    """The releases from ``old`` to ``new`` (both included) in semver order.

    Prereleases (and npm's platform builds such as ``0.171.0-linux-x64``) are
    left out unless an end is one. BisectError when an end is not published.
    """
    for end in (old, new):
        if end not in versions:
            close = sorted(versions, key=lambda v: abs(_distance(v, end)))[:3]
            raise BisectError(f"{end} is not a published release" + (f" (near it: {', '.join(close)})" if close else ""))
    lo, hi = sorted((old, new), key=version_key)
    if version_key(old) > version_key(new):
        raise BisectError(f"--old {old} is newer than --new {new}: swap them")
    return [v for v in sorted(set(versions), key=version_key)
            if version_key(lo) <= version_key(v) <= version_key(hi) and (not is_prerelease(v) or v in (old, new))]


def _distance(v: str, end: str) -> float:
    a, b = version_key(v), version_key(end)
    if a[0] == -1 or b[0] == -1:
        return float("inf")
    return (a[0] - b[0]) * 1e6 + (a[1] - b[1]) * 1e3 + (a[2] - b[2])


def search(releases: Sequence[str], evaluate: Callable[[str], Outcome]) -> tuple[int, int, list[Tried],
                                                                                dict[int, Outcome]]:
    """Binary search over ``releases`` (old end first) for the adjacent runnable pair whose
    verdicts differ; returns (old index, new index, every release tried, outcomes by index).

    Skipped releases are never a side of the pair: the one nearest the middle
    that runs is tried instead. BisectError when an end cannot run.
    """
    tried: list[Tried] = []
    outcomes: dict[int, Outcome] = {}

    def run(i: int, base: tuple[Any, ...] | None) -> Outcome:
        out = evaluate(releases[i])
        outcomes[i] = out
        if out.skipped:
            tried.append(Tried(out.version, SKIPPED, {}, out.skipped))
        else:
            status = OLD if base is None or out.verdicts() == base else NEW
            tried.append(Tried(out.version, status, out.summary()))
        return out

    first = run(0, None)
    if first.skipped:
        raise BisectError(f"the old end {releases[0]} cannot be judged here: {first.skipped}")
    base = first.verdicts()
    if len(releases) == 1:
        return 0, 0, tried, outcomes
    last = run(len(releases) - 1, base)
    if last.skipped:
        raise BisectError(f"the new end {releases[-1]} cannot be judged here: {last.skipped}")
    lo, hi = 0, len(releases) - 1
    if last.verdicts() == base:
        return lo, hi, tried, outcomes
    while True:
        untested = [i for i in range(lo + 1, hi) if i not in outcomes]
        if not untested:
            return lo, hi, tried, outcomes
        mid = (lo + hi) // 2
        pick = min(untested, key=lambda i: (abs(i - mid), i))  # the middle, else its nearest neighbour
        out = run(pick, base)
        if out.skipped:
            continue
        if out.verdicts() == base:
            lo = pick
        else:
            hi = pick


def bisect(target: str, matrix_name: str, checks: Sequence[str], old: str, new: str,
           evaluate: Callable[[str], Outcome], versions: Sequence[str] | None = None,
           package: str = "") -> BisectResult:
    """Bisect ``target`` between releases ``old`` and ``new``; ``versions`` defaults to the registry's."""
    if versions is None:
        try:
            versions = registry_versions(package)
        except PinError as exc:
            raise BisectError(str(exc)) from None
    releases = releases_between(versions, old, new)
    lo, hi, tried, outcomes = search(releases, evaluate)
    old_side, new_side = outcomes[lo], outcomes[hi]
    changes = diff_reports(results_by_id(old_side.report or {}), results_by_id(new_side.report or {}))
    between = tuple(releases[i] for i in range(lo + 1, hi) if i in outcomes and outcomes[i].skipped)
    return BisectResult(target, matrix_name, tuple(checks), tuple(releases), old_side, new_side,
                        tuple(changes), tuple(tried), between)


def render(result: BisectResult, fmt: str, out: IO[str]) -> None:
    """Write a bisect result as a table (text) or json."""
    if fmt == "json":
        json.dump(result.to_dict(), out, indent=2)
        out.write("\n")
        return
    name = result.target
    out.write(f"sandboxcheck bisect {result.matrix}: {name} {result.releases[0]} .. {result.releases[-1]} "
              f"({len(result.releases)} releases, {len(result.tried)} tried)\n")
    if result.shard is not None:
        out.write(f"shard {result.shard.get('spec')}: {len(result.checks)} of {result.shard.get('matrix_checks')} "
                  "checks; the other parts may name another release (the earliest first changed one is the answer)\n")
    if not result.found:
        out.write(f"no change: the chosen checks give the same verdicts at {result.old_side.version} "
                  f"and {result.new_side.version}\n")
    else:
        out.write(f"last as before: {name}@{result.old_side.version}\n"
                  f"first changed:  {name}@{result.new_side.version}\n")
        if result.skipped_between:
            out.write(f"skipped in between (the change may be in any): {', '.join(result.skipped_between)}\n")
        before = side(result.old_side.report or {}, f"{name}@{result.old_side.version}")
        after = side(result.new_side.report or {}, f"{name}@{result.new_side.version}")
        render_diff(Comparison("bisect", before, after, result.changes), "table", out)
    out.write("tried:\n")
    for t in sorted(result.tried, key=lambda t: version_key(t.version)):
        cells = t.summary.get("checks", {})
        if t.status == SKIPPED:
            text = t.reason if len(t.reason) <= 110 else t.reason[:107] + "..."
        elif len(cells) <= 3:
            text = ", ".join(f"{cid} {cell}" for cid, cell in cells.items())
        else:
            text = ", ".join(f"{n} {status}" for status, n in sorted(t.summary.get("counts", {}).items()))
        out.write(f"  {t.version:<14} {t.status:<8} {text}\n")


def select_checks(matrix: Any, wanted: Sequence[str]) -> Any:
    """``matrix`` with only the checks ``wanted`` (all when empty); BisectError for an unknown id."""
    ids = [c.id for c in matrix.checks]
    for cid in wanted:
        if cid not in ids:
            close = difflib.get_close_matches(cid, ids, n=1)
            raise BisectError(f"--check {cid}: no such check in {matrix.name}"
                              + (f" (did you mean {close[0]!r}?)" if close else ""))
    if not wanted:
        return matrix
    return dataclasses.replace(matrix, checks=tuple(c for c in matrix.checks if c.id in set(wanted)))


def evaluator(name: str, matrix: Any, options: Mapping[str, str], run_options: Any,
              progress: Callable[[str], None] = lambda _line: None,
              loaded: list[Any] | None = None) -> Callable[[str], Outcome]:
    """A function that runs ``matrix`` against release VERSION of target ``name``.

    A release that does not install or start, or whose run leaves a check
    inconclusive, comes back skipped with the reason. Each release's target
    that loads is appended to ``loaded`` (for the host facts of the result).
    """
    from .run.schedule import run_matrix
    from .targets.base import TargetError
    from .targets.registry import load_target

    def evaluate(version: str) -> Outcome:
        progress(f"{name}@{version}: installing (cached after the first time)")
        try:
            target = load_target(f"{name}@{version}", options)
        except TargetError as exc:
            return Outcome(version, skipped=str(exc).splitlines()[0])
        if loaded is not None:
            loaded.append(target)
        why = target.unavailable()
        if why:
            return Outcome(version, skipped=f"not available here: {why}")
        progress(f"{name}@{version}: running {len(matrix.checks)} check(s)")
        report = run_matrix(matrix, target, run_options).to_dict()
        unsure = [r for r in report.get("results", []) if r.get("status") == "inconclusive"]
        if unsure:
            first = unsure[0]
            return Outcome(version, report,
                           skipped=f"inconclusive: {first.get('id')}: {str(first.get('reason') or '')[:200]}")
        return Outcome(version, report)

    return evaluate
