"""Options of the pytest plugin: each defined once, as --sandboxcheck-NAME and ini sandboxcheck_NAME,
layered command line > suite > ini > default, parsed into ``Settings``."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest

from ..matrix.load import MatrixError, load_matrix
from ..model import Matrix
from ..run.options import RunOptions
from ..matrix.suite import SuiteOptions, missing_matrix_message, resolve_matrix_ref, resolve_target_ref
from ..targets.base import Target, TargetError
from ..targets.registry import load_target, parse_target_opts


DEFAULT_TARGET = "landlock"  # the CLI's default too


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Option:
    """One plugin option: a command line flag and its ini twin (the command line wins)."""

    name: str
    help: str
    ini_type: Literal["linelist", "bool", "string"]  # repeatable flag, flag, or a value
    metavar: str | None = None

    @property
    def flag(self) -> str:
        """The command line flag."""
        return "--sandboxcheck-" + self.name.replace("_", "-")

    @property
    def ini(self) -> str:
        """The ini option name (also the argparse dest)."""
        return "sandboxcheck_" + self.name


OPTIONS: tuple[Option, ...] = (
    Option("matrix", "Matrix file or bundled matrix name (baseline): every check becomes a test "
           "item per target. Repeatable.", "linelist", "MATRIX"),
    Option("target", "Target of the matrices, and the sandboxcheck fixture's default: preset name, "
           f"target file, or inline command containing {{cmd}}. Repeatable (default: {DEFAULT_TARGET}).",
           "linelist", "TARGET"),
    Option("target_opt", "Target option KEY=VALUE (settings=FILE, flags=...), given to every target "
           "that takes it, as the command line's --target-opt. Repeatable.", "linelist", "KEY=VALUE"),
    Option("strict", "Inconclusive checks and unavailable targets fail instead of skipping.", "bool"),
    Option("jobs", "Checks run in parallel (default: cores, shared among xdist workers).", "string", "N"),
    Option("timeout", "Per-check timeout in seconds, overriding the matrices.", "string", "SECONDS"),
    Option("no_control", "Skip the unsandboxed control runs (faster, weaker proof).", "bool"),
    Option("per_check_sessions", "Agent targets: start the agent once per check instead of running "
           "checks one after another in long-lived sessions.", "bool"),
    Option("only", "Only this check id, or the ids a glob such as 'fs.read.*' matches; the other "
           "checks are deselected (pytest's own -k selects too). Repeatable.", "linelist", "ID_OR_GLOB"),
)


_BY_NAME = {o.name: o for o in OPTIONS}


@dataclass(frozen=True, slots=True)
class _Layer:
    """Option values from one source (command line or ini); None means not set there."""

    source: dict[str, str]  # option name -> how to name it in a message
    base: Path  # relative paths resolve against this folder
    matrix: tuple[str, ...] = ()
    target: tuple[str, ...] = ()
    strict: bool | None = None
    jobs: int | None = None
    timeout: float | None = None
    control: bool | None = None
    sessions: bool | None = None
    only: tuple[str, ...] = ()
    target_opt: tuple[str, ...] = ()


def _number(text: str, what: str, kind: type, low: float, high: float) -> Any:
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        word = "an integer" if kind is int else "a number"
        raise pytest.UsageError(f"{what} {text!r}: expected {word} from {low:g} to {high:g}")
    return value


def _layer(config: pytest.Config, from_ini: bool) -> _Layer:
    """The command line's or the ini file's sandboxcheck options, parsed; UsageError if bad."""
    raw: dict[str, Any] = {}
    for opt in OPTIONS:
        value = config.getini(opt.ini) if from_ini else config.getoption(opt.ini)
        if value not in (None, "", [], False):
            raw[opt.name] = value
    source = {name: f"ini option {o.ini}" if from_ini else o.flag for name, o in _BY_NAME.items()}
    if from_ini:
        base = config.inipath.parent if config.inipath else config.rootpath
    else:
        base = config.invocation_params.dir
    jobs = raw.get("jobs")
    timeout = raw.get("timeout")
    return _Layer(
        source=source, base=base, matrix=tuple(raw.get("matrix", ())), target=tuple(raw.get("target", ())),
        strict=True if raw.get("strict") else None,
        jobs=_number(str(jobs).strip(), source["jobs"], int, 1, 64) if jobs is not None else None,
        timeout=_number(str(timeout).strip(), source["timeout"], float, 0.1, 600) if timeout is not None else None,
        control=False if raw.get("no_control") else None,
        sessions=False if raw.get("per_check_sessions") else None, only=tuple(raw.get("only", ())),
        target_opt=tuple(raw.get("target_opt", ())))


def _shown_path(path: Path, base: Path) -> str:
    """``path`` as a person wrote it: relative to ``base`` when inside it."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


