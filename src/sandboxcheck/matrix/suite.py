"""Suites: a repository's sandbox policy in one ``*.sandboxcheck.yaml`` file.

A suite names the matrices to run (paths relative to the suite file, or
bundled names such as ``baseline``), the targets to run them against, the
deviations the team accepts (waivers, the same shape as a matrix's) and run
options. The pytest plugin collects suite files next to a project's tests;
this module only loads and validates them (every problem at once, with file
and line, like the matrix loader) and knows nothing of pytest::

    # yaml-language-server: $schema=<sandboxcheck>/schemas/suite.schema.json
    version: 1
    name: agent-sandbox
    matrices: [baseline, policy/extra.yaml]
    targets: [bwrap-strict, targets/our-wrapper.yaml]
    waivers:
      - {id: network.udp, reason: "ticket 12", expires: 2025-12-31, target: bwrap-strict}
    options: {jobs: 4, timeout: 5, control: true, strict: false}
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any


from .lines import MatrixError, Path_, Problem, Lines, suggest, compose, read_text
from .load import load_matrix, parse_waivers
from ..safeyaml import format_path
from .lines import schema_problems as _matrix_schema_problems  # the same message rules as a matrix
from ..model import Matrix, Waiver
from ..resources import matrices_dir, presets_dir, schema_path
from ..targets.base import Target, TargetError
from ..targets.registry import load_target

#: File names the pytest plugin collects as suites.
SUITE_SUFFIXES: tuple[str, ...] = (".sandboxcheck.yaml", ".sandboxcheck.yml")


class SuiteError(MatrixError):
    """A suite could not be loaded; ``problems`` lists every reason (with file and line)."""


@dataclass(frozen=True, slots=True)
class SuiteOptions:
    """Run options a suite sets; None means "not set here" (the caller's default applies)."""

    jobs: int | None = None
    timeout: float | None = None
    control: bool | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class SuiteMatrix:
    """One matrix of a suite: how the suite names it, where it is, and the loaded matrix.

    ``matrix`` already carries the suite's waivers for its checks, after its own.
    """

    ref: str
    path: str
    line: int
    matrix: Matrix


@dataclass(frozen=True, slots=True)
class SuiteTarget:
    """One target of a suite: how the suite names it, its line, and the loaded target."""

    ref: str
    line: int
    target: Target


@dataclass(frozen=True, slots=True)
class Suite:
    """A loaded and validated suite."""

    name: str
    path: str
    matrices: tuple[SuiteMatrix, ...]
    targets: tuple[SuiteTarget, ...]
    waivers: tuple[Waiver, ...] = ()
    options: SuiteOptions = SuiteOptions()
    description: str = ""


def is_suite_file(path: str | Path) -> bool:
    """Whether a file name marks a suite (``*.sandboxcheck.yaml``)."""
    return Path(path).name.endswith(SUITE_SUFFIXES)


def bundled_matrices() -> list[str]:
    """Names of the matrices that ship with sandboxcheck."""
    try:
        return sorted(p.stem for p in matrices_dir().glob("*.yaml"))
    except FileNotFoundError:
        return []


def resolve_matrix_ref(ref: str, base: Path) -> Path | None:
    """A matrix file: ``ref`` relative to ``base`` (or absolute), else a bundled name; None if neither."""
    path = base / Path(ref).expanduser()
    if path.is_file():
        return path
    name = ref.removesuffix(".yaml")
    if "/" not in name and name in bundled_matrices():
        return matrices_dir() / f"{name}.yaml"
    return None


def missing_matrix_message(ref: str) -> str:
    """Why ``ref`` names no matrix, listing the bundled ones."""
    return (f"no matrix file {ref!r}, and not a bundled matrix "
            f"({', '.join(bundled_matrices()) or 'none installed'})")


def resolve_target_ref(ref: str, base: Path) -> str:
    """The reference to hand to ``load_target``: presets and inline commands as they are,
    target files relative to ``base``."""
    if (presets_dir() / f"{ref}.yaml").exists() or "{cmd" in ref:
        return ref
    path = base / Path(ref).expanduser()
    return str(path) if path.exists() else ref


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json.loads(schema_path("suite").read_text()))


def _schema_problems(data: Any, ln: Lines) -> list[Problem]:
    """Schema errors worded like the matrix loader's (the same code)."""
    return _matrix_schema_problems(data, ln, _validator(), what="suite")


def _strings(data: dict[str, Any], key: str) -> Iterable[tuple[int, str]]:
    raw = data.get(key)
    if isinstance(raw, list):
        yield from ((i, v) for i, v in enumerate(raw) if isinstance(v, str) and v)


