"""SARIF 2.1.0 report, shaped for GitHub code scanning.

One rule per check (stable ``ruleId`` = the check id), one result per
failing or inconclusive check, each located at the check's lines in the
matrix. Locations are relative to a base folder (the repository root) through
the ``%SRCROOT%`` base id, as GitHub resolves them against the repository it
shows alerts in. A matrix that is not inside the base (a bundled one, found in
site-packages) is located at ``sandboxcheck/matrices/<file name>``: the path a
user copies the matrix to in order to see the alert on its line; the result's
message says so. Passing and skipped checks produce no result.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import quote

from .. import __version__
from ..hostfacts import report_digest
from ..model import Check, Result, Status
from ..resources import matrices_dir
from ..model import RunReport

#: Where the project documents itself; rules link to anchors of its README.
PROJECT_URL = "https://github.com/sandboxcheck/sandboxcheck"
HELP_URI = f"{PROJECT_URL}#verdicts"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
#: The base id GitHub and the SARIF viewers resolve against the checkout.
SRCROOT = "%SRCROOT%"
#: Repository-relative folder a matrix outside the base is reported in.
FALLBACK_DIR = "sandboxcheck/matrices"
#: GitHub's scale (0.0-10.0): over 9.0 is critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low.
SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0", "info": "0.0"}
#: Level of a failing check; an inconclusive one is always a note.
FAIL_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "warning", "info": "note"}
FINGERPRINT_KEY = "sandboxcheck/v1"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a check is reported: a repository-relative URI, and whether it is the fallback."""

    uri: str
    fallback: bool


def locate(source: str, matrix_name: str, base: Path) -> Location:
    """The check's file as a URI relative to ``base``, or the documented fallback path.

    The fallback keeps the file name of a matrix outside ``base`` (a bundled
    matrix, or one elsewhere on disk), so alerts stay on the same path from
    run to run and land on the real lines once the file is copied there.
    """
    name = Path(source).name if source and not source.startswith("<") else f"{matrix_name}.yaml"
    if source and not source.startswith("<"):
        real, root = os.path.realpath(source), os.path.realpath(base)
        if os.path.commonpath([real, root]) == root and real != root:
            return Location(_uri(PurePosixPath(*Path(os.path.relpath(real, root)).parts)), False)
    return Location(_uri(PurePosixPath(FALLBACK_DIR, name)), True)


def _uri(path: PurePosixPath) -> str:
    return quote(path.as_posix(), safe="/")


def _bundled(source: str) -> bool:
    try:
        folder = os.path.realpath(matrices_dir())
    except FileNotFoundError:
        return False
    return bool(source) and os.path.dirname(os.path.realpath(source)) == folder


def _rule(check: Check | None, r: Result) -> dict[str, Any]:
    severity = check.severity if check else r.severity
    description = (check.description if check and check.description else r.title).strip()
    fix = (check.fix if check and check.fix else
           f"Tighten the sandbox so that this action is {r.expect}.").strip()
    markdown = (f"**{r.title}**\n\n{description}\n\n"
                f"Expected through the sandbox: **{r.expect}** (category `{r.category}`, "
                f"severity {severity}).\n\n**Fix:** {fix}\n\n"
                f"The verdict comes from evidence seen outside the sandbox; see "
                f"[verdicts]({HELP_URI}).")
    return {
        "id": r.id,
        "name": "".join(p.capitalize() for p in r.id.replace("-", ".").split(".")),
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": description},
        "help": {"text": f"{fix}\n\n{description}\nExpected through the sandbox: {r.expect}.",
                 "markdown": markdown},
        "helpUri": HELP_URI,
        "defaultConfiguration": {"level": FAIL_LEVEL.get(severity, "warning")},
        "properties": {
            "security-severity": SECURITY_SEVERITY.get(severity, SECURITY_SEVERITY["medium"]),
            "tags": list(dict.fromkeys(["security", r.category, *(check.tags if check else ())])),
            "precision": "high", "category": r.category, "expect": r.expect,
        },
    }


