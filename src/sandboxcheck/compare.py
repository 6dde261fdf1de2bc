"""Before/after comparison of two canonical JSON reports (for example around a vendor patch).

Every check gets a **verdict** from its *status* (what the gate keys on):
``regression`` when the status got worse (pass -> inconclusive -> fail, or a
check absent or skipped before that now fails or is inconclusive),
``improvement`` when it became ``pass`` from fail or inconclusive, and
``unchanged`` otherwise. Its **kind** (loosened, tightened, ...) says how the
*observation* moved, as extra information: a check that expects ``allowed``
and went denied -> allowed is loosened *and* an improvement.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# The CLI imports this module at start-up for its vocabulary (--fail-on): what reads and
# writes report files (json, policy, safeyaml: yaml) is imported where it is used.

#: Every kind of observed change, in the order reports list them.
KINDS: tuple[str, ...] = ("loosened", "now-inconclusive", "now-skipped", "failure-mode-changed",
                          "tightened", "now-conclusive", "new", "removed", "unchanged")
#: Status verdicts, worst first.
VERDICTS: tuple[str, ...] = ("regression", "improvement", "unchanged")
#: What ``--fail-on`` accepts: a verdict, or a kind (keyed on the observation, to be stricter).
FAIL_ON_WORDS: tuple[str, ...] = ("regression", "improvement", *KINDS)
#: What makes ``diff`` and ``compare`` exit 1 unless --fail-on says otherwise.
DEFAULT_FAIL_ON: tuple[str, ...] = ("regression",)

#: How bad a status is; skip (and a check absent from a report) proves nothing either way.
_RANK = {"pass": 0, "inconclusive": 1, "fail": 2}


@dataclass(frozen=True, slots=True)
class Change:
    """How one check moved between two reports."""

    id: str
    kind: str
    before: str | None  # observed before (allowed/denied/unknown), None when absent
    after: str | None
    detail: str
    verdict: str = "unchanged"
    before_status: str | None = None  # pass/fail/inconclusive/skip, None when absent
    after_status: str | None = None
    expect: str | None = None
    severity: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {"id": self.id, "verdict": self.verdict, "change": self.kind, "expect": self.expect,
                "severity": self.severity, "before_status": self.before_status,
                "after_status": self.after_status, "before": self.before, "after": self.after,
                "detail": self.detail}

    @property
    def moved(self) -> bool:
        """The status or the observation changed (what a report lists by default)."""
        return self.kind != "unchanged" or self.verdict != "unchanged"


def verdict(before_status: str | None, after_status: str | None) -> str:
    """``regression``, ``improvement`` or ``unchanged`` for a check's status before and after."""
    b, a = _RANK.get(before_status or ""), _RANK.get(after_status or "")
    if a is None:
        return "unchanged"  # skipped or removed now: its kind (now-skipped, removed) says so
    if b is None:
        return "regression" if a > 0 else "unchanged"
    if a > b:
        return "regression"
    # fail -> inconclusive is not better: the leak is no longer shown, but nothing is proven.
    return "improvement" if a == 0 and b > 0 else "unchanged"


def _mode(r: Mapping[str, Any]) -> str:
    bits = [r.get("errno") or "no errno", r.get("layer") or ""]
    return " ".join(b for b in bits if b)


