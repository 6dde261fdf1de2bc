"""Published sandbox bypasses, replayed: the advisory corpus and ``sandboxcheck replay``.

An advisory file (``advisories/<id>.yaml``, one advisory each) names a
pinnable target, the last release with the bypass (``vulnerable``), the first
without it (``fixed``), the matrix and the checks that show it, and the
settings the bypass needs::

    id: CVE-2025-66479
    title: Empty allowedDomains left the sandbox on the host's network
    url: https://github.com/advisories/GHSA-9gqj-5w7c-vx47
    target: srt-settings
    vulnerable: 0.0.15
    fixed: 0.0.16
    settings: {network: {allowedDomains: []}}   # written to a JSON file: --target-opt settings=FILE
    target_opts: {}                             # further --target-opt KEY=VALUE
    matrix: baseline                            # a bundled matrix, or a path beside the file
    checks: [network.tcp]

A replay runs the checks against both releases, interleaved check by check
(``runner.run_targets``, as ``compare`` does), and judges the pair with
``judge``, a pure function: ``reproduced`` when every check is observed
allowed in the vulnerable release and denied in the fixed one, ``not
reproduced`` when a check shows otherwise, ``could not run`` when a release
does not install or start here or a check proves nothing (inconclusive).
"Could not run" is a result, never an exception.

Running is behind ``Evaluator`` (the real one installs and runs the releases;
tests give a fake), so the verdict logic knows nothing of npm or sandboxes.
"""
from __future__ import annotations

import difflib
import json
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .model import status_exit
from .compare import Change, classify, results_by_id
from .matrix.lines import MatrixError, Problem, Lines, compose, read_text

#: Statuses of a replayed advisory, in the order a summary lists them.
REPRODUCED, NOT_REPRODUCED, COULD_NOT_RUN = "reproduced", "not reproduced", "could not run"
STATUSES: tuple[str, ...] = (REPRODUCED, NOT_REPRODUCED, COULD_NOT_RUN)
#: Keys an advisory file may have; the first ones are required.
REQUIRED_KEYS: tuple[str, ...] = ("id", "title", "url", "target", "vulnerable", "fixed", "matrix", "checks")
OPTIONAL_KEYS: tuple[str, ...] = ("description", "settings", "target_opts")
#: An advisory id: a CVE or GHSA id, or an http(s) address (an issue, a changelog entry).
_ID = re.compile(r"^(CVE-\d{4}-\d{4,}|GHSA(-[23456789cfghjmpqrvwx]{4}){3}|https?://\S+)$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$")


class AdvisoryError(MatrixError):
    """An advisory file (or the corpus) is invalid; ``problems`` lists every reason with its line."""


@dataclass(frozen=True, slots=True)
class Advisory:
    """One published bypass: where it is, which releases, and the checks that show it."""

    id: str
    title: str
    url: str
    target: str  # a pinnable preset
    vulnerable: str  # the release the checks leak in
    fixed: str  # the release they are denied in
    matrix: str  # a bundled matrix name, or a path (relative ones are beside the file)
    checks: tuple[str, ...]
    settings: Mapping[str, Any] | None = None  # given to the target as a settings file
    target_opts: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    file: str = ""

    @property
    def name(self) -> str:
        """The short name ``replay`` takes and tables show: the file's name, else the id."""
        return Path(self.file).stem if self.file else self.id

    def matrix_ref(self) -> str:
        """The matrix file: a bundled one by name, else a path resolved beside the advisory file."""
        from .resources import bundled_matrices, matrices_dir

        if self.matrix in bundled_matrices():
            # By its full path: a bare name would resolve to a folder of the same name in the cwd.
            return str(matrices_dir() / f"{self.matrix}.yaml")
        if not self.file or os.path.isabs(self.matrix):
            return self.matrix
        return str(Path(self.file).parent / self.matrix)


def corpus_dir() -> Path:
    """The folder of the bundled advisories."""
    from .resources import _data_dir

    return _data_dir("advisories")


