"""Report formatters: a registry, JSON canonical; rich stays in this layer."""
from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from ..hostfacts import flat_facts, host_line, report_digest
from ..model import CATEGORIES, Result, Status
from ..model import RunReport
from .console import Columns
from .console import STATUS_STYLE
from .console import console_for
from .console import cut
from .console import labelled
from .console import md_cell as _md
from .text import md_code, md_text


def render_json(report: RunReport, out: IO[str]) -> None:
    """The canonical report, with schema_version."""
    json.dump(report.to_dict(), out, indent=2)
    out.write("\n")


#: What each isolation layer the preflight can see means for the verdicts, by the layer's first word(s).
PREFLIGHT_MEANING: dict[str, str] = {
    "own namespaces": "the target sees its own copy of these kernel views, not the host's",
    "seccomp": "a system-call filter: some calls fail with EPERM or ENOSYS before any policy is asked",
    "NoNewPrivs": "setuid programs (sudo, su) cannot gain privileges: escalation through them is denied",
    "capabilities": "fewer root powers than the harness: privileged actions (mount, raw sockets) fail with EPERM",
    "fake home hidden": "the dummy home is out of view: credential reads find nothing (ENOENT), not a policy denial",
    "processes visible": "host processes are hidden: signalling or reading them fails (ESRCH)",
}
#: What a namespace of its own means, for the namespace layer.
NAMESPACE_MEANING: dict[str, str] = {
    "user": "root inside is not root outside", "pid": "host processes cannot be seen or signalled",
    "net": "no host network unless it is bridged in", "mnt": "its own file-system view",
    "ipc": "no shared memory with the host", "uts": "its own host name", "cgroup": "its own cgroup view",
}


def preflight_meaning(layer: str) -> str:
    """A short explanation of one preflight layer (as written by ``judge_preflight``)."""
    if layer.startswith("own namespaces:"):
        names = [n.strip() for n in layer.partition(":")[2].split(",")]
        return "; ".join(f"{n}: {NAMESPACE_MEANING[n]}" for n in names if n in NAMESPACE_MEANING)
    for key, meaning in PREFLIGHT_MEANING.items():
        if key in layer:
            return meaning
    return ""


def preflight_lines(pf: dict[str, Any]) -> tuple[str, list[str]]:
    """The preflight for people: a style for its lines (rich), and the lines, each fact explained."""
    if not pf.get("ran"):
        return "yellow", [f"preflight could not run: {pf.get('reason')} (nothing is known of the "
                          "target's isolation; the checks still judge from evidence)"]
    if not pf.get("isolated"):
        return "bold red", ["WARNING: NO ISOLATION DETECTED: the target ran the preflight probe like an "
                            "unsandboxed process (same namespaces, no seccomp, no NoNewPrivs, same "
                            "capabilities, host processes visible): expect denied checks to fail"]
    lines = ["preflight: isolation seen from outside, and what it means for the checks:"]
    for layer in pf.get("layers", []):
        meaning = preflight_meaning(layer)
        lines.append(f"  {layer}" + (f" - {meaning}" if meaning else ""))
    return "", lines


