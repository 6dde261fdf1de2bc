"""Merge JSON reports: shards of one run back into one report, many hosts into a fleet view.

Every input (a run report or a survey) becomes cells keyed by (host, target,
check). Shards of one run on one host fill in each other's checks; the same
key seen twice is a duplicate (same verdict) or a conflict (another one).
When all inputs are run reports of one target on one host, the merge is
the report an unsharded run would have written; otherwise it is a
**fleet view**: checks down, (target, host) across, with the checks whose
verdict differs between hosts running the same target release first.

The reports come from other machines, and one of them may be compromised,
so each is checked before use: its types, its sizes (checks, targets, shards,
text), its check ids (as a matrix allows them), and its text (control and
format characters removed). A result seen twice with different verdicts is
a conflict: flagged, and the grid and the exit code take the worse one, so
no file order hides a failure. A report's claims about its host and its
shard cannot be verified: reports whose facts about one host disagree are
flagged, but a consistent forgery is not detected (sign or collect reports
over a channel the fleet trusts).
"""
from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from . import __version__
from .compare import target_version
from .hostfacts import facts_line, host_key
from .model import SCHEMA_VERSION, Matrix, Observed, Result, RunReport, Status, status_exit
from .policy import BaselineError
from .report.text import clean, sane
from .shard import MAX_SHARDS

NA = "n/a"
#: Bytes of markdown at most (a GitHub job summary takes 1 MiB).
MARKDOWN_LIMIT = 900 * 1024
#: Check ids as a matrix allows them (the matrix schema's pattern), at most 200 characters.
_CHECK_ID = re.compile(r"[a-z][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)+")
#: Bounds on what one report may hold, and on the merged grid (rows x columns).
MAX_CHECKS = 20_000
MAX_TARGETS = 1_000
MAX_GRID = 1_000_000
#: JSON objects and arrays one report may hold (counted before parsing it).
MAX_CONTAINERS = 2_000_000
_RANK = {"fail": 4, "inconclusive": 3, NA: 2, "pass": 1, "skip": 0}
_ICON = {"pass": "✅", "fail": "❌", "inconclusive": "⚠️", "skip": "⏭️", NA: "·"}


class MergeError(ValueError):
    """Reports that cannot be merged (bad input)."""


@dataclass(slots=True)
class Column:
    """One target on one host: its cells and where they came from."""

    target: str
    host: str
    release: str
    facts: dict[str, Any]
    target_info: dict[str, Any]
    cells: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    shards: dict[int, set[int]] = field(default_factory=dict)  # N -> the K seen
    expected: int = 0  # checks of the whole matrix, when a shard said so
    preflight: Any = None
    facts_seen: dict[str, list[str]] = field(default_factory=dict)  # facts line -> files

    @property
    def key(self) -> str:
        """``target@host``."""
        return f"{self.target}@{self.host}"

    def missing_shards(self) -> list[str]:
        """``K/N`` of each shard of a split that no input covered."""
        return [f"{k}/{n}" for n, seen in sorted(self.shards.items()) for k in range(1, n + 1) if k not in seen]