def _problems(data: Any, ln: Lines, file: str) -> list[Problem]:
    """Every problem of an advisory mapping (its keys, their types, the target and releases)."""
    def at(key: str, message: str, path: tuple[str | int, ...] = ()) -> Problem:
        full = (key, *path) if key else ()
        line = ln.line(full) or ln.key_lines.get((key,), 0) or 1
        where = key + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        return Problem(file, line, where, message)

    if not isinstance(data, dict):
        return [Problem(file, 1, "", "an advisory file holds one mapping (id, title, url, target, ...)")]
    out: list[Problem] = []
    known = REQUIRED_KEYS + OPTIONAL_KEYS
    for key in data:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            out.append(Problem(file, ln.key_lines.get((key,), 1), "", f"unknown key {key!r}"
                               + (f" (did you mean {close[0]!r}?)" if close else "")))
    for key in REQUIRED_KEYS:
        if key not in data:
            out.append(Problem(file, 1, "", f"missing required key {key!r}"))
    for key in ("id", "title", "url", "target", "vulnerable", "fixed", "matrix", "description"):
        if key in data and (not isinstance(data[key], str) or not data[key].strip()):
            out.append(at(key, f"must be a non-empty text, not {data[key]!r}"))
    text = {k: v for k, v in data.items() if isinstance(v, str) and v.strip()}
    if "id" in text and not _ID.match(text["id"]):
        out.append(at("id", f"{text['id']!r} is not a CVE id (CVE-2025-66479), a GHSA id or an http(s) address"))
    if "url" in text and not text["url"].startswith(("https://", "http://")):
        out.append(at("url", f"{text['url']!r} is not an http(s) address"))
    for key in ("vulnerable", "fixed"):
        if key in text and not _VERSION.match(text[key]):
            out.append(at(key, f"{text[key]!r} is not a release number such as 0.0.16 (quote it in YAML)"))
    if "target" in text:
        from .targets.registry import pinnable_presets

        names = pinnable_presets()
        if text["target"] not in names:
            close = difflib.get_close_matches(text["target"], names, n=1)
            out.append(at("target", f"{text['target']!r} is not a pinnable preset"
                          + (f" (did you mean {close[0]!r}?)" if close else f"; pinnable: {', '.join(names)}")))
    if _VERSION.match(text.get("vulnerable", "")) and _VERSION.match(text.get("fixed", "")):
        from .targets.pinning import version_key

        if version_key(text["vulnerable"]) >= version_key(text["fixed"]):
            out.append(at("fixed", f"{text['fixed']} is not newer than the vulnerable {text['vulnerable']}"))
    checks = data.get("checks")
    if "checks" in data:
        if not isinstance(checks, list) or not checks:
            out.append(at("checks", "must be a non-empty list of check ids"))
        else:
            for i, cid in enumerate(checks):
                if not isinstance(cid, str) or not cid.strip():
                    out.append(at("checks", f"must be a check id, not {cid!r}", (i,)))
                elif checks.index(cid) != i:
                    out.append(at("checks", f"{cid!r} is listed twice", (i,)))
    if "settings" in data and not isinstance(data["settings"], dict):
        out.append(at("settings", "must be a mapping (written to a JSON file given as --target-opt settings=FILE)"))
    opts = data.get("target_opts")
    if "target_opts" in data:
        if not isinstance(opts, dict):
            out.append(at("target_opts", "must map option names to texts (as --target-opt KEY=VALUE)"))
        else:
            for key, value in opts.items():
                if not re.fullmatch(r"[a-z_]+", key) or not isinstance(value, str):
                    out.append(at("target_opts", f"{key}: must be a lowercase option name with a text value",
                                  (key,)))
            if "settings" in opts and "settings" in data:
                out.append(at("target_opts", "settings is given twice: keep 'settings' or target_opts.settings",
                              ("settings",)))
    return out


def _check_problems(adv: Advisory, ln: Lines) -> list[Problem]:
    """The matrix cannot be loaded, or a listed check is not in it (with a did-you-mean)."""
    from .matrix.load import load_matrix
    from .resources import resolve_matrix

    ref = adv.matrix_ref()
    line = ln.key_lines.get(("matrix",), 1)
    path = resolve_matrix(ref)
    if not path.exists():
        from .resources import bundled_matrices

        names = bundled_matrices()
        close = difflib.get_close_matches(adv.matrix, names, n=1)
        return [Problem(adv.file, line, "matrix", f"{adv.matrix!r} is neither a bundled matrix nor a file"
                        + (f" (did you mean {close[0]!r}?)" if close else f"; bundled: {', '.join(names)}"))]
    try:
        m = load_matrix(path)
    except MatrixError as exc:
        return [Problem(adv.file, line, "matrix", f"{adv.matrix!r} does not load: {exc.problems[0]}")]
    ids = [c.id for c in m.checks]
    out = []
    for i, cid in enumerate(adv.checks):
        if cid not in ids:
            close = difflib.get_close_matches(cid, ids, n=1)
            out.append(Problem(adv.file, ln.line(("checks", i)) or line, f"checks[{i}]",
                               f"no check {cid!r} in matrix {m.name!r}"
                               + (f" (did you mean {close[0]!r}?)" if close else "")))
    return out


