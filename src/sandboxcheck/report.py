"""Report formatters: a registry, JSON canonical; rich stays in this layer."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .model import CATEGORIES
from .runner import RunReport

STATUS_STYLE = {"pass": "green", "fail": "bold red", "inconclusive": "yellow", "skip": "dim"}


def render_json(report: RunReport, out: IO[str]) -> None:
    """The canonical report, with schema_version."""
    json.dump(report.to_dict(), out, indent=2)
    out.write("\n")


def render_table(report: RunReport, out: IO[str], color: bool | None = None) -> None:
    """A table grouped by category, then a summary line."""
    console = Console(file=out, force_terminal=color, no_color=color is False, soft_wrap=False)
    if not console.is_terminal:
        console.width = 160
    t = report.target
    console.print(f"[bold]sandboxcheck[/] matrix [bold]{report.matrix.name}[/] "
                  f"({len(report.results)} checks) against target [bold]{t.get('name')}[/]")
    if t.get("unavailable"):
        console.print(f"[bold red]target unavailable:[/] {t['unavailable']}")
    order = {c: i for i, c in enumerate(CATEGORIES)}
    table = Table(show_lines=False, expand=False, pad_edge=False)
    for col in ("check", "expect", "observed", "status", "evidence / reason"):
        table.add_column(col, overflow="fold")
    cats = sorted({r.category for r in report.results}, key=lambda c: order.get(c, 99))
    for cat in cats:
        table.add_row(Text(cat, style="bold cyan"), "", "", "", "")
        for r in (r for r in report.results if r.category == cat):
            table.add_row("  " + r.id, r.expect, r.observed.value,
                          Text(r.status.value.upper(), style=STATUS_STYLE[r.status.value]),
                          r.reason)
    console.print(table)
    s = report.summary()
    console.print(f"{s['pass']} passed, {s['fail']} failed, {s['inconclusive']} inconclusive, "
                  f"{s['skip']} skipped in {report.duration_s:.1f}s")
    if report.kept:
        console.print(f"kept {len(report.kept)} workspace(s) under {report.kept[0].rsplit('/', 1)[0]}")


FORMATTERS: dict[str, Callable[..., None]] = {"table": render_table, "json": render_json}
