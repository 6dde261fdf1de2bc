"""Survey: one matrix against several targets, shown as a grid.

Checks run down, targets across; each cell is what the evidence outside
showed for that check through that target (``allowed``, ``denied`` or
``unknown``), marked and coloured by its status. A target that cannot run
here becomes a column of ``n/a`` with the reason in a note instead of
aborting the survey. The core (:func:`run_survey`) reuses
:func:`~sandboxcheck.run.schedule.run_matrix` with one shared
:class:`~sandboxcheck.run.harness.Harness`; the formatters below only render a
finished :class:`Survey`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import re
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from . import __version__
from .hostfacts import host_facts, host_line, matrix_digest
from .model import Check, Matrix, Result, Status
from .shard import Shard
from .run.harness import Harness
from .run.options import Progress, RunOptions
from .run.schedule import run_matrix
from .model import RunReport, status_exit
from .targets.command import CommandTarget
from .targets.base import Target, requirement_versions

SCHEMA_VERSION = 1
NA = "n/a"
#: One mark per status, so a grid reads the same without colour.
MARKS: dict[str, str] = {"pass": "✓", "fail": "✗", "inconclusive": "?", "skip": "-", NA: ""}
LEGEND = ("cell = what the evidence outside showed (allowed / denied / unknown); "
          "✓ pass (as expected), ✗ fail, ? inconclusive, - skipped, "
          "n/a target not available here (see notes)")
_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow", "skip": "dim", NA: "dim"}
_HTML_COLOURS = {"pass": ("#e6f4ea", "#137333"), "fail": ("#fce8e6", "#a50e0e"),
                 "inconclusive": ("#fef7e0", "#8a5a00"), "skip": ("#f1f3f4", "#5f6368"),
                 NA: ("#f1f3f4", "#80868b")}


@dataclass(frozen=True, slots=True)
class Column:
    """One target of a survey: its run report, or why it could not run here."""

    name: str
    ref: str
    description: str
    versions: tuple[str, ...]
    unavailable: str | None
    report: RunReport | None
    options: tuple[tuple[str, str], ...] = ()

    def result(self, check_id: str) -> Result | None:
        """The result of one check through this target (None when the target is unavailable)."""
        if self.report is None:
            return None
        return next((r for r in self.report.results if r.id == check_id), None)

    def summary(self) -> dict[str, int] | None:
        """Counts per status, or None when the target did not run."""
        return self.report.summary() if self.report is not None else None

    def isolation(self) -> str:
        """The preflight's view of this target in a few words."""
        pf = self.report.preflight if self.report is not None else None
        if pf is None:
            return NA
        if not pf.get("ran"):
            return "preflight did not run" + (f": {pf['reason']}" if pf.get("reason") else "")
        return "; ".join(pf.get("layers", [])) if pf.get("isolated") else "NO ISOLATION SEEN"

    def failed(self) -> str:
        """The number of failed checks as text (``n/a`` when the target did not run)."""
        s = self.summary()
        return NA if s is None else str(s["fail"])