def _message(r: Result, target: str, where: Location, source: str) -> str:
    head = (f"{r.title}: inconclusive through {target}: {r.reason}" if r.status is Status.INCONCLUSIVE
            else f"{r.title}: expected {r.expect} through {target}, observed {r.observed.value}. {r.reason}")
    lines = [head.strip()]
    evidence = [e for e in r.evidence[:5] if e not in r.reason]
    if evidence:
        lines.append("Evidence: " + "; ".join(evidence))
    if r.waived:
        lines.append(f"Waived: {r.waived}")
    elif r.accepted:
        lines.append("Accepted in the baseline.")
    if where.fallback:
        origin = "the bundled matrix" if _bundled(source) else "a matrix outside the repository"
        lines.append(f"Reported at {where.uri} because the check comes from {origin}: copy the matrix "
                     f"to that path in the repository and run the copy to see the alert on its line.")
    return "\n".join(lines)


def _fingerprint(matrix: str, target: str, check_id: str) -> str:
    return hashlib.sha256(f"{matrix}\0{target}\0{check_id}".encode()).hexdigest()[:32]


def _run_facts(report: RunReport) -> dict[str, Any]:
    """Where the run was made and of which matrix, for the invocation's property bag."""
    facts: dict[str, Any] = {"matrix": {"name": report.matrix.name, "digest": report_digest(report)}}
    if report.host is not None:
        facts["host"] = report.host
    if report.preflight is not None:
        facts["preflight"] = {k: report.preflight.get(k) for k in ("ran", "isolated", "layers", "reason")}
    return facts


def sarif_document(report: RunReport, base: str | Path | None = None) -> dict[str, Any]:
    """The SARIF log as a dict; locations relative to ``base`` (default: the current folder)."""
    root = Path(base) if base is not None else Path.cwd()
    checks = {c.id: c for c in report.matrix.checks}
    target = str(report.target.get("name") or "")
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for r in report.results:
        if r.id not in index:
            index[r.id] = len(rules)
            rules.append(_rule(checks.get(r.id), r))
    results = []
    for r in report.results:
        if r.status not in (Status.FAIL, Status.INCONCLUSIVE):
            continue
        check = checks.get(r.id)
        source = check.source if check else report.matrix.path
        where = locate(source, report.matrix.name, root)
        start = max(1, check.line if check else 1)
        end = max(start, check.end_line if check else start)
        level = "note" if r.status is Status.INCONCLUSIVE else FAIL_LEVEL.get(r.severity, "warning")
        res: dict[str, Any] = {
            "ruleId": r.id, "ruleIndex": index[r.id], "kind": "fail", "level": level,
            "message": {"text": _message(r, target, where, source)},
            "locations": [{"physicalLocation": {
                "artifactLocation": {"uri": where.uri, "uriBaseId": SRCROOT},
                "region": {"startLine": start, "endLine": end}}}],
            "partialFingerprints": {FINGERPRINT_KEY: _fingerprint(report.matrix.name, target, r.id)},
            "properties": {"status": r.status.value, "target": target, "observed": r.observed.value,
                           "evidence": list(r.evidence), "errno": r.errno},
        }
        if r.excused:
            res["suppressions"] = [{"kind": "external",
                                    "justification": r.waived or "accepted in the baseline"}]
        results.append(res)
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "sandboxcheck", "version": __version__,
                                "semanticVersion": __version__, "informationUri": PROJECT_URL,
                                "rules": rules}},
            "originalUriBaseIds": {SRCROOT: {"uri": Path(os.path.realpath(root)).as_uri().rstrip("/") + "/"}},
            "invocations": [{"executionSuccessful": True,
                             "startTimeUtc": report.started.replace("+00:00", "Z"),
                             "properties": {"target": report.target, **_run_facts(report)}}],
            "results": results,
        }],
    }


def render_sarif(report: RunReport, out: IO[str], base: str | Path | None = None) -> None:
    """SARIF 2.1.0 for GitHub code scanning (see :func:`sarif_document`)."""
    json.dump(sarif_document(report, base), out, indent=2)
    out.write("\n")