def load_advisory(path: str | Path) -> Advisory:
    """An advisory file, validated (its matrix and checks included); AdvisoryError lists every problem."""
    file = str(path)
    node = compose(read_text(path, "advisory", AdvisoryError), file, AdvisoryError)
    ln = Lines(file)
    data = ln.convert(node) if node is not None else None
    problems = list(ln.problems) + _problems(data, ln, file)
    if problems:
        # The matrix and its checks are looked at too when they are well formed: every problem at once.
        if isinstance(data, dict) and isinstance(data.get("matrix"), str) and data["matrix"].strip() \
                and isinstance(data.get("checks"), list) and all(isinstance(c, str) for c in data["checks"]):
            problems += _check_problems(Advisory("", "", "", "", "", "", data["matrix"], tuple(data["checks"]),
                                                 file=file), ln)
        raise AdvisoryError(sorted(problems, key=lambda p: p.line))
    adv = Advisory(id=data["id"], title=data["title"], url=data["url"], target=data["target"],
                   vulnerable=data["vulnerable"], fixed=data["fixed"], matrix=data["matrix"],
                   checks=tuple(data["checks"]), settings=data.get("settings"),
                   target_opts=dict(data.get("target_opts") or {}), description=data.get("description", ""),
                   file=file)
    problems = _check_problems(adv, ln)
    if problems:
        raise AdvisoryError(problems)
    return adv


def load_corpus(folder: str | Path | None = None) -> list[Advisory]:
    """Every ``*.yaml`` advisory of ``folder`` (the bundled corpus by default), in id order.

    AdvisoryError lists the problems of every bad file, and ids given twice.
    """
    root = Path(folder) if folder is not None else corpus_dir()
    if not root.is_dir():
        raise AdvisoryError([Problem(str(root), 0, "", "not a folder of advisory files")])
    found: list[Advisory] = []
    problems: list[Problem] = []
    for path in sorted(root.glob("*.yaml")):
        try:
            found.append(load_advisory(path))
        except AdvisoryError as exc:
            problems += exc.problems
    seen: dict[str, str] = {}
    for adv in found:
        if adv.id in seen:
            problems.append(Problem(adv.file, 1, "id", f"{adv.id!r} is also the id of {seen[adv.id]}"))
        seen.setdefault(adv.id, adv.file)
    if problems:
        raise AdvisoryError(problems)
    if not found:
        raise AdvisoryError([Problem(str(root), 0, "", "no advisory files (*.yaml) in this folder")])
    return sorted(found, key=lambda a: a.id)


def select(corpus: Sequence[Advisory], ids: Sequence[str]) -> list[Advisory]:
    """The advisories ``ids`` names, by id or file name, case aside (every one when empty);
    AdvisoryError for an unknown one, with the closest name."""
    if not ids:
        return list(corpus)
    # An advisory is named by its id or by its file's name (shorter than an address).
    names = {**{a.name.lower(): a for a in corpus}, **{a.id.lower(): a for a in corpus}}
    out = []
    for wanted in ids:
        adv = names.get(wanted.lower())
        if adv is None:
            short = [a.name for a in corpus]
            close = difflib.get_close_matches(wanted, [*short, *(a.id for a in corpus)], n=1, cutoff=0.5)
            raise AdvisoryError([Problem("replay", 0, "", f"unknown advisory {wanted!r}"
                                         + (f" (did you mean {close[0]!r}?)" if close
                                            else f"; known: {', '.join(short)}"))])
        if adv not in out:
            out.append(adv)
    return out


