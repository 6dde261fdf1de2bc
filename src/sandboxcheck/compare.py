"""Before/after comparison of two canonical JSON reports (for example around a vendor patch)."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from .policy import BaselineError, load_baseline

#: Every kind of change, in the order reports list them.
KINDS: tuple[str, ...] = ("loosened", "now-inconclusive", "now-skipped", "failure-mode-changed",
                          "tightened", "now-conclusive", "new", "removed", "unchanged")
#: What makes ``diff`` exit 1 unless --fail-on says otherwise.
DEFAULT_FAIL_ON: tuple[str, ...] = ("loosened", "now-inconclusive")


@dataclass(frozen=True, slots=True)
class Change:
    """How one check moved between two reports."""

    id: str
    kind: str
    before: str | None  # observed before (allowed/denied/unknown), None when absent
    after: str | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {"id": self.id, "change": self.kind, "before": self.before, "after": self.after,
                "detail": self.detail}


def _mode(r: Mapping[str, Any]) -> str:
    bits = [r.get("errno") or "no errno", r.get("layer") or ""]
    return " ".join(b for b in bits if b)


def classify(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> Change:
    """The change of one check between two result entries of canonical reports."""
    if before is None and after is None:
        raise ValueError("nothing to compare")
    if before is None:
        assert after is not None
        return Change(after["id"], "new", None, after.get("observed"), f"new check, observed {after.get('observed')}")
    if after is None:
        return Change(before["id"], "removed", before.get("observed"), None, "check no longer in the matrix")
    b, a = before.get("observed"), after.get("observed")
    cid = after["id"]
    if after.get("status") == "skip" and before.get("status") != "skip":
        return Change(cid, "now-skipped", b, a, after.get("reason", ""))
    if a == "allowed" and b != "allowed":
        # An effect seen outside where none was proven before is a loosening,
        # whatever the earlier state (denied, skipped or inconclusive).
        return Change(cid, "loosened", b, a, "; ".join(after.get("evidence") or []) or after.get("reason", ""))
    if after.get("status") == "inconclusive" and before.get("status") != "inconclusive":
        return Change(cid, "now-inconclusive", b, a, after.get("reason", ""))
    if before.get("status") == "inconclusive" and after.get("status") != "inconclusive":
        return Change(cid, "now-conclusive", b, a, f"now {a}: {after.get('reason', '')}")
    if b == "allowed" and a == "denied":
        return Change(cid, "tightened", b, a, f"now denied: {after.get('reason', '')}")
    if b == "denied" and a == "allowed":
        return Change(cid, "loosened", b, a, "; ".join(after.get("evidence") or []) or after.get("reason", ""))
    if b == a == "denied" and (before.get("errno"), before.get("layer")) != (after.get("errno"), after.get("layer")):
        return Change(cid, "failure-mode-changed", b, a, f"{_mode(before)} -> {_mode(after)}")
    if b == a == "allowed" and sorted(before.get("evidence") or []) != sorted(after.get("evidence") or []):
        return Change(cid, "failure-mode-changed", b, a,
                      f"other evidence: {'; '.join(after.get('evidence') or [])}")
    return Change(cid, "unchanged", b, a, "")


def diff_reports(before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]
                 ) -> list[Change]:
    """Changes between two reports' results keyed by check id (after's order, removed last)."""
    changes = [classify(before.get(cid), r) for cid, r in after.items()]
    changes += [classify(r, None) for cid, r in before.items() if cid not in after]
    return changes


def results_by_id(report: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """A canonical report's results keyed by check id."""
    return {r["id"]: r for r in report.get("results", [])}


def load_results(path: str | Path) -> dict[str, Mapping[str, Any]]:
    """A JSON report file's results keyed by id (raises BaselineError on a bad file)."""
    return load_baseline(path)


def exit_code(changes: list[Change], fail_on: tuple[str, ...] = DEFAULT_FAIL_ON) -> int:
    """1 when any change is of a kind in ``fail_on``, else 0."""
    return 1 if any(c.kind in fail_on for c in changes) else 0


def counts(changes: list[Change]) -> dict[str, int]:
    """Number of changes of each kind."""
    return {k: sum(c.kind == k for c in changes) for k in KINDS}


def render(changes: list[Change], fmt: str, out: IO[str], before: str, after: str,
           show_unchanged: bool = False) -> None:
    """Write the changes as a table, json or markdown."""
    shown = sorted((c for c in changes if show_unchanged or c.kind != "unchanged"),
                   key=lambda c: KINDS.index(c.kind))
    n = counts(changes)
    summary = ", ".join(f"{v} {k}" for k, v in n.items() if v)
    if fmt == "json":
        json.dump({"schema_version": 1, "before": before, "after": after, "summary": n,
                   "changes": [c.to_dict() for c in changes]}, out, indent=2)
        out.write("\n")
        return
    if fmt == "markdown":
        out.write(f"## sandboxcheck diff: `{before}` -> `{after}`\n\n{summary}\n\n")
        if shown:
            out.write("| change | check | before | after | detail |\n|---|---|---|---|---|\n")
            for c in shown:
                detail = c.detail.replace("|", "\\|").replace("\n", " ")
                out.write(f"| {c.kind} | `{c.id}` | {c.before or '-'} | {c.after or '-'} | {detail} |\n")
        return
    from rich.console import Console
    from rich.table import Table

    style = {"loosened": "bold red", "now-inconclusive": "yellow", "tightened": "green",
             "failure-mode-changed": "cyan", "new": "blue", "removed": "magenta"}
    console = Console(file=out)
    if not console.is_terminal:
        console.width = 160
    console.print(f"[bold]sandboxcheck diff[/] {before} -> {after}")
    table = Table("change", "check", "before", "after", "detail")
    for c in shown:
        table.add_row(f"[{style.get(c.kind, '')}]{c.kind}[/]", c.id, c.before or "-", c.after or "-", c.detail)
    if shown:
        console.print(table)
    console.print(summary or "no checks")


__all__ = ["BaselineError", "Change", "DEFAULT_FAIL_ON", "KINDS", "classify", "counts", "diff_reports",
           "exit_code", "load_results", "render", "results_by_id"]
