"""``sandboxcheck validate``: tell what kind of file it is, then check it with that kind's loader.

Every file sandboxcheck reads has a kind: a check matrix (``checks:``), a
suite (``*.sandboxcheck.yaml``: ``matrices:`` and ``targets:``), a target file
(``name:`` and ``command:``, or ``kind: agent``), a JSON report (``--baseline``,
``diff``), an advisory (``vulnerable:`` and ``fixed:``, see ``advisories``). A GitHub Actions workflow that runs sandboxcheck is recognised too:
the matrices and targets its ``sandboxcheck`` commands name are loaded. A
file of no kind above is read as a matrix. Each problem comes with file and
line, as the matrix loader reports them.
"""
from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import safeyaml
from .matrix.lines import MatrixError, Problem, Lines, compose, read_text
from .matrix.load import load_matrix
from .resources import resolve_matrix

#: The kinds ``validate`` knows, as ``--kind`` takes them.
KINDS: tuple[str, ...] = ("matrix", "suite", "target", "report", "workflow", "advisory")


@dataclass(frozen=True, slots=True)
class Validated:
    """A file that passed: its kind and a short summary (``12 checks``)."""

    kind: str
    summary: str


def _n(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


#: Top-level keys that only one kind of file has (a misspelt one counts for the kind it is close to).
_DISTINCT: dict[str, tuple[str, ...]] = {
    "matrix": ("checks", "defaults"),
    "suite": ("matrices", "targets"),
    "target": ("command", "requires", "kernel", "python", "env", "pass_env", "install", "files", "kind", "agent"),
    "report": ("results", "schema_version"),
    "advisory": ("vulnerable", "fixed"),
}


def detect_kind(path: str, data: Any) -> str | None:
    """The kind of a file from its name and top-level keys; None when it is none of them."""
    from .matrix.suite import SUITE_SUFFIXES

    if path.endswith(SUITE_SUFFIXES):
        return "suite"
    if not isinstance(data, dict):
        return None
    if "jobs" in data and ("on" in data or "True" in data):  # YAML 1.1 reads a bare `on` as true
        return "workflow"
    owner = {key: kind for kind, keys in _DISTINCT.items() for key in keys}
    votes: dict[str, int] = {}
    for key in data:
        close = difflib.get_close_matches(str(key), list(owner), n=1, cutoff=0.8)
        if close:
            votes[owner[close[0]]] = votes.get(owner[close[0]], 0) + (2 if close[0] == key else 1)
    return max(votes, key=lambda k: votes[k]) if votes else None


def validate_file(path: str, kind: str | None = None) -> Validated:
    """Validate ``path`` as ``kind`` (detected when None); MatrixError listing every problem."""
    resolved = str(resolve_matrix(path))
    text = read_text(resolved, kind or "matrix")
    node = compose(text, resolved)
    ln = Lines(resolved)
    data = ln.convert(node) if node is not None else None
    # A file of no other kind is read as a matrix, the kind most files given here are.
    kind = kind or detect_kind(resolved, data) or "matrix"
    if kind == "matrix":
        m = load_matrix(resolved)
        return Validated("matrix", f"{len(m.checks)} checks")  # the wording scripts may already parse
    if kind == "suite":
        from .matrix.suite import load_suite

        s = load_suite(resolved)
        return Validated("suite", f"{_n(len(s.matrices), 'matrix', 'matrices')}, {_n(len(s.targets), 'target')}")
    if kind == "advisory":
        from .advisories import load_advisory

        a = load_advisory(resolved)
        return Validated("advisory", f"{a.target} {a.vulnerable} -> {a.fixed}, {_n(len(a.checks), 'check')}")
    if ln.problems:
        raise MatrixError(list(ln.problems))
    if kind == "target":
        return _target(resolved, data, ln)
    if kind == "report":
        return _report(resolved, ln)
    return _workflow(resolved, data, ln)


def _target(path: str, data: Any, ln: Lines) -> Validated:
    from .targets.base import TargetError
    from .targets.registry import load_target

    try:
        target = load_target(path, strict=False)
    except TargetError as exc:
        problems = [_target_problem(path, line, ln) for line in str(exc).splitlines()]
        raise MatrixError(sorted(problems, key=lambda p: p.line)) from None
    return Validated("target", f"target {target.name!r}")


#: Where a target loader's message names the key it is about: ``command: ...``, ``'name' must ...``,
#: ``unknown key 'comand'``.
_KEY_AT = re.compile(r"^(?:unknown key '([^']+)'|'([a-z_]+)'|([a-z_/]+):)")


def _target_problem(path: str, message: str, ln: Lines) -> Problem:
    """One line of a TargetError as a Problem at the line of the key it is about."""
    for prefix in (f"{path}: ", f"{Path(path)}: "):
        message = message.removeprefix(prefix)
    m = _KEY_AT.match(message)
    key = next((g for g in m.groups() if g), "") if m else ""
    key = key.split("/")[-1]  # options/files: the files
    line = ln.key_lines.get((key,), 0) or (1 if ln.lines else 0)
    return Problem(path, line, "", message)


def _report(path: str, ln: Lines) -> Validated:
    from .compare import load_report
    from .policy import BaselineError

    try:
        data = load_report(path)
    except BaselineError as exc:
        message = str(exc).removeprefix(f"{path}: ")
        key = next((k for k in _DISTINCT["report"] if k in message), "")
        raise MatrixError([Problem(path, ln.key_lines.get((key,), 1), "", message)]) from None
    return Validated("report", _n(len(data["results"]), "result"))


#: Subcommands whose first argument is a matrix.
_RUNS_MATRIX = ("run", "survey", "compare", "validate")


def _workflow(path: str, data: dict[str, Any], ln: Lines) -> Validated:
    """A GitHub Actions workflow: the matrices and targets its sandboxcheck commands name must load."""
    from .matrix.suite import missing_matrix_message
    from .targets.base import TargetError
    from .targets.registry import load_target

    problems: list[Problem] = []
    commands = 0
    jobs = data.get("jobs") if isinstance(data.get("jobs"), dict) else {}
    for job_name, job in jobs.items():
        steps = job.get("steps") if isinstance(job, dict) else None
        for i, step in enumerate(steps if isinstance(steps, list) else []):
            script = step.get("run") if isinstance(step, dict) else None
            if not isinstance(script, str):
                continue
            where = ("jobs", job_name, "steps", i, "run")
            for argv in _sandboxcheck_commands(script):
                commands += 1
                matrix, targets = _matrix_and_targets(argv)
                if matrix and "$" not in matrix and not resolve_matrix(matrix).exists():
                    problems.append(Problem(path, ln.line(where), safeyaml.format_path(where),
                                            f"sandboxcheck {argv[0]}: {missing_matrix_message(matrix)}"))
                elif matrix and "$" not in matrix:
                    try:
                        load_matrix(resolve_matrix(matrix))
                    except MatrixError as exc:
                        problems += [Problem(path, ln.line(where), safeyaml.format_path(where),
                                             f"sandboxcheck {argv[0]} {matrix}: {p}") for p in exc.problems]
                for ref in targets:
                    if "$" in ref:
                        continue
                    try:
                        load_target(ref, strict=False)
                    except TargetError as exc:
                        problems.append(Problem(path, ln.line(where), safeyaml.format_path(where), str(exc)))
    if problems:
        raise MatrixError(problems)
    return Validated("workflow", _n(commands, "sandboxcheck command"))


def _sandboxcheck_commands(script: str) -> list[list[str]]:
    """The argv after ``sandboxcheck`` of each command in a shell script (continuation lines joined)."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        for j, word in enumerate(words):
            if word == "sandboxcheck" and j + 1 < len(words) and words[j + 1] in _RUNS_MATRIX:
                out.append(words[j + 1:])
    return out


def _matrix_and_targets(argv: list[str]) -> tuple[str | None, list[str]]:
    """The matrix (first positional argument) and the targets (-t/--target, --before, --after)."""
    matrix, targets = None, []
    rest = iter(argv[1:])
    for word in rest:
        if word in ("-t", "--target", "--before", "--after"):
            targets.append(next(rest, ""))
        elif word.startswith(("--target=", "--before=", "--after=")):
            targets.append(word.partition("=")[2])
        elif word.startswith("-"):
            if word in _VALUE_OPTIONS:
                next(rest, None)
        elif matrix is None:
            matrix = word
    return matrix, targets


#: Options of run/survey/compare that take a value (skipped when looking for the matrix).
_VALUE_OPTIONS = frozenset({"-f", "--format", "-o", "--output", "--report", "--baseline", "-j", "--jobs",
                            "--timeout", "--target-opt", "--agent-sessions", "--only", "-k", "--fail-on",
                            "--kind"})