@dataclass(frozen=True, slots=True)
class Runs:
    """What running an advisory's checks gave: the two canonical JSON reports, or why there are none."""

    vulnerable: Mapping[str, Any] | None = None
    fixed: Mapping[str, Any] | None = None
    could_not_run: str = ""  # why the releases could not be run here
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """One listed check: how it moved from the vulnerable release to the fixed one, and whether that fits."""

    change: Change
    fits: bool | None  # True: allowed then denied; False: shown otherwise; None: proved nothing

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        c = self.change
        return {"id": c.id, "vulnerable": {"status": c.before_status, "observed": c.before},
                "fixed": {"status": c.after_status, "observed": c.after},
                "fits": self.fits, "detail": c.detail}

    def sentence(self) -> str:
        """``env.proc-1: denied in 0.0.65 (expected allowed)`` style text, without the releases."""
        c = self.change
        return f"{c.id}: vulnerable {c.before or 'absent'} ({c.before_status}), fixed {c.after or 'absent'} " \
               f"({c.after_status})"


@dataclass(frozen=True, slots=True)
class Replay:
    """The verdict on one advisory."""

    advisory: Advisory
    status: str  # one of STATUSES
    reason: str
    checks: tuple[CheckOutcome, ...] = ()
    seconds: float = 0.0
    #: The digest of the matrix (with the advisory's checks) both releases ran, None when none ran.
    matrix_digest: str | None = None
    #: Where both releases ran (hostfacts.host_facts, the tools of both joined), None when none ran.
    host: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        a = self.advisory
        return {"name": a.name, "id": a.id, "title": a.title, "url": a.url, "target": a.target, "vulnerable": a.vulnerable,
                "fixed": a.fixed, "matrix": a.matrix,
                **({"matrix_digest": self.matrix_digest} if self.matrix_digest else {}),
                "status": self.status, "reason": self.reason,
                "seconds": round(self.seconds, 2), "checks": [c.to_dict() for c in self.checks]}