def render_table(report: RunReport, out: IO[str], color: bool | None = None, verbose: bool = False,
                 width: int | None = None) -> None:
    """One line per check (check ids never cut), grouped by category, then a summary line.

    The reason is cut to fit the width; ``verbose`` adds under each check its
    full reason and, for a deviation, the matrix's ``fix:`` text.
    """
    console = console_for(out, color, width)
    t = report.target
    console.print(f"[bold]sandboxcheck[/] matrix [bold]{escape(report.matrix.name)}[/] "
                  f"({len(report.results)} checks) against target [bold]{escape(str(t.get('name')))}[/]")
    console.print(Text(textwrap.fill(facts_summary(report), max(40, console.width), subsequent_indent="  ",
                                     break_long_words=False, break_on_hyphens=False), style="dim"),
                  no_wrap=True, crop=False)
    if t.get("unavailable"):
        console.print(f"[bold red]target unavailable:[/] {escape(str(t['unavailable']))}")
    if report.preflight is not None:
        style, lines = preflight_lines(report.preflight)
        for line in lines:
            indent = " " * (len(line) - len(line.lstrip()) + 2)
            console.print(Text(textwrap.fill(line, max(40, console.width), subsequent_indent=indent,
                                             break_long_words=False, break_on_hyphens=False), style=style),
                          no_wrap=True, crop=False)
    fixes = {c.id: c.fix for c in report.matrix.checks if c.fix}
    order = {c: i for i, c in enumerate(CATEGORIES)}
    labels = {r.id: r.status.value.upper() + (" (waived)" if r.waived else " (accepted)" if r.accepted else "")
              for r in report.results}
    heads = ("check", "expect", "observed", "status", "severity")
    rows = {r.id: ("  " + r.id, r.expect, r.observed.value, labels[r.id], r.severity) for r in report.results}
    layout = Columns(heads, list(rows.values()), console.width)
    console.print(layout.line(heads, "reason" if layout.room else "", bold=True), no_wrap=True,
                  overflow="ignore", crop=False)
    cats = sorted({r.category for r in report.results}, key=lambda c: order.get(c, 99))
    for cat in cats:
        console.print(Text(cat, style="bold cyan"))
        for r in (r for r in report.results if r.category == cat):
            whole = " ".join(_result_line(r).split())
            shown = cut(whole, layout.room) if layout.room else ""
            if verbose and shown != whole:
                shown = ""  # shown whole on the lines below instead
            style = "dim" if r.excused else STATUS_STYLE[r.status.value]
            console.print(layout.line(rows[r.id], shown, {3: style}), no_wrap=True, overflow="ignore", crop=False)
            if verbose:
                _print_detail(console, r, fixes.get(r.id), full_shown=shown == whole)
    s = report.summary()
    excused = f" ({s['waived']} waived, {s['accepted']} accepted)" if s["waived"] or s["accepted"] else ""
    console.print(f"{s['pass']} passed, {s['fail']} failed, {s['inconclusive']} inconclusive, "
                  f"{s['skip']} skipped{excused} in {report.duration_s:.1f}s")
    if not verbose and any(r.status in (Status.FAIL, Status.INCONCLUSIVE) for r in report.results):
        console.print("[dim]-v shows each check's full reason and how to fix it[/]")
    if report.kept:
        console.print(f"kept {len(report.kept)} workspace(s) under {report.kept[0].rsplit('/', 1)[0]}")


def facts_summary(report: RunReport) -> str:
    """Where a run was made and of which matrix, in one line (see :func:`hostfacts.host_line`)."""
    return host_line(report.host, report_digest(report))


def target_lines(name: str, unavailable: str | None, versions: list[str], description: str,
                 width: int) -> list[str]:
    """A target in full, for people: name, availability, version and description, wrapped to ``width``."""
    return [name, labelled("available", f"no: {unavailable}" if unavailable else "yes", width),
            labelled("version", "; ".join(versions) or "-", width), labelled("description", description, width)]


def _print_detail(console: Console, r: Result, fix: str | None, full_shown: bool) -> None:
    """The full reason of a check unless its line showed it whole, and its fix when it deviates."""
    deviates = r.status in (Status.FAIL, Status.INCONCLUSIVE)
    for label, text in (("reason", None if full_shown else _result_line(r)),
                        ("fix", fix if fix and deviates else None)):
        if text:
            console.print(Text(labelled(label, text, console.width, indent="      "),
                               style="dim" if label == "reason" else ""), no_wrap=True, crop=False)
    if r.transcript is not None:
        console.print(Text(transcript_summary(r, console.width - 6, indent="      "), style="dim"),
                      no_wrap=True, crop=False)


def transcript_summary(r: Result, width: int, indent: str = "  ") -> str:
    """An agent check's tool calls, one line each (``turn. tool command -> ok/error``)."""
    if not r.transcript:
        return f"{indent}agent: made none of the check's tool calls"
    return "\n".join(f"{indent}agent: {t.summary(max(30, width - len(indent) - 7))}" for t in r.transcript)


def _result_line(r: Result) -> str:
    extra = f" ({r.waived})" if r.waived else " (as in the accepted report)" if r.accepted else ""
    return r.reason + extra