def _observed_kind(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
                   ) -> tuple[str, str]:
    """(kind, detail) of how the observation moved."""
    if before is None:
        assert after is not None
        return "new", f"new check, observed {after.get('observed')}"
    if after is None:
        return "removed", "check no longer in the matrix"
    b, a = before.get("observed"), after.get("observed")
    evidence = "; ".join(after.get("evidence") or []) or after.get("reason", "")
    if after.get("status") == "skip" and before.get("status") != "skip":
        return "now-skipped", after.get("reason", "")
    if a == "allowed" and b != "allowed":
        # An effect seen outside where none was proven before, whatever the earlier
        # state (denied, skipped or inconclusive).
        return "loosened", evidence
    if after.get("status") == "inconclusive" and before.get("status") != "inconclusive":
        return "now-inconclusive", after.get("reason", "")
    if before.get("status") == "inconclusive" and after.get("status") != "inconclusive":
        return "now-conclusive", f"now {a}: {after.get('reason', '')}"
    if b == "allowed" and a == "denied":
        return "tightened", f"now denied: {after.get('reason', '')}"
    if b == a == "denied" and (before.get("errno"), before.get("layer")) != (after.get("errno"), after.get("layer")):
        return "failure-mode-changed", f"{_mode(before)} -> {_mode(after)}"
    if b == a == "allowed" and sorted(before.get("evidence") or []) != sorted(after.get("evidence") or []):
        return "failure-mode-changed", f"other evidence: {'; '.join(after.get('evidence') or [])}"
    return "unchanged", ""


def classify(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> Change:
    """The change of one check between two result entries of canonical reports."""
    if before is None and after is None:
        raise ValueError("nothing to compare")
    kind, detail = _observed_kind(before, after)
    b_status = before.get("status") if before else None
    a_status = after.get("status") if after else None
    v = verdict(b_status, a_status)
    if v == "unchanged" and b_status != a_status and kind == "unchanged":
        detail = f"status {b_status} -> {a_status}"
    latest = after if after is not None else before
    assert latest is not None
    return Change(latest["id"], kind, before.get("observed") if before else None,
                  after.get("observed") if after else None, detail, v, b_status, a_status,
                  latest.get("expect"), latest.get("severity"))


def diff_reports(before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]
                 ) -> list[Change]:
    """Changes between two reports' results keyed by check id (after's order, removed last)."""
    changes = [classify(before.get(cid), r) for cid, r in after.items()]
    changes += [classify(r, None) for cid, r in before.items() if cid not in after]
    return changes