@dataclass(slots=True)
class Fleet:
    """Every input's cells, grouped by (target, host), with what did not add up."""

    matrix: dict[str, Any]
    digests: list[str]
    columns: list[Column]
    order: list[str]
    checks: dict[str, dict[str, Any]]
    duplicates: list[dict[str, Any]]
    kinds: set[str]
    files: list[str]
    started: str = ""
    durations: list[float] = field(default_factory=list)  # each report's duration_s
    sources: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)  # (file, checked report)

    def hosts(self) -> dict[str, dict[str, Any]]:
        """Each host's facts, by host key."""
        return {c.host: c.facts for c in self.columns}

    def differences(self) -> list[dict[str, Any]]:
        """Checks whose verdict differs between hosts that ran the same target release."""
        groups: dict[tuple[str, str], list[Column]] = {}
        for col in self.columns:
            groups.setdefault((col.target, col.release), []).append(col)
        out = []
        for (target, release), cols in groups.items():
            if len({c.host for c in cols}) < 2:
                continue
            for cid in self.order:
                verdicts = {c.host: _verdict(c.cells.get(cid)) for c in cols}
                seen = {v for v in verdicts.values() if v != NA}  # a gap is a problem, not a difference
                if len(seen) > 1:
                    out.append({"target": target, "release": release, "check": cid,
                                "expect": self.checks.get(cid, {}).get("expect"), "hosts": verdicts,
                                "facts": {c.host: _facts_line(c.facts) for c in cols}})
        return out

    def incomplete(self) -> list[str]:
        """Why a column does not cover the whole matrix (a shard missing, checks absent)."""
        out = []
        for col in self.columns:
            missing = col.missing_shards()
            if missing:
                out.append(f"{col.key}: shard {', '.join(missing)} missing")
            elif col.expected and len(col.cells) < col.expected:
                out.append(f"{col.key}: {len(col.cells)} of {col.expected} checks")
        return out

    def disagreements(self) -> list[str]:
        """Columns made of reports whose facts about their host differ (another kernel, OS or
        sandboxcheck): shards of one host agree, so such a column mixes hosts or holds a forgery."""
        return [f"{c.key}: its reports disagree about the host: "
                + "; ".join(f"{', '.join(files)}: {line}" for line, files in c.facts_seen.items())
                for c in self.columns if len(c.facts_seen) > 1]

    def exit_code(self) -> int:
        """Like ``run``: 1 a live fail, 3 otherwise inconclusive, n/a, conflicting or incomplete, else 0."""
        statuses = {c["status"] for col in self.columns for c in col.cells.values() if not c.get("excused")}
        if self.incomplete() or any(d["kind"] == "conflicting" for d in self.duplicates):
            statuses.add(NA)  # a gap or a conflict is as unsure as an n/a cell
        return status_exit(statuses, unsure=("inconclusive", NA))

    def to_dict(self) -> dict[str, Any]:
        """The fleet view as JSON."""
        return {
            "schema_version": SCHEMA_VERSION, "kind": "fleet", "tool": "sandboxcheck",
            "version": __version__, "matrix": {**self.matrix, "digests": self.digests},
            "files": self.files, "hosts": self.hosts(),
            "columns": [{"target": c.target, "host": c.host, "release": c.release,
                         "summary": _summary(c.cells.values()), "files": c.files,
                         "missing_shards": c.missing_shards()} for c in self.columns],
            "differences": self.differences(), "duplicates": self.duplicates,
            "incomplete": self.incomplete(), "disagreements": self.disagreements(),
            "checks": [{**self.checks.get(cid, {"id": cid}),
                        "cells": {c.key: c.cells[cid] for c in self.columns if cid in c.cells}}
                       for cid in self.order],
            "exit_code": self.exit_code(),
        }


def _verdict(cell: Mapping[str, Any] | None) -> str:
    return NA if cell is None else f"{cell.get('status')} ({cell.get('observed')})"


def _full_verdict(cell: Mapping[str, Any]) -> str:
    """The verdict with whether it is excused: an excused and a live fail are not the same result."""
    return _verdict(cell) + (" excused" if cell.get("excused") else "")