def junit_properties(report: RunReport) -> list[tuple[str, str]]:
    """A run's host facts, matrix digest, target and preflight as flat JUnit properties."""
    props = [("target", str(report.target.get("name", ""))), *flat_facts(report.host, report_digest(report))]
    pf = report.preflight
    if pf is not None:
        props += [("preflight.ran", "true" if pf.get("ran") else "false"),
                  ("preflight.isolated", "true" if pf.get("isolated") else "false"),
                  ("preflight.layers", "; ".join(pf.get("layers") or ()))]
        if pf.get("reason"):
            props.append(("preflight.reason", str(pf["reason"])))
    return props


def _xml_text(text: str) -> str:
    """``text`` without the control characters XML 1.0 cannot hold (ElementTree escapes the rest)."""
    return "".join(ch for ch in text if ch >= " " or ch in "\t\n\r")


def render_junit(report: RunReport, out: IO[str]) -> None:
    """JUnit XML: one testsuite per category, one testcase per check."""
    root = ET.Element("testsuites", name=f"sandboxcheck {report.matrix.name}",
                      tests=str(len(report.results)), time=f"{report.duration_s:.3f}")
    target = report.target.get("name", "")
    fixes = {c.id: c.fix for c in report.matrix.checks if c.fix}
    order = {c: i for i, c in enumerate(CATEGORIES)}
    properties = junit_properties(report)
    for cat in sorted({r.category for r in report.results}, key=lambda c: order.get(c, 99)):
        rs = [r for r in report.results if r.category == cat]
        suite = ET.SubElement(root, "testsuite", name=f"{report.matrix.name}.{cat}[{target}]",
                              tests=str(len(rs)),
                              failures=str(sum(r.status is Status.FAIL and not r.excused for r in rs)),
                              skipped=str(sum(r.status in (Status.SKIP, Status.INCONCLUSIVE) or r.excused
                                              for r in rs)),
                              time=f"{sum(r.duration_s for r in rs):.3f}")
        props = ET.SubElement(suite, "properties")  # before the testcases, as the JUnit schema orders them
        for name, value in properties:
            ET.SubElement(props, "property", name=name, value=_xml_text(value))
        for r in rs:
            case = ET.SubElement(suite, "testcase", name=f"{r.id}[{target}]",
                                 classname=f"{report.matrix.name}.{cat}", time=f"{r.duration_s:.3f}")
            text = f"expected {r.expect}, observed {r.observed.value}: {_result_line(r)}"
            if r.status is Status.FAIL and not r.excused:
                fix = f"fix: {fixes[r.id]}\n" if r.id in fixes else ""
                ET.SubElement(case, "failure", message=text[:500], type=r.severity).text = (
                    text + "\n" + fix + "\n".join(r.evidence))
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
    out.write(f"## sandboxcheck: {md_code(report.matrix.name)} against {md_code(t.get('name'))}\n\n")
    out.write(f"**{s['pass']} passed, {s['fail']} failed, {s['inconclusive']} inconclusive, "
              f"{s['skip']} skipped**")
    if s["waived"] or s["accepted"]:
        out.write(f" ({s['waived']} waived, {s['accepted']} as in the accepted report)")
    out.write(f" in {report.duration_s:.1f}s\n\n")
    out.write(md_text(facts_summary(report)) + "\n\n")
    pf = report.preflight
    if pf is not None:
        _, lines = preflight_lines(pf)
        out.write(_md(lines[0]) + "\n\n" + "".join(f"- {_md(line.strip())}\n" for line in lines[1:]) + "\n")
    fixes = {c.id: c.fix for c in report.matrix.checks if c.fix}
    deviations = [r for r in report.results if r.status in (Status.FAIL, Status.INCONCLUSIVE)]
    if deviations:
        out.write("| | check | expected | observed | evidence / reason | fix |\n|---|---|---|---|---|---|\n")
        for r in deviations:
            out.write(f"| {icon[r.status.value]} | {md_code(r.id)} | {_md(r.expect)} | {r.observed.value} | "
                      f"{_md(_result_line(r))} | {_md(fixes.get(r.id, ''))} |\n")
        out.write("\n")
    out.write("<details><summary>All checks</summary>\n\n| | check | category | expected | observed |\n"
              "|---|---|---|---|---|\n")
    for r in report.results:
        out.write(f"| {icon[r.status.value]} | {md_code(r.id)} | {_md(r.category)} | {_md(r.expect)} | "
                  f"{r.observed.value} |\n")
    out.write("\n</details>\n")