def results_by_id(report: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A canonical report's results keyed by check id."""
    results = report.get("results")
    return {r["id"]: r for r in results if isinstance(r, dict) and "id" in r} if isinstance(results, list) else {}


def load_results(path: str | Path) -> dict[str, Mapping[str, Any]]:
    """A JSON report file's results keyed by id (raises BaselineError on a bad file)."""
    from .policy import load_baseline

    return load_baseline(path)


def load_report(path: str | Path) -> dict[str, Any]:
    """A whole canonical JSON report (raises BaselineError on a bad file, as ``load_results``)."""
    # policy.load_baseline is the one place that says what is wrong with a report file;
    # it keeps only the results, so the file is read again for the matrix and target.
    import json

    from .policy import REPORT_MAX_BYTES, BaselineError
    from .safeyaml import InputError, read_text

    load_results(path)
    try:
        data = json.loads(read_text(path, "JSON report", limit=REPORT_MAX_BYTES))
    except (InputError, ValueError, RecursionError) as exc:  # the file changed in between
        raise BaselineError(f"{path}: not a JSON report: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise BaselineError(f"{path}: not a sandboxcheck JSON report (no 'results')")
    return data


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a comparison: where its results came from and what produced them."""

    label: str  # the report file (diff) or the target reference (compare)
    target: str | None = None
    version: str | None = None  # a pinned release, or the target's main tool with its version
    matrix: str | None = None
    check_ids: tuple[str, ...] = ()

    def title(self) -> str:
        """Target and version for a header, then the file it came from when that differs."""
        name = self.target or self.label
        text = name + (f" ({self.version})" if self.version and self.version not in name else "")
        return text if self.label in (name, self.target) else f"{text} [{self.label}]"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {"label": self.label, "target": self.target, "version": self.version, "matrix": self.matrix}


def target_version(target: Mapping[str, Any]) -> str | None:
    """The version a report's ``target`` entry carries: ``version``, ``versions[0]`` or ``name@version``."""
    version = target.get("version")
    if isinstance(version, str) and version:
        return version
    versions = target.get("versions")
    if isinstance(versions, list) and versions and isinstance(versions[0], str):
        return versions[0]
    name = target.get("name")
    if isinstance(name, str) and "@" in name.strip("@"):
        return name.rpartition("@")[2]
    return None


def versions_of(target: Any) -> dict[str, Any]:
    """What to add to a report's ``target`` entry about versions: a pinned ``version``, or the
    ``versions`` of the tools it requires (``["srt 0.0.78", "bwrap 0.8.0"]``); empty when unknown."""
    from .targets.base import requirement_versions

    pinned = getattr(getattr(target, "spec", None), "version", None)
    if isinstance(pinned, str) and pinned:
        return {"version": pinned}
    found = requirement_versions(target)
    return {"versions": found} if found else {}


def side(report: Mapping[str, Any], label: str) -> Side:
    """The Side of a canonical report."""
    target = report.get("target") if isinstance(report.get("target"), dict) else {}
    matrix = report.get("matrix") if isinstance(report.get("matrix"), dict) else {}
    name = target.get("name")
    mname = matrix.get("name")
    return Side(label, name if isinstance(name, str) else None, target_version(target),
                mname if isinstance(mname, str) else None, tuple(results_by_id(report)))


def matrix_mismatch(before: Side, after: Side) -> str | None:
    """Why two reports do not come from the same matrix (None when they do).

    The after side may add checks (a matrix that grew); a different matrix
    name, or checks of before missing in after, is another matrix.
    """
    reasons = []
    if before.matrix and after.matrix and before.matrix != after.matrix:
        reasons.append(f"matrix {before.matrix!r} -> {after.matrix!r}")
    missing = [cid for cid in before.check_ids if cid not in set(after.check_ids)]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        reasons.append(f"{before.label} has {_plural(len(missing), 'check')} that {after.label} lacks ({shown})")
    return "; ".join(reasons) or None


@dataclass(frozen=True, slots=True)
class Comparison:
    """Every check's change between two sides, and what the sides were."""

    command: str  # "compare" or "diff"
    before: Side
    after: Side
    changes: tuple[Change, ...]
    note: str | None = None  # e.g. the matrices differ (--allow-different-matrices)

    def exit_code(self, fail_on: Sequence[str] = DEFAULT_FAIL_ON) -> int:
        """1 when any change's verdict or kind is in ``fail_on``, else 0."""
        return exit_code(list(self.changes), fail_on)


def exit_code(changes: Sequence[Change], fail_on: Sequence[str] = DEFAULT_FAIL_ON) -> int:
    """1 when any change's verdict or kind is in ``fail_on``, else 0."""
    wanted = set(fail_on)
    return 1 if any(c.kind in wanted or (c.verdict != "unchanged" and c.verdict in wanted)
                    for c in changes) else 0


def counts(changes: Sequence[Change]) -> dict[str, int]:
    """Number of changes of each kind."""
    return {k: sum(c.kind == k for c in changes) for k in KINDS}


def verdict_counts(changes: Sequence[Change]) -> dict[str, int]:
    """Number of checks of each verdict."""
    return {v: sum(c.verdict == v for c in changes) for v in VERDICTS}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 or word == "unchanged" else f"{n} {word}s"


def summary_line(changes: Sequence[Change]) -> str:
    """``1 regression, 2 improvements, 37 unchanged (observed: 3 loosened, 37 unchanged)``."""
    verdicts = ", ".join(_plural(n, v) for v, n in verdict_counts(changes).items() if n)
    kinds = ", ".join(f"{n} {k}" for k, n in counts(changes).items() if n)
    return f"{verdicts} (observed: {kinds})" if changes else "no checks"


def _status_cell(status: str | None, observed: str | None) -> str:
    return f"{status.upper()} {observed}" if status else "-"


def _order(c: Change) -> tuple[int, int, int, str]:
    """Regressions first, the most severe first within a verdict."""
    from .model import SEVERITIES

    severity = SEVERITIES.index(c.severity) if c.severity in SEVERITIES else -1
    return VERDICTS.index(c.verdict), -severity, KINDS.index(c.kind), c.id


_COLUMNS = ("verdict", "check", "expect", "before", "after", "severity", "change", "detail")


def _row(c: Change) -> tuple[str, ...]:
    return (c.verdict, c.id, c.expect or "-", _status_cell(c.before_status, c.before),
            _status_cell(c.after_status, c.after), c.severity or "-", c.kind, c.detail)


def render(comparison: Comparison, fmt: str, out: IO[str], show_unchanged: bool = False) -> None:
    """Write a comparison as a table, json or markdown."""
    changes = list(comparison.changes)
    shown = sorted((c for c in changes if show_unchanged or c.moved), key=_order)
    before, after = comparison.before, comparison.after
    if fmt == "json":
        import json

        json.dump({"schema_version": 1, "command": comparison.command,
                   "matrix": after.matrix or before.matrix, "before": before.label, "after": after.label,
                   "before_target": before.to_dict(), "after_target": after.to_dict(),
                   **({"note": comparison.note} if comparison.note else {}),
                   "verdicts": verdict_counts(changes), "summary": counts(changes),
                   "changes": [c.to_dict() for c in changes]}, out, indent=2)
        out.write("\n")
        return
    matrix = after.matrix or before.matrix
    head = f"sandboxcheck {comparison.command}" + (f" {matrix}" if matrix else "")
    if fmt == "markdown":
        from .report.console import md_cell
        from .report.text import md_code

        out.write(f"## {md_cell(head)}: {md_code(before.title())} -> {md_code(after.title())}\n\n")
        if comparison.note:
            out.write(f"**Warning:** {md_cell(comparison.note)}\n\n")
        out.write(f"{summary_line(changes)}\n\n")
        if shown:
            out.write("| " + " | ".join(_COLUMNS) + " |\n|" + "---|" * len(_COLUMNS) + "\n")
            for c in shown:
                row = _row(c)
                cells = [md_cell(cell) for cell in row]
                cells[1] = md_code(row[1])
                out.write("| " + " | ".join(cells) + " |\n")
        return
    from rich.markup import escape

    from .report.console import Columns, console_for, cut, labelled

    style = {"regression": "bold red", "improvement": "green"}
    console = console_for(out)
    console.print(f"[bold]{escape(head)}[/]: {escape(before.title())} -> {escape(after.title())}")
    if comparison.note:
        console.print(f"[bold yellow]warning:[/] {escape(comparison.note)}")
    if shown:  # one line per check, check ids never cut: the detail is cut to what room is left
        rows = [_row(c) for c in shown]
        layout = Columns(_COLUMNS[:-1], [row[:-1] for row in rows], console.width)
        console.print(layout.line(_COLUMNS[:-1], _COLUMNS[-1], bold=True), no_wrap=True, overflow="ignore",
                      crop=False)
        for c, row in zip(shown, rows):
            console.print(layout.line(row[:-1], cut(row[-1], layout.room) if layout.room else "",
                                      {0: style.get(c.verdict, "")}), no_wrap=True, overflow="ignore", crop=False)
            if not layout.room:  # too narrow for the detail beside the columns: it goes below them
                console.print(labelled("detail", row[-1], console.width, indent="    "), no_wrap=True,
                              overflow="ignore", crop=False, markup=False, highlight=False)
    console.print(escape(summary_line(changes)))


__all__ = ["Change", "Comparison", "DEFAULT_FAIL_ON", "FAIL_ON_WORDS", "KINDS", "Side",
           "VERDICTS", "classify", "counts", "diff_reports", "exit_code", "load_report", "load_results",
           "matrix_mismatch", "render", "results_by_id", "side", "summary_line", "target_version", "verdict",
           "verdict_counts", "versions_of"]