class Settings:
    """The plugin's resolved options: command line, then (for suites) the suite, then ini, then default."""

    def __init__(self, config: pytest.Config) -> None:
        self.rootpath = config.rootpath
        self.cli = _layer(config, from_ini=False)
        self.ini = _layer(config, from_ini=True)
        workers = int(getattr(config, "workerinput", {}).get("workercount", 1) or 1)
        self.default_jobs = max(1, (os.cpu_count() or 1) // workers)
        errors: list[str] = []
        self.matrices = self._load_matrices(errors)
        self.targets = self._load_targets(errors, required=bool(self.matrices))
        if errors:
            raise pytest.UsageError(*errors)

    @property
    def active(self) -> bool:
        """Whether matrices were given (the plugin then adds items)."""
        return bool(self.matrices)

    def _pick(self, name: str) -> tuple[tuple[str, ...], _Layer]:
        for layer in (self.cli, self.ini):
            if getattr(layer, name):
                return getattr(layer, name), layer
        return (), self.cli

    def _load_matrices(self, errors: list[str]) -> list[tuple[str, Matrix]]:
        """(node name, matrix) of each matrix given."""
        refs, layer = self._pick("matrix")
        out: list[tuple[str, Matrix]] = []
        seen: set[str] = set()
        for ref in refs:
            what = f"{layer.source['matrix']} {ref}"
            path = resolve_matrix_ref(ref, layer.base)
            if path is None:
                errors.append(f"{what}: {missing_matrix_message(ref)}")
                continue
            if str(path.resolve()) in seen:
                continue
            seen.add(str(path.resolve()))
            try:
                out.append((self._node_name(ref, path, layer.base), load_matrix(path)))
            except MatrixError as exc:
                shown = _shown_path(path, layer.base)
                errors.append(f"{what}: invalid matrix:\n" + "\n".join(
                    str(dataclasses.replace(p, file=shown) if p.file == str(path) else p)
                    for p in exc.problems))
        return out

    def _node_name(self, ref: str, path: Path, base: Path) -> str:
        """``baseline.yaml`` for a bundled matrix, else the path relative to the rootdir."""
        if not (base / ref).is_file():
            return path.name
        try:
            return path.resolve().relative_to(self.rootpath.resolve()).as_posix()
        except ValueError:
            return path.name

    def _load_targets(self, errors: list[str], required: bool) -> list[Target]:
        refs, layer = self._pick("target")
        if not refs and required:
            refs = (DEFAULT_TARGET,)
        out: list[Target] = []
        opts_given, opts_layer = self._pick("target_opt")
        try:
            self.target_options = parse_target_opts(opts_given)
        except TargetError as exc:
            errors.append(f"{opts_layer.source['target_opt']}: {exc}")
            self.target_options = {}
        for ref in refs:
            try:
                target = load_target(resolve_target_ref(ref, layer.base), self.target_options, strict=False)
            except TargetError as exc:
                errors.append(f"{layer.source['target']} {ref}: {exc}")
                continue
            if any(t.name == target.name for t in out):
                errors.append(f"{layer.source['target']} {ref}: another target is also named "
                              f"{target.name!r}; reports and waivers key on the name, so give one "
                              "a target file with a name of its own")
                continue
            out.append(target)
        unused = sorted(set(self.target_options) - {k for t in out for k in t.option_names()})
        if unused and out:
            errors.append(f"{opts_layer.source['target_opt']} {unused[0]}: none of the targets takes this option")
        return out

    def default_target(self) -> str | Target:
        """The fixture's target when a test names none: the first configured, else landlock."""
        return self.targets[0] if self.targets else DEFAULT_TARGET

    def run_options(self, suite: SuiteOptions | None = None) -> RunOptions:
        """RunOptions for a run, layering command line, the suite's options, ini and defaults."""
        s = suite or SuiteOptions()
        return RunOptions(jobs=_first(self.cli.jobs, s.jobs, self.ini.jobs, self.default_jobs),
                          timeout=_first(self.cli.timeout, s.timeout, self.ini.timeout),
                          control=_first(self.cli.control, s.control, self.ini.control, True),
                          sessions=_first(self.cli.sessions, self.ini.sessions, True))

    def strict(self, suite: SuiteOptions | None = None) -> bool:
        """Whether inconclusive results and unavailable targets fail."""
        return bool(_first(self.cli.strict, suite.strict if suite else None, self.ini.strict, False))