def joined_host(hosts: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """One host entry for reports made on one host: the first one's facts with every report's tools."""
    present = [h for h in hosts if h]
    if not present:
        return None
    return {**present[0], "tools": sorted({str(t) for h in present for t in h.get("tools") or ()})}


def _fits(change: Change) -> bool | None:
    unsure = {"inconclusive", "skip", None}
    if change.before == "denied" or change.after == "allowed":
        return False  # conclusive evidence against the advisory, whatever the other side proved
    if change.before_status in unsure or change.after_status in unsure:
        return None
    return change.before == "allowed" and change.after == "denied"


def judge(advisory: Advisory, runs: Runs) -> Replay:
    """The verdict on ``advisory`` from its two runs (a pure function)."""
    if runs.could_not_run or runs.vulnerable is None or runs.fixed is None:
        return Replay(advisory, COULD_NOT_RUN, runs.could_not_run or "no report of one of the releases",
                      seconds=runs.seconds)
    matrix = runs.vulnerable.get("matrix")
    facts = {"matrix_digest": matrix.get("digest") if isinstance(matrix, Mapping) else None,
             "host": joined_host([runs.vulnerable.get("host"), runs.fixed.get("host")])}
    before, after = results_by_id(runs.vulnerable), results_by_id(runs.fixed)
    outcomes = tuple(CheckOutcome(c, _fits(c)) for c in
                     (classify(before.get(cid), after.get(cid)) if cid in before or cid in after
                      else Change(cid, "removed", None, None, "not in either report")
                      for cid in advisory.checks))
    wrong = [o for o in outcomes if o.fits is False]
    unsure = [o for o in outcomes if o.fits is None]
    if wrong:
        reason = "; ".join(o.sentence() for o in wrong)
        return Replay(advisory, NOT_REPRODUCED, reason, outcomes, runs.seconds, **facts)
    if unsure:
        reason = "; ".join(f"{o.sentence()}: {o.change.detail}"[:300] for o in unsure)
        return Replay(advisory, COULD_NOT_RUN, f"a check proved nothing: {reason}", outcomes, runs.seconds,
                      **facts)
    return Replay(advisory, REPRODUCED, f"{len(outcomes)} check(s) allowed in {advisory.vulnerable}, "
                  f"denied in {advisory.fixed}", outcomes, runs.seconds, **facts)


class Evaluator(ABC):
    """Runs an advisory's checks against its vulnerable and fixed releases."""

    @abstractmethod
    def run(self, advisory: Advisory) -> Runs:
        """Both reports, or ``Runs(could_not_run=...)``; never raises for a release that cannot run."""


class PinnedEvaluator(Evaluator):
    """Installs (or reuses from the cache) both releases and runs the checks, interleaved check by check."""

    def __init__(self, run_options: Any = None, progress: Callable[[str], None] = lambda _line: None) -> None:
        self.run_options = run_options
        self.progress = progress

    def run(self, advisory: Advisory) -> Runs:
        """Run ``advisory``'s checks against ``target@vulnerable`` and ``target@fixed``."""
        import time

        from .bisect import BisectError, select_checks
        from .matrix.load import load_matrix
        from .resources import resolve_matrix
        from .run.schedule import run_targets
        from .targets.base import TargetError
        from .targets.registry import load_target

        t0 = time.monotonic()
        try:
            matrix = select_checks(load_matrix(resolve_matrix(advisory.matrix_ref())), advisory.checks)
        except (MatrixError, BisectError) as exc:
            return Runs(could_not_run=f"matrix {advisory.matrix}: {str(exc).splitlines()[0]}")
        with tempfile.TemporaryDirectory(prefix="sandboxcheck-advisory-") as tmp:
            options = dict(advisory.target_opts)
            if advisory.settings is not None:
                settings = Path(tmp) / "settings.json"
                settings.write_text(json.dumps(advisory.settings), encoding="utf-8")
                options["settings"] = str(settings)
            targets = []
            for version in (advisory.vulnerable, advisory.fixed):
                ref = f"{advisory.target}@{version}"
                self.progress(f"{advisory.name}: {ref}: installing (cached after the first time)")
                try:
                    target = load_target(ref, options)
                except TargetError as exc:
                    return Runs(could_not_run=f"{ref}: {str(exc).splitlines()[0]}", seconds=time.monotonic() - t0)
                why = target.unavailable()
                if why:
                    return Runs(could_not_run=f"{ref} is not available here: {why}", seconds=time.monotonic() - t0)
                targets.append(target)
            self.progress(f"{advisory.name}: running {len(matrix.checks)} check(s) against "
                          f"{advisory.vulnerable} and {advisory.fixed}, interleaved")
            vulnerable, fixed = (r.to_dict() for r in run_targets(matrix, targets, self.run_options))
        return Runs(vulnerable, fixed, seconds=time.monotonic() - t0)


def replay(advisories: Sequence[Advisory], evaluator: Evaluator,
           done: Callable[[Replay], None] = lambda _replay: None) -> list[Replay]:
    """Run and judge each advisory in turn; ``done`` hears each verdict as it comes."""
    out = []
    for a in advisories:
        out.append(judge(a, evaluator.run(a)))
        done(out[-1])
    return out


def exit_code(replays: Sequence[Replay]) -> int:
    """0 when every advisory was reproduced, 1 when one was not, else 3 when one could not run."""
    return status_exit(("fail" if r.status == NOT_REPRODUCED else r.status for r in replays),
                       unsure=(COULD_NOT_RUN,))


def summary_line(replays: Sequence[Replay]) -> str:
    """``3 reproduced, 1 could not run`` (of N advisories)."""
    counts = [f"{sum(r.status == s for r in replays)} {s}" for s in STATUSES if any(r.status == s for r in replays)]
    return f"{', '.join(counts) or 'nothing replayed'} (of {len(replays)} advisories)"


def render(replays: Sequence[Replay], fmt: str, out: IO[str]) -> None:
    """Write replay verdicts as a table (text) or json (``schema_version`` 1)."""
    if fmt == "json":
        host = joined_host([r.host for r in replays])
        json.dump({"schema_version": 1, "command": "replay", "summary": {s: sum(r.status == s for r in replays)
                                                                         for s in STATUSES},
                   **({"host": host} if host is not None else {}),
                   "advisories": [r.to_dict() for r in replays]}, out, indent=2)
        out.write("\n")
        return
    width = max([len(r.advisory.name) for r in replays] + [8])
    for r in replays:
        a = r.advisory
        out.write(f"{a.name:<{width}}  {r.status.upper():<14}  {a.target} {a.vulnerable} -> {a.fixed}  "
                  f"({r.seconds:.1f} s)\n")
        out.write(f"{'':<{width}}  {a.title}" + (f" [{a.id}]" if a.id != a.name else "") + "\n")
        out.write(f"{'':<{width}}  {r.reason}\n")
    out.write(summary_line(replays) + "\n")


__all__ = ["Advisory", "AdvisoryError", "CheckOutcome", "Evaluator", "PinnedEvaluator", "Replay", "Runs",
           "STATUSES", "corpus_dir", "exit_code", "judge", "load_advisory", "load_corpus", "render", "replay",
           "select", "summary_line"]