def _worse(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether result ``a`` is worse than ``b`` (a live fail worst)."""
    return ((_RANK.get(str(a.get("status")), 2), not a.get("excused"))
            > (_RANK.get(str(b.get("status")), 2), not b.get("excused")))


def _summary(cells: Any) -> dict[str, int]:
    counts = {s.value: 0 for s in Status}
    counts.update({NA: 0, "waived": 0, "accepted": 0})
    for c in cells:
        counts[c["status"] if c["status"] in counts else NA] += 1
        if c.get("excused"):
            counts["waived" if c.get("waived") else "accepted"] += 1
    return counts


def _release(target: Mapping[str, Any], facts: Mapping[str, Any]) -> str:
    return target_version(target) or ", ".join(facts.get("tools") or []) or "unknown release"


def _targets_of(data: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, target info) of each target a run report or a survey ran, its cells' targets included."""
    found: dict[str, dict[str, Any]] = {}
    if data.get("kind") == "survey":
        found.update((str(t.get("name")), dict(t)) for t in data.get("targets", []) if isinstance(t, dict))
    elif isinstance(data.get("target"), dict):
        found[str(data["target"].get("name", "unknown target"))] = dict(data["target"])
    for name, info, _ in _cells_of(data):
        found.setdefault(name, info)
    return list(found.items())


def _cells_of(data: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(target name, target info, cell) for every cell of a run report or a survey."""
    if data.get("kind") == "survey":
        infos = {t.get("name"): t for t in data.get("targets", []) if isinstance(t, dict)}
        out = []
        for check in data.get("checks", []):
            meta = {k: check.get(k) for k in ("id", "category", "title", "expect", "severity")}
            for name, cell in (check.get("cells") or {}).items():
                out.append((name, dict(infos.get(name, {"name": name})), {**meta, **cell}))
        return out
    target = data.get("target") if isinstance(data.get("target"), dict) else {}
    name = str(target.get("name", "unknown target"))
    return [(name, dict(target), dict(r)) for r in data.get("results", []) if isinstance(r, dict)]


def _excused(cell: Mapping[str, Any], survey: bool) -> bool:
    """Whether a deviation is excused: a survey's cell says so; a run report's result is excused
    by its waiver or accepted baseline (an ``excused`` key there is no field of a run report)."""
    if survey:
        return cell.get("status") in ("fail", "inconclusive") and cell.get("excused") is True
    return cell.get("status") in ("fail", "inconclusive") and bool(cell.get("waived") or cell.get("accepted"))


def build(reports: Sequence[tuple[str, Mapping[str, Any]]], allow_different_matrices: bool = False) -> Fleet:
    """The fleet of ``reports`` ((file, canonical JSON) pairs); MergeError when they do not fit together."""
    if not reports:
        raise MergeError("no reports to merge")
    digests: dict[str, list[str]] = {}
    for path, data in reports:
        m = data.get("matrix") if isinstance(data.get("matrix"), dict) else {}
        digests.setdefault(str(m.get("digest") or f"matrix {m.get('name')!r} (no digest)"), []).append(path)
    if len(digests) > 1 and not allow_different_matrices:
        parts = "; ".join(f"{d[:23]} in {', '.join(files)}" for d, files in digests.items())
        raise MergeError(f"the reports are of different matrices ({parts}): merge reports of one matrix, "
                         "or pass --allow-different-matrices")
    columns: dict[tuple[str, str], Column] = {}
    order: list[str] = []
    checks: dict[str, dict[str, Any]] = {}
    seen: dict[tuple[str, str, str], list[tuple[str, dict[str, Any]]]] = {}
    kinds = set()
    for path, data in reports:
        survey = data.get("kind") == "survey"
        kinds.add("survey" if survey else "run")
        facts = data.get("host") if isinstance(data.get("host"), dict) else {}
        host = clean(host_key(facts), 200).strip() or "unknown host"
        facts_line = _facts_line(facts)
        shard = data.get("shard") if isinstance(data.get("shard"), dict) else None
        for cid in (shard or {}).get("check_ids") or []:
            if cid not in checks:
                order.append(cid)
                checks[cid] = {"id": cid}
        # Every target the report ran is a column, even when its part held none of that target's checks.
        for name, info in _targets_of(data):
            col = columns.get((name, host))
            if col is None:
                col = columns[(name, host)] = Column(name, host, _release(info, facts), dict(facts), info)
            col.files.append(path)
            col.facts_seen.setdefault(facts_line, []).append(path)
            if shard:
                col.shards.setdefault(int(shard["count"]), set()).add(int(shard["index"]))
                col.expected = max(col.expected, int(shard.get("matrix_checks") or 0))
            if col.preflight is None:
                col.preflight = data.get("preflight") or info.get("preflight")
        for name, _info, cell in _cells_of(data):
            col = columns[(name, host)]
            cid = str(cell.get("id"))
            cell["excused"] = _excused(cell, survey)
            if cid not in checks:
                order.append(cid)
                checks[cid] = {"id": cid}
            checks[cid].update({k: cell[k] for k in ("category", "title", "expect", "severity") if cell.get(k)})
            seen.setdefault((name, host, cid), []).append((path, cell))
            kept = col.cells.get(cid)
            if kept is None or _worse(cell, kept):  # whatever the files' order, the worse result shows
                col.cells[cid] = cell
    if len(order) * len(columns) > MAX_GRID:
        raise MergeError(f"too large a merge: {len(order)} checks x {len(columns)} columns (at most "
                         f"{MAX_GRID} cells): merge fewer reports at a time")
    duplicates = []
    for (target, host, cid), found in seen.items():
        if len(found) > 1:
            same = len({_full_verdict(c) for _, c in found}) == 1
            if not same:
                columns[(target, host)].cells[cid] = {**columns[(target, host)].cells[cid], "conflicting": True}
            duplicates.append({"target": target, "host": host, "check": cid,
                               "kind": "duplicate" if same else "conflicting",
                               "found": [[p, _full_verdict(c)] for p, c in found]})
    duplicates.sort(key=lambda d: d["kind"] != "conflicting")  # conflicts first
    if not any(col.cells for col in columns.values()):
        raise MergeError("no results in any of the reports: nothing to merge")
    first = reports[0][1]
    matrix = first.get("matrix") if isinstance(first.get("matrix"), dict) else {}
    cols = sorted(columns.values(), key=lambda c: (c.target, c.host))
    return Fleet(matrix={k: matrix.get(k) for k in ("name", "path", "checks")}, digests=sorted(digests),
                 columns=cols, order=order, checks=checks, duplicates=duplicates, kinds=kinds,
                 files=[p for p, _ in reports],
                 started=min(str(d.get("started", "")) for _, d in reports),
                 sources=list(reports),
                 durations=[float(d["duration_s"]) for _, d in reports
                            if isinstance(d.get("duration_s"), (int, float)) and not isinstance(d["duration_s"], bool)])


def load(paths: Sequence[str], allow_different_matrices: bool = False) -> Fleet:
    """Read the JSON reports at ``paths`` and build their fleet (MergeError on bad input)."""
    reports = []
    given: dict[str, str] = {}
    for path in paths:
        try:
            same = given.get(os.path.realpath(path))
        except (OSError, ValueError):
            same = None
        if same is not None:
            raise MergeError(f"{path}: given twice (as {same}): name each report once")
        given[os.path.realpath(path)] = path
        try:
            data = _load_any(path)
        except BaselineError as exc:
            raise MergeError(str(exc)) from None
        if data.get("kind") == "fleet":
            raise MergeError(f"{path}: a merged fleet view; merge the reports it was made from")
        reports.append((path, data))
    return build(reports, allow_different_matrices)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _load_any(path: str) -> dict[str, Any]:
    """A run report or a survey, read once, checked (``_check``) and its text made sane."""
    from .policy import REPORT_MAX_BYTES
    from .safeyaml import InputError, read_text

    try:
        text = read_text(path, "JSON report", limit=REPORT_MAX_BYTES)
    except InputError as exc:
        raise BaselineError(str(exc)) from None
    if not text.strip():
        raise BaselineError(f"{path}: an empty file, not a JSON report (did the job that writes it fail?)")
    if text.count("{") + text.count("[") > MAX_CONTAINERS:
        raise BaselineError(f"{path}: more than {MAX_CONTAINERS} JSON objects and arrays: not a report "
                            "of sandboxcheck")
    try:
        data = json.loads(text, parse_constant=_no_constant)
        data = _sane_tree(data)
    except RecursionError:
        raise BaselineError(f"{path}: not a JSON report: nested too deeply") from None
    except ValueError as exc:
        raise BaselineError(f"{path}: not a JSON report: {exc}") from None
    if not isinstance(data, dict):
        raise BaselineError(f"{path}: not a sandboxcheck JSON report (not an object)")
    if data.get("kind") in ("survey", "fleet"):
        if data.get("schema_version") != 1 or not isinstance(data.get("checks"), list):
            raise BaselineError(f"{path}: not a sandboxcheck survey (schema_version 1 with 'checks')")
    elif not isinstance(data.get("results"), list):
        raise BaselineError(f"{path}: not a sandboxcheck JSON report (no 'results')")
    elif data.get("schema_version") != 1:
        raise BaselineError(f"{path}: unsupported schema_version {data.get('schema_version')!r}")
    problem = _check(data)
    if problem:
        raise BaselineError(f"{path}: {problem}")
    return data


def _sane_tree(value: Any) -> Any:
    """``value`` with the control and format characters taken out of every string and key."""
    if isinstance(value, str):
        return sane(value)
    if isinstance(value, list):
        return [_sane_tree(v) for v in value]
    if isinstance(value, dict):
        return {sane(str(k), 400): _sane_tree(v) for k, v in value.items()}
    return value


def _int(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _str_or_none(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _check_result(where: str, cell: Any, survey: bool = False) -> str | None:
    statuses, observed = {s.value for s in Status}, {o.value for o in Observed}
    if survey:  # a survey's column of a target not available on its host holds n/a cells
        statuses, observed = statuses | {NA}, observed | {NA}
    if not isinstance(cell, dict):
        return f"{where}: expected an object"
    if not isinstance(cell.get("status"), str) or cell["status"] not in statuses:
        return f"{where}.status: expected one of {', '.join(sorted(statuses))}, found {cell.get('status')!r:.60}"
    if not isinstance(cell.get("observed", "unknown"), str) or cell.get("observed", "unknown") not in observed:
        return f"{where}.observed: expected one of {', '.join(sorted(observed))}"
    for key in ("reason", "title", "category", "expect", "severity", "waived"):
        if key in cell and not _str_or_none(cell[key]):
            return f"{where}.{key}: expected text"
    if "evidence" in cell and not (isinstance(cell["evidence"], list)
                                   and all(isinstance(e, str) for e in cell["evidence"])):
        return f"{where}.evidence: expected a list of text"
    if "duration_s" in cell and not isinstance(cell["duration_s"], (int, float, type(None))):
        return f"{where}.duration_s: expected a number"
    return None


def _check_id(where: str, cid: Any) -> str | None:
    if not (isinstance(cid, str) and len(cid) <= 200 and _CHECK_ID.fullmatch(cid)):
        return f"{where}: {cid!r:.60} is not a check id"
    return None


def _check(data: Mapping[str, Any]) -> str | None:
    """What in a report's structure merge cannot use (None when all is well): every field merge
    reads, with its type and bounds."""
    host = data.get("host")
    if host is not None:
        if not isinstance(host, dict):
            return "host: expected an object"
        for key in ("os", "user_namespaces"):
            if key in host and not isinstance(host[key], (dict, type(None))):
                return f"host.{key}: expected an object"
        for key in ("name", "id", "label", "kernel", "machine", "sandboxcheck"):
            if key in host and not _str_or_none(host[key]):
                return f"host.{key}: expected text"
        if "tools" in host and not (isinstance(host["tools"], list) and all(isinstance(t, str) for t in host["tools"])):
            return "host.tools: expected a list of text"
    for key in ("matrix", "target"):
        if key in data and not isinstance(data[key], (dict, type(None))):
            return f"{key}: expected an object"
    shard = data.get("shard")
    if shard is not None:
        if not isinstance(shard, dict):
            return "shard: expected an object"
        if not (_int(shard.get("count"), 1, MAX_SHARDS) and _int(shard.get("index"), 1, shard["count"])):
            return f"shard: index and count must be whole numbers with 1 <= index <= count <= {MAX_SHARDS}"
        if not _int(shard.get("matrix_checks", 0), 0, MAX_CHECKS):
            return f"shard.matrix_checks: expected a whole number from 0 to {MAX_CHECKS}"
        ids = shard.get("check_ids") or []
        if not isinstance(ids, list) or len(ids) > MAX_CHECKS:
            return f"shard.check_ids: expected a list of at most {MAX_CHECKS} check ids"
        for i, cid in enumerate(ids):
            if (problem := _check_id(f"shard.check_ids[{i}]", cid)):
                return problem
    if data.get("kind") == "survey":
        targets, checks = data.get("targets") or [], data["checks"]
        if not isinstance(targets, list) or len(targets) > MAX_TARGETS:
            return f"targets: expected a list of at most {MAX_TARGETS} targets"
        for i, t in enumerate(targets):
            if not isinstance(t, dict) or not isinstance(t.get("name"), str):
                return f"targets[{i}]: expected an object with a 'name'"
        if len(checks) > MAX_CHECKS:
            return f"checks: more than {MAX_CHECKS} checks"
        for i, check in enumerate(checks):
            if not isinstance(check, dict):
                return f"checks[{i}]: expected an object"
            if (problem := _check_id(f"checks[{i}].id", check.get("id"))):
                return problem
            cells = check.get("cells") or {}
            if not isinstance(cells, dict) or len(cells) > MAX_TARGETS:
                return f"checks[{i}].cells: expected an object of at most {MAX_TARGETS} cells"
            for name, cell in cells.items():
                if (problem := _check_result(f"checks[{i}].cells[{name!r:.60}]", cell, survey=True)):
                    return problem
        return None
    results = data["results"]
    if len(results) > MAX_CHECKS:
        return f"results: more than {MAX_CHECKS} results"
    for i, r in enumerate(results):
        if (problem := _check_result(f"results[{i}]", r) or _check_id(f"results[{i}].id", r.get("id"))):
            return problem
    return None


# -- one run, merged back ---------------------------------------------------

def single_run(fleet: Fleet) -> bool:
    """All inputs are run reports of one target on one host, each check once and none missing:
    the merge is a run report (otherwise the fleet view names what does not add up)."""
    return fleet.kinds == {"run"} and len(fleet.columns) == 1 and not fleet.duplicates and not fleet.incomplete()


def _result(cell: Mapping[str, Any]) -> Result:
    return Result(id=cell["id"], category=cell.get("category", ""), title=cell.get("title", ""),
                  expect=cell.get("expect", ""), observed=Observed(cell.get("observed", "unknown")),
                  status=Status(cell["status"]), errno=cell.get("errno"),
                  evidence=tuple(cell.get("evidence") or ()), reason=cell.get("reason", ""),
                  duration_s=float(cell.get("duration_s") or 0.0), severity=cell.get("severity", "medium"),
                  target=cell.get("target", ""), control=cell.get("control"),
                  probe_action=cell.get("probe_action", ""), layer=cell.get("layer"),
                  waived=cell.get("waived"), accepted=bool(cell.get("accepted")))


def run_report(fleet: Fleet, durations: Sequence[float] = ()) -> RunReport:
    """The RunReport an unsharded run would have written (its only column, in matrix order)."""
    col = fleet.columns[0]
    m = fleet.matrix
    matrix = Matrix(name=str(m.get("name") or ""), path=str(m.get("path") or ""), checks=())
    return RunReport(matrix=matrix, target=col.target_info, started=fleet.started,
                     duration_s=max(durations, default=0.0),
                     results=[_result(col.cells[cid]) for cid in fleet.order if cid in col.cells],
                     preflight=col.preflight, host=col.facts or None,
                     matrix_digest=fleet.digests[0] if fleet.digests else None)


def run_report_dict(fleet: Fleet, report: RunReport) -> dict[str, Any]:
    """``report`` as canonical JSON, with the whole matrix's size and the files it was merged from."""
    data = report.to_dict()
    expected = fleet.columns[0].expected
    data["matrix"]["checks"] = expected or len(report.results)
    data["merged_from"] = fleet.files
    return data


def render_run_json(fleet: Fleet, report: RunReport, out: IO[str]) -> None:
    """The merged run report as canonical JSON."""
    json.dump(run_report_dict(fleet, report), out, indent=2, allow_nan=False)
    out.write("\n")


# -- one survey, merged back --------------------------------------------------

_SHARD_OPTION = re.compile(r"\s--shard(?:=|\s+)\S+")
_CELL_META = ("id", "category", "title", "expect", "severity", "conflicting")


def single_survey(fleet: Fleet) -> bool:
    """All inputs are shards of one survey on one host, each cell once and none missing: the
    merge is that survey's JSON (``survey_dict``)."""
    return (fleet.kinds == {"survey"} and len(fleet.hosts()) == 1 and not fleet.duplicates
            and not fleet.incomplete() and not fleet.disagreements()
            and all(isinstance(d.get("shard"), dict) for _, d in fleet.sources)
            and len({tuple(t.get("name") for t in d.get("targets") or []) for _, d in fleet.sources}) == 1)


def survey_dict(fleet: Fleet) -> dict[str, Any]:
    """The JSON the unsharded survey would have written: every target in the survey's order with
    its summary counted again over the merged cells, every check with every cell."""
    first = fleet.sources[0][1]
    by_key = {c.target: c for c in fleet.columns}
    targets = []
    for info in first.get("targets") or []:
        name = info["name"]
        col = by_key.get(name)
        # the target's entry (versions, preflight, command) from a part that ran some of its cells
        ran = next((t for _, d in fleet.sources for t in d.get("targets") or []
                    if t.get("name") == name and t.get("summary")), info)
        entry = {**ran}
        if col is not None and col.cells and ran.get("summary") is not None:
            entry["summary"] = {k: v for k, v in _summary(col.cells.values()).items() if k != NA}
        targets.append(entry)
    checks = []
    for cid in fleet.order:
        meta = fleet.checks.get(cid, {"id": cid})
        cells = {}
        for info in targets:
            cell = by_key[info["name"]].cells.get(cid) if info["name"] in by_key else None
            if cell is not None:
                cells[info["name"]] = {k: v for k, v in cell.items() if k not in _CELL_META}
        checks.append({"id": cid, **{k: meta.get(k) for k in ("category", "title", "expect", "severity")},
                       "cells": cells})
    statuses = {c["status"] for col in fleet.columns for c in col.cells.values() if not c.get("excused")}
    command = first.get("command")
    return {
        "schema_version": SCHEMA_VERSION, "kind": "survey", "tool": "sandboxcheck", "version": __version__,
        "started": fleet.started, "duration_s": max(fleet.durations, default=0.0),
        "command": _SHARD_OPTION.sub("", command) if isinstance(command, str) else command,
        "host": first.get("host"), "matrix": first.get("matrix"), "targets": targets, "checks": checks,
        "exit_code": status_exit(statuses, unsure=("inconclusive", NA)), "merged_from": fleet.files,
    }


def render_survey_json(fleet: Fleet, out: IO[str]) -> None:
    """The merged survey as JSON."""
    json.dump(survey_dict(fleet), out, indent=2, ensure_ascii=False, allow_nan=False)
    out.write("\n")


# -- fleet formatters ----------------------------------------------------------

def _facts_line(facts: Mapping[str, Any]) -> str:
    return clean(facts_line(facts), 300)


def _cell_text(cell: Mapping[str, Any] | None) -> tuple[str, str]:
    if cell is None:
        return NA, NA
    status = str(cell.get("status"))
    text = "skip" if status == "skip" else str(cell.get("observed"))
    return status, text + (" (conflicting reports)" if cell.get("conflicting") else "")


def _headline(fleet: Fleet) -> str:
    return (f"sandboxcheck fleet: matrix {fleet.matrix.get('name')} ({len(fleet.order)} checks), "
            f"{len(fleet.hosts())} host(s), {len({c.target for c in fleet.columns})} target(s), "
            f"{len(fleet.files)} report(s)")


def _problems(fleet: Fleet) -> list[str]:
    out = [f"{d['kind']} result: {d['check']} for {d['target']} on {d['host']}: "
           + "; ".join(f"{p}: {v}" for p, v in d["found"]) for d in fleet.duplicates]
    out += [f"incomplete: {line}" for line in fleet.incomplete()]
    out += [f"host facts: {line}" for line in fleet.disagreements()]
    if len(fleet.digests) > 1:
        out.append("the reports are of different matrices: " + ", ".join(fleet.digests))
    return out


def _sections(fleet: Fleet) -> list[tuple[str, list[str]]]:
    """What a reader needs before the grid: differences between hosts, problems, each host's facts.

    The differences come by target release: first a line with each host's facts side by side,
    then one line per check that differs. Every line is on one line of text (``clean``)."""
    diffs: list[str] = []
    group = None
    for d in fleet.differences():
        if (d["target"], d["release"]) != group:
            group = (d["target"], d["release"])
            diffs.append(f"{d['target']} ({d['release']}) on "
                         + "; ".join(f"{h}: {f}" for h, f in d["facts"].items()))
        diffs.append(f"  {d['check']}, expect {d['expect']}: " + ", ".join(f"{h} {v}" for h, v in d["hosts"].items()))
    hosts = [f"{host}: {_facts_line(facts)}" for host, facts in fleet.hosts().items()]
    return [(title, [clean(line) if not line.startswith("  ") else "  " + clean(line) for line in lines])
            for title, lines in (("Differences between hosts (same target and release)", diffs),
                                 ("Problems", _problems(fleet)), ("Hosts", hosts)) if lines]


def render_markdown(fleet: Fleet, out: IO[str]) -> None:
    """Markdown fit for a CI job summary: differences first, then the grid."""
    from .report.text import md_code, md_text as _md

    size = 0

    def w(text: str) -> None:
        nonlocal size
        size += len(text.encode())
        out.write(text)

    w(f"## {_md(_headline(fleet))}\n\n")
    for title, lines in _sections(fleet):
        w(f"### {title}\n\n" + "".join(("  - " if line.startswith("  ") else "- ") + f"{_md(line.strip())}\n"
                                        for line in lines) + "\n")
    w("| check | expect | " + " | ".join(md_code(c.key) for c in fleet.columns) + " |\n")
    w("|---|---|" + "---|" * len(fleet.columns) + "\n")
    for n, cid in enumerate(fleet.order):
        if size > MARKDOWN_LIMIT:  # a CI job summary takes 1 MiB: the rest would lose it all
            w(f"\n**{len(fleet.order) - n} more checks not shown**: the summary would pass "
              f"{MARKDOWN_LIMIT // 1024} KiB; the JSON and HTML views have them all.\n")
            return
        cells = []
        for col in fleet.columns:
            status, text = _cell_text(col.cells.get(cid))
            cells.append(f"{_ICON.get(status, '')} {_md(text)}")
        w(f"| {md_code(cid)} | {_md(fleet.checks[cid].get('expect', ''))} | " + " | ".join(cells) + " |\n")
    w("| **failed** | | " + " | ".join(f"**{_summary(c.cells.values())['fail']}**" for c in fleet.columns)
      + " |\n")



def render_table(fleet: Fleet, out: IO[str], color: bool | None = None) -> None:
    """A terminal grid: differences first, then checks down and (target, host) across."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    style = {"pass": "green", "fail": "bold red", "inconclusive": "yellow", "skip": "dim", NA: "dim"}
    console = Console(file=out, force_terminal=color, no_color=color is False, soft_wrap=False, highlight=False)
    if not console.is_terminal:
        console.width = max(160, 40 + 18 * len(fleet.columns))
    console.print(_headline(fleet), markup=False)
    for title, lines in _sections(fleet):
        console.print(f"{title}:", markup=False)
        for line in lines:
            console.print(f"  {line}", markup=False)
    grid = Table("check", "expect", pad_edge=False)
    for c in fleet.columns:
        grid.add_column(Text(clean(c.key)))
    for cid in fleet.order:  # Text, never markup: a report's text is shown as it is
        cells = [_cell_text(col.cells.get(cid)) for col in fleet.columns]
        grid.add_row(Text(cid), Text(clean(fleet.checks[cid].get("expect", ""))),
                     *(Text(clean(text), style=style.get(status, "")) for status, text in cells))
    console.print(grid)


def render_html(fleet: Fleet, out: IO[str]) -> None:
    """One self-contained page (inline CSS, no scripts): differences, hosts, then the grid."""
    e = html.escape
    w = out.write
    colours = {"pass": "#e6f4ea", "fail": "#fce8e6", "inconclusive": "#fef7e0", "skip": "#f1f3f4", NA: "#f1f3f4"}
    w("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
    w(f"<title>{e(_headline(fleet))}</title>\n<style>body{{font:14px system-ui,sans-serif;margin:2em}}"
      "table{border-collapse:collapse}td,th{border:1px solid #dadce0;padding:.2em .5em}</style>\n"
      "</head>\n<body>\n")
    w(f"<h1>{e(_headline(fleet))}</h1>\n")
    for title, lines in _sections(fleet):
        w(f"<h2>{e(title)}</h2>\n<ul>\n" + "".join(f"<li>{e(line)}</li>\n" for line in lines) + "</ul>\n")
    w("<h2>Checks</h2>\n<table>\n<tr><th>check</th><th>expect</th>"
      + "".join(f"<th>{e(c.key)}</th>" for c in fleet.columns) + "</tr>\n")
    for cid in fleet.order:
        w(f"<tr><td><code>{e(cid)}</code></td><td>{e(str(fleet.checks[cid].get('expect', '')))}</td>")
        for col in fleet.columns:
            cell = col.cells.get(cid)
            status, text = _cell_text(cell)
            tip = (cell or {}).get("reason", "")
            w(f"<td style=\"background:{colours.get(status, '#fff')}\" title=\"{e(str(tip))}\">{e(text)}</td>")
        w("</tr>\n")
    w("</table>\n</body>\n</html>\n")


def render_json(fleet: Fleet, out: IO[str]) -> None:
    """The fleet view as JSON."""
    json.dump(fleet.to_dict(), out, indent=2, ensure_ascii=False, allow_nan=False)
    out.write("\n")