@dataclass(slots=True)
class Survey:
    """The outcome of running one matrix against several targets."""

    matrix: Matrix
    columns: list[Column]
    started: str
    duration_s: float
    command: str | None = None
    host: dict[str, Any] = field(default_factory=dict)
    #: A shard's (target, check id) cells; None when the survey covers every cell.
    assigned: frozenset[tuple[str, str]] | None = None
    #: The report's ``shard`` entry (see shard.Shard.describe), None for a whole survey.
    shard: dict[str, Any] | None = None

    def covers(self, check: Check, column: Column) -> bool:
        """Whether this survey ran ``check`` through ``column`` (a shard runs only its cells)."""
        return self.assigned is None or (column.name, check.id) in self.assigned

    @property
    def checks(self) -> tuple[Check, ...]:
        """The matrix's checks, in matrix order (the grid's rows)."""
        return self.matrix.checks

    def status(self, check: Check, column: Column) -> str:
        """The cell's status: a Status value, or ``n/a``."""
        r = column.result(check.id)
        return NA if r is None else r.status.value

    def cell(self, check: Check, column: Column) -> str:
        """The cell's text: the observed value, ``skip`` or ``n/a``."""
        r = column.result(check.id)
        if r is None:
            return NA
        return "skip" if r.status is Status.SKIP else r.observed.value

    def marked(self, check: Check, column: Column) -> str:
        """The cell's text with its status mark in front (``✗ allowed``)."""
        text, mark = self.cell(check, column), MARKS.get(self.status(check, column), "")
        return f"{mark} {text}" if mark else text

    def exit_code(self) -> int:
        """0 every cell passed (or was skipped), 1 any cell failed, 3 otherwise (inconclusive or n/a).

        A deviation the matrix excuses (a waiver, an accepted baseline) counts
        as the run report counts it: not at all.
        """
        statuses: set[str] = set() if self.columns else {NA}
        for col in self.columns:
            for check in self.checks:
                if not self.covers(check, col):
                    continue
                r = col.result(check.id)
                if r is None:
                    statuses.add(NA)
                elif not getattr(r, "excused", False):
                    statuses.add(r.status.value)
        return status_exit(statuses, unsure=("inconclusive", NA))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready survey: targets with versions and summaries, then every cell per check."""
        return {
            "schema_version": SCHEMA_VERSION, "kind": "survey", "tool": "sandboxcheck",
            "version": __version__, "started": self.started,
            "duration_s": round(self.duration_s, 3), "command": self.command, "host": self.host,
            "matrix": {"name": self.matrix.name, "path": self.matrix.path,
                       "checks": len(self.matrix.checks), "digest": matrix_digest(self.matrix)},
            **({"shard": self.shard} if self.shard is not None else {}),
            "targets": [{"name": col.name, "ref": col.ref, "description": col.description,
                         "versions": list(col.versions), "available": col.unavailable is None,
                         "unavailable": col.unavailable, "options": dict(col.options),
                         "summary": col.summary(),
                         "preflight": col.report.preflight if col.report else None,
                         "command": (col.report.target.get("command") if col.report else None)}
                        for col in self.columns],
            "checks": [{"id": c.id, "category": c.category, "title": c.title, "expect": c.expect,
                        "severity": c.severity,
                        "cells": {col.name: _cell_dict(self, c, col) for col in self.columns
                                  if self.covers(c, col)}}
                       for c in self.checks],
            "exit_code": self.exit_code(),
        }


def _cell_dict(survey: Survey, check: Check, column: Column) -> dict[str, Any]:
    r = column.result(check.id)
    if r is None:
        return {"observed": NA, "status": NA, "errno": None, "reason": column.unavailable or "",
                "evidence": []}
    return {"observed": r.observed.value, "status": r.status.value, "errno": r.errno,
            "reason": r.reason, "evidence": list(r.evidence), "excused": r.excused}


#: Longest column name made from an inline command; the full command is in the targets table.
INLINE_NAME_MAX = 32


def column_name(ref: str, target: Target) -> str:
    """A column's name: the target's own ``name:``, or for an inline command the command itself.

    The command is shortened to its sandbox part (``{cmd}`` and a trailing
    ``--`` dropped) and to :data:`INLINE_NAME_MAX` characters.
    """
    if not (isinstance(target, CommandTarget) and target.name == "inline" and "{cmd" in ref):
        return target.name
    words = [w for w in ref.split() if "{cmd" not in w]
    while words and words[-1] == "--":
        words.pop()
    short = " ".join(words) or "inline"
    return short if len(short) <= INLINE_NAME_MAX else short[:INLINE_NAME_MAX - 1].rstrip() + "…"


def _unique(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


def load_targets(refs: Sequence[str], options: Mapping[str, str] | None = None
                 ) -> list[tuple[str, Target]]:
    """(ref, target) for each ref; each target gets the options it takes (``registry.load_targets``)."""
    from .targets.registry import load_targets as load

    return load(refs, options)


def run_survey(matrix: Matrix, targets: Sequence[tuple[str, Target]],
               options: RunOptions | None = None,
               progress: Callable[[str], Progress] | None = None,
               command: str | None = None, shard: Shard | None = None) -> Survey:
    """Run ``matrix`` against each target in turn (sharing one harness) and collect the grid.

    ``progress`` makes a Progress for each target's run (by name); an
    unavailable target is not run: its column holds the reason instead.
    With ``shard`` only that part's (target, check) cells run.
    """
    options = options or RunOptions()
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    t0 = time.monotonic()
    names = _unique([column_name(ref, t) for ref, t in targets])
    assigned = frozenset(shard.cells(matrix, names)) if shard else None
    columns: list[Column] = []
    with Harness(options) as harness:
        for name, (ref, target) in zip(names, targets):
            why = target.unavailable()
            opts: tuple[tuple[str, str], ...] = ()
            if isinstance(target, CommandTarget):  # only what the caller set: defaults are in the preset
                defaults = dict(target.spec.options)
                opts = tuple((k, v) for k, v in target.option_values().items() if defaults.get(k) != v)
            report = None
            part = matrix if assigned is None else dataclasses.replace(
                matrix, checks=tuple(c for c in matrix.checks if (name, c.id) in assigned))
            if why is None and part.checks:
                report = run_matrix(part, target, options,
                                    progress(name) if progress else None, harness=harness)
            inline = isinstance(target, CommandTarget) and target.name == "inline" and "{cmd" in ref
            columns.append(Column(name=name, ref=ref,
                                  description=f"inline command: {ref}" if inline else target.description,
                                  versions=tuple(requirement_versions(target)), unavailable=why,
                                  report=report, options=opts))
    return Survey(matrix=matrix, columns=columns, started=started,
                  duration_s=time.monotonic() - t0, command=command,
                  host=host_facts([t for _, t in targets]), assigned=assigned,
                  shard=shard.describe(matrix, len(assigned)) if shard and assigned is not None else None)


# -- formatters -----------------------------------------------------------

def _totals(col: Column) -> str:
    s = col.summary()
    if s is None:
        return NA
    parts = [f"{s['pass']} passed", f"{s['fail']} failed"]
    parts += [f"{s[k]} {k}" for k in ("inconclusive", "skip") if s[k]]
    return ", ".join(parts)


def _versions(col: Column) -> str:
    return ", ".join(col.versions) or "-"


def _notes(survey: Survey) -> list[str]:
    notes = [f"shard {survey.shard['spec']}: only this part's cells ran (the others show n/a); "
             "join the parts with 'sandboxcheck merge'"] if survey.shard else []
    notes += [f"{col.name}: not available here: {col.unavailable}"
              for col in survey.columns if col.unavailable]
    notes += [f"{col.name}: --target-opt {k}={v}" for col in survey.columns for k, v in col.options]
    notes += [f"{col.name}: the preflight saw no isolation at all" for col in survey.columns
              if col.isolation() == "NO ISOLATION SEEN" and col.name != "none"]
    return notes


def _title(survey: Survey) -> str:
    return (f"sandboxcheck survey: matrix {survey.matrix.name} ({len(survey.checks)} checks) "
            f"against {len(survey.columns)} targets")


def _generated(survey: Survey) -> str:
    h = survey.host
    where = f" on {h.get('system', '')} {h.get('kernel', '')} ({h.get('machine', '')})" if h else ""
    return (f"Generated {survey.started} by sandboxcheck {__version__}{where} "
            f"in {survey.duration_s:.0f}s.")


def _host(survey: Survey) -> str:
    """Where the survey was made and of which matrix, in one line (see :func:`hostfacts.host_line`)."""
    return host_line(survey.host, matrix_digest(survey.matrix))


def render_json(survey: Survey, out: IO[str]) -> None:
    """The canonical survey, with schema_version."""
    json.dump(survey.to_dict(), out, indent=2, ensure_ascii=False)
    out.write("\n")


def render_table(survey: Survey, out: IO[str], color: bool | None = None) -> None:
    """A terminal grid: checks down, targets across, cells coloured by status."""
    import os

    from rich.table import Table
    from rich.text import Text

    from .report.console import console_for

    console = console_for(out, color)  # NO_COLOR, FORCE_COLOR and COLUMNS as every rich program
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = max(160, 40 + 16 * len(survey.columns))
    console.print(f"[bold]{_title(survey)}[/]")
    console.print(_generated(survey))
    console.print(_host(survey), markup=False)
    if survey.command:
        console.print(f"command: {survey.command}", markup=False)
    targets = Table("target", "versions", "result", pad_edge=False)
    for col in survey.columns:
        targets.add_row(col.name, _versions(col), _totals(col))
    console.print(targets)
    grid = Table(pad_edge=False)
    grid.add_column("check", overflow="fold")
    grid.add_column("expect")
    for col in survey.columns:
        grid.add_column(col.name, overflow="fold")
    for check in survey.checks:
        grid.add_row(check.id, check.expect,
                     *(Text(survey.marked(check, col), style=_STYLE.get(survey.status(check, col), ""))
                       for col in survey.columns))
    grid.add_row(Text("failed", style="bold"), "",
                 *(col.failed() for col in survey.columns))
    console.print(grid)
    console.print(LEGEND)
    for i, note in enumerate(_notes(survey), 1):
        console.print(f"[{i}] {note}", markup=False)



def render_markdown(survey: Survey, out: IO[str]) -> None:
    """A Markdown page: date, tool versions and command on top, then the grid and notes."""
    from .report.console import md_cell as _md  # here: rich loads only for the formats that use it
    from .report.text import md_code, md_text

    w = out.write
    w(f"# sandboxcheck survey: {survey.matrix.name}\n\n")
    w(f"{_generated(survey)}\n\n{md_text(_host(survey))}\n\n")
    if survey.command:
        fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", survey.command)), default=0))
        w(f"Made with:\n\n{fence}sh\n{survey.command}\n{fence}\n\n")
    w("| target | versions | result | preflight (isolation seen) |\n|---|---|---|---|\n")
    for col in survey.columns:
        w(f"| {md_code(col.name)} | {_md(_versions(col))} | {_md(_totals(col))} | {_md(col.isolation())} |\n")
    w(f"\n{LEGEND}\n\n")
    w("| check | expect | " + " | ".join(md_code(c.name) for c in survey.columns) + " |\n")
    w("|---|---|" + "---|" * len(survey.columns) + "\n")
    for check in survey.checks:
        cells = [_md(survey.marked(check, col)) for col in survey.columns]
        w(f"| `{check.id}` | {check.expect} | " + " | ".join(cells) + " |\n")
    w("| **failed** | | " + " | ".join(f"**{col.failed()}**" for col in survey.columns) + " |\n")
    notes = _notes(survey)
    if notes:
        w("\nNotes:\n\n" + "".join(f"{i}. {_md(n)}\n" for i, n in enumerate(notes, 1)))
    w("\nTargets:\n\n" + "".join(f"- {md_code(col.name)}: {_md(col.description or col.ref)}\n"
                                  for col in survey.columns))


_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #202124; }
code, pre { font-family: ui-monospace, monospace; }
pre { background: #f1f3f4; padding: .6em; white-space: pre-wrap; word-break: break-all; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #dadce0; padding: .2em .5em; text-align: left; vertical-align: top; }
th { background: #f8f9fa; position: sticky; top: 0; }
td.cell { min-width: 8em; max-width: 26em; }
.verdict { font-weight: 600; white-space: nowrap; }
.why, .ev { font-size: 12px; overflow-wrap: anywhere; }
.ev { font-family: ui-monospace, monospace; opacity: .85; }
tr.preflight td, tr.preflight th { background: #f8f9fa; font-size: 12px; }
td.command { font-family: ui-monospace, monospace; font-size: 12px; overflow-wrap: anywhere; max-width: 40em; }
""" + "".join(f"td.{k.replace('/', '')} {{ background: {bg}; color: {fg}; }}\n"
              for k, (bg, fg) in _HTML_COLOURS.items())


