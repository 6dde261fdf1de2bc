"""Report formatters: a registry, JSON canonical; rich stays in this layer."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import IO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import __version__
from .model import CATEGORIES, Result, Status
from .runner import RunReport
from .sarif import render_sarif

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
    pf = report.preflight
    if pf is not None:
        if not pf.get("ran"):
            console.print(f"[yellow]preflight could not run:[/] {pf.get('reason')}")
        elif not pf.get("isolated"):
            console.print("[bold red]WARNING: NO ISOLATION DETECTED[/]: the target ran the preflight probe "
                          "like an unsandboxed process (same namespaces, no seccomp, no NoNewPrivs, "
                          "same capabilities, host processes visible)")
        else:
            console.print("preflight: " + "; ".join(pf.get("layers", [])))
    order = {c: i for i, c in enumerate(CATEGORIES)}
    table = Table(show_lines=False, expand=False, pad_edge=False)
    for col in ("check", "expect", "observed", "status", "evidence / reason"):
        table.add_column(col, overflow="fold")
    cats = sorted({r.category for r in report.results}, key=lambda c: order.get(c, 99))
    for cat in cats:
        table.add_row(Text(cat, style="bold cyan"), "", "", "", "")
        for r in (r for r in report.results if r.category == cat):
            label = r.status.value.upper() + (" (waived)" if r.waived else " (accepted)" if r.accepted else "")
            table.add_row("  " + r.id, r.expect, r.observed.value,
                          Text(label, style="dim" if r.excused else STATUS_STYLE[r.status.value]),
                          _result_line(r))
    console.print(table)
    s = report.summary()
    excused = f" ({s['waived']} waived, {s['accepted']} accepted)" if s["waived"] or s["accepted"] else ""
    console.print(f"{s['pass']} passed, {s['fail']} failed, {s['inconclusive']} inconclusive, "
                  f"{s['skip']} skipped{excused} in {report.duration_s:.1f}s")
    if report.kept:
        console.print(f"kept {len(report.kept)} workspace(s) under {report.kept[0].rsplit('/', 1)[0]}")


def _result_line(r: Result) -> str:
    extra = f" ({r.waived})" if r.waived else " (accepted in the baseline)" if r.accepted else ""
    return r.reason + extra


def render_junit(report: RunReport, out: IO[str]) -> None:
    """JUnit XML: one testsuite per category, one testcase per check."""
    root = ET.Element("testsuites", name=f"sandboxcheck {report.matrix.name}",
                      tests=str(len(report.results)), time=f"{report.duration_s:.3f}")
    target = report.target.get("name", "")
    order = {c: i for i, c in enumerate(CATEGORIES)}
    for cat in sorted({r.category for r in report.results}, key=lambda c: order.get(c, 99)):
        rs = [r for r in report.results if r.category == cat]
        suite = ET.SubElement(root, "testsuite", name=f"{report.matrix.name}.{cat}[{target}]",
                              tests=str(len(rs)),
                              failures=str(sum(r.status is Status.FAIL and not r.excused for r in rs)),
                              skipped=str(sum(r.status in (Status.SKIP, Status.INCONCLUSIVE) or r.excused
                                              for r in rs)),
                              time=f"{sum(r.duration_s for r in rs):.3f}")
        for r in rs:
            case = ET.SubElement(suite, "testcase", name=f"{r.id}[{target}]",
                                 classname=f"{report.matrix.name}.{cat}", time=f"{r.duration_s:.3f}")
            text = f"expected {r.expect}, observed {r.observed.value}: {_result_line(r)}"
            if r.status is Status.FAIL and not r.excused:
                ET.SubElement(case, "failure", message=text[:500], type=r.severity).text = (
                    text + "\n" + "\n".join(r.evidence))
            elif r.status is not Status.PASS:
                ET.SubElement(case, "skipped", message=f"{r.status.value}: {_result_line(r)}"[:500])
            ET.SubElement(case, "system-out").text = text
    ET.indent(root)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(root, encoding="unicode"))
    out.write("\n")


def render_markdown(report: RunReport, out: IO[str]) -> None:
    """Markdown fit for a CI job summary."""
    s = report.summary()
    icon = {"pass": "✅", "fail": "❌", "inconclusive": "⚠️", "skip": "⏭️"}
    t = report.target
    out.write(f"## sandboxcheck: `{report.matrix.name}` against `{t.get('name')}`\n\n")
    out.write(f"**{s['pass']} passed, {s['fail']} failed, {s['inconclusive']} inconclusive, "
              f"{s['skip']} skipped**")
    if s["waived"] or s["accepted"]:
        out.write(f" ({s['waived']} waived, {s['accepted']} accepted in the baseline)")
    out.write(f" in {report.duration_s:.1f}s\n\n")
    deviations = [r for r in report.results if r.status in (Status.FAIL, Status.INCONCLUSIVE)]
    if deviations:
        out.write("| | check | expected | observed | evidence / reason |\n|---|---|---|---|---|\n")
        for r in deviations:
            out.write(f"| {icon[r.status.value]} | `{r.id}` | {r.expect} | {r.observed.value} | "
                      f"{_md(_result_line(r))} |\n")
        out.write("\n")
    out.write("<details><summary>All checks</summary>\n\n| | check | category | expected | observed |\n"
              "|---|---|---|---|---|\n")
    for r in report.results:
        out.write(f"| {icon[r.status.value]} | `{r.id}` | {r.category} | {r.expect} | {r.observed.value} |\n")
    out.write("\n</details>\n")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


FORMATTERS: dict[str, Callable[..., None]] = {
    "table": render_table, "json": render_json, "junit": render_junit,
    "sarif": render_sarif, "markdown": render_markdown,
}