def parse_suite(text: str, file: str = "<suite>", base: Path | None = None) -> Suite:
    """Parse and validate suite text, loading its matrices and targets.

    Relative references resolve against ``base`` (default: the folder of
    ``file``). Raises SuiteError listing every problem: the suite's own (with
    its lines) and those of each matrix it names (with the matrix's lines).
    """
    base = base if base is not None else Path(file).parent
    node = compose(text, file, SuiteError)
    if node is None:
        raise SuiteError([Problem(file, 0, "", "the suite is empty")])
    ln = Lines(file)
    data = ln.convert(node)
    problems = list(ln.problems)
    if not isinstance(data, dict):
        raise SuiteError(problems + [Problem(file, 1, "", "a suite is a mapping with 'matrices' and 'targets'")])
    problems += _schema_problems(data, ln)

    def add(path: Path_, msg: str) -> None:
        problems.append(Problem(file, ln.line(path), format_path(path), msg))

    matrices: list[SuiteMatrix] = []
    seen_paths: dict[str, int] = {}
    for i, ref in _strings(data, "matrices"):
        here: Path_ = ("matrices", i)
        path = resolve_matrix_ref(ref, base)
        if path is None:
            add(here, missing_matrix_message(ref) + " (paths are relative to the suite file)")
            continue
        key = str(path.resolve())
        if key in seen_paths:
            add(here, f"matrix {ref!r} is already in the suite (line {seen_paths[key]})")
            continue
        seen_paths[key] = ln.line(here)
        try:
            matrix = load_matrix(path)
        except MatrixError as exc:
            add(here, f"matrix {ref!r} is invalid ({len(exc.problems)} problem"
                f"{'s' if len(exc.problems) != 1 else ''} below)")
            problems.extend(exc.problems)
            continue
        matrices.append(SuiteMatrix(ref=ref, path=str(path), line=ln.line(here), matrix=matrix))

    targets: list[SuiteTarget] = []
    names: dict[str, int] = {}
    for i, ref in _strings(data, "targets"):
        here = ("targets", i)
        try:
            target = load_target(resolve_target_ref(ref, base))
        except TargetError as exc:
            add(here, str(exc).replace("\n", "; "))
            continue
        if ref in (t.ref for t in targets):
            add(here, f"target {ref!r} is already in the suite (line {names[target.name]})")
            continue
        if target.name in names:
            add(here, f"target {ref!r} is named {target.name!r} like the target at line "
                f"{names[target.name]}: reports and waivers key on the name, so give one a "
                "target file with a name of its own")
            continue
        names[target.name] = ln.line(here)
        targets.append(SuiteTarget(ref=ref, line=ln.line(here), target=target))

    ids = {c.id for m in matrices for c in m.matrix.checks}
    complete = bool(matrices) and len(matrices) == len(data.get("matrices") or [])  # else an id may be in a bad one
    raw_waivers: list[Any] = data["waivers"] if isinstance(data.get("waivers"), list) else []
    for i, w in enumerate(raw_waivers):
        if not isinstance(w, dict):
            continue
        if complete and isinstance(w.get("id"), str) and w["id"] not in ids:
            add(("waivers", i, "id"), f"waiver for unknown check id {w['id']!r}{suggest(w['id'], ids)}")
        if isinstance(w.get("expires"), str):
            try:
                dt.date.fromisoformat(w["expires"])
            except ValueError:
                if not any(p.where == format_path(("waivers", i, "expires")) for p in problems):
                    add(("waivers", i, "expires"), f"{w['expires']!r} is not a date (YYYY-MM-DD)")
        if isinstance(w.get("target"), str) and len(targets) == len(data.get("targets") or []) \
                and w["target"] not in names:
            add(("waivers", i, "target"), f"waiver for target {w['target']!r}, which this suite does "
                f"not run{suggest(w['target'], names)} (its targets: {', '.join(names)})")

    if problems:
        problems.sort(key=lambda p: (p.file != file, p.file, p.line, p.where))
        raise SuiteError(problems)
    waivers = parse_waivers(raw_waivers, file, ln)
    merged = tuple(dataclasses.replace(m, matrix=dataclasses.replace(
        m.matrix, waivers=m.matrix.waivers + tuple(w for w in waivers
                                                   if w.id in {c.id for c in m.matrix.checks})))
        for m in matrices)
    raw_opts = data.get("options") or {}
    options = SuiteOptions(jobs=raw_opts.get("jobs"),
                           timeout=float(raw_opts["timeout"]) if "timeout" in raw_opts else None,
                           control=raw_opts.get("control"), strict=raw_opts.get("strict"))
    name = data.get("name") or Path(file).name.removesuffix(".yaml").removesuffix(".yml") \
        .removesuffix(".sandboxcheck")
    return Suite(name=name, path=file, matrices=merged, targets=tuple(targets), waivers=waivers,
                 options=options, description=data.get("description", ""))


def load_suite(path: str | Path) -> Suite:
    """Load a suite file; raises SuiteError (with file and line) on any problem."""
    return parse_suite(read_text(path, "suite", SuiteError), str(path), Path(path).parent)