def _command(col: Column) -> str:
    """The command a column ran: the inline command as given, else the expanded template."""
    if col.description.startswith("inline command: "):
        return col.ref
    command = col.report.target.get("command") if col.report is not None else None
    if isinstance(command, (list, tuple)):
        return shlex.join(str(a) for a in command)
    return str(command or "")


def _html_cell(survey: Survey, check: Check, column: Column) -> str:
    """One grid cell: the verdict, then the reason and the evidence as visible lines."""
    e = html.escape
    status = survey.status(check, column)
    r = column.result(check.id)
    parts = [f"<div class=\"verdict\">{e(survey.marked(check, column))}</div>"]
    if r is not None and r.status is not Status.SKIP:
        if r.reason:
            parts.append(f"<div class=\"why\">{e(r.reason)}</div>")
        parts += [f"<div class=\"ev\">{e(ev)}</div>" for ev in r.evidence if ev not in r.reason]
    tip = r.reason if r is not None else (column.unavailable or "")
    return f"<td class=\"cell {status.replace('/', '')}\" title=\"{e(tip)}\">{''.join(parts)}</td>"


def render_html(survey: Survey, out: IO[str]) -> None:
    """One self-contained page (inline CSS, no scripts, no external assets).

    Every cell shows its verdict, reason and evidence as text; a preflight row
    says what isolation each target showed before the checks ran.
    """
    e = html.escape
    w = out.write
    w("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
    w(f"<title>{e(_title(survey))}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n")
    w(f"<h1>sandboxcheck survey: {e(survey.matrix.name)}</h1>\n<p>{e(_generated(survey))}</p>\n"
      f"<p class=\"host\">{e(_host(survey))}</p>\n")
    if survey.command:
        w(f"<p>Made with:</p>\n<pre>{e(survey.command)}</pre>\n")
    w("<table class=\"targets\">\n<tr><th>target</th><th>command</th><th>versions</th><th>result</th>"
      "<th>preflight (isolation seen)</th></tr>\n")
    for col in survey.columns:
        w(f"<tr><td><code>{e(col.name)}</code></td><td class=\"command\">{e(_command(col))}</td>"
          f"<td>{e(_versions(col))}</td><td>{e(_totals(col))}</td><td>{e(col.isolation())}</td></tr>\n")
    w(f"</table>\n<p>{e(LEGEND)}</p>\n<table class=\"grid\">\n<tr><th>check</th><th>expect</th>")
    w("".join(f"<th title=\"{e(c.ref)}\">{e(c.name)}</th>" for c in survey.columns) + "</tr>\n")
    w("<tr class=\"preflight\"><th>preflight</th><td>isolated</td>"
      + "".join(f"<td>{e(col.isolation())}</td>" for col in survey.columns) + "</tr>\n")
    for check in survey.checks:
        w(f"<tr><td title=\"{e(check.title)}\"><code>{e(check.id)}</code>"
          f"<div class=\"why\">{e(check.title)}</div></td><td>{e(check.expect)}</td>")
        w("".join(_html_cell(survey, check, col) for col in survey.columns) + "</tr>\n")
    w("<tr><th>failed</th><th></th>" + "".join(f"<th>{col.failed()}</th>" for col in survey.columns)
      + "</tr>\n</table>\n")
    notes = _notes(survey)
    if notes:
        w("<p>Notes:</p>\n<ol>\n" + "".join(f"<li>{e(n)}</li>\n" for n in notes) + "</ol>\n")
    w("<p>Targets:</p>\n<ul>\n" + "".join(
        f"<li><code>{e(col.name)}</code>: {e(col.description or col.ref)}</li>\n"
        for col in survey.columns) + "</ul>\n")
    w("</body>\n</html>\n")
