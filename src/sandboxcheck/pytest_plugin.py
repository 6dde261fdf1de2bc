"""pytest plugin: matrices and suites as test items, and a ``sandboxcheck`` fixture.

Thin glue over the core (the only module that imports pytest). Each check of
a matrix becomes one item per target (``baseline.yaml::fs.read.symlink[bwrap-strict]``),
from ``--sandboxcheck-matrix``/``--sandboxcheck-target`` (or their ini twins)
and from suite files named ``*.sandboxcheck.yaml`` (see ``suite.py``).

Items do not run one by one: the first item of a matrix to run runs every
check of that matrix this process was given (``run_targets``: all its targets
interleaved, one control per check), the results are cached for the session
and each item reports its own. Under pytest-xdist a worker runs only the
items the controller has handed it.

Outcomes: pass -> passed; fail -> failed, showing expected vs observed, the
evidence and the check's YAML lines; inconclusive or an unavailable target ->
skipped with the reason (failed under ``--sandboxcheck-strict``); skip ->
skipped; a deviation covered by an active waiver -> xfailed with the waiver's
reason. xfail rather than a pass with a note: a waiver accepts a deviation
that is still there, and pytest's word for "known to fail, for this reason"
is xfail; it stays visible in the summary and in JUnit (as skipped), and
``--runxfail`` shows the waived deviations as the failures they are. An
expired waiver no longer covers anything, so its check fails and says so.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import json
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import pytest

from .matrix.load import MatrixError, load_matrix
from .matrix.select import matches_only, unmatched_only
from .model import Check, Matrix, Result, Status, TranscriptEntry
from .redact import scrub_initial_environ
from .run.harness import Harness
from .run.options import RunOptions
from .run.schedule import run_targets
from .model import RunReport
from .run.roots import check_temp_dir
from .matrix.suite import SuiteError, SuiteOptions, is_suite_file, load_suite, missing_matrix_message, resolve_matrix_ref, resolve_target_ref
from .targets.base import Target, TargetError
from .targets.registry import load_target, parse_target_opts

DEFAULT_TARGET = "landlock"  # the CLI's default too
T = TypeVar("T")


# -- options: each defined once, as --sandboxcheck-NAME and ini sandboxcheck_NAME ------------

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


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register every option of OPTIONS on the command line and in the ini file."""
    group = parser.getgroup("sandboxcheck", "sandboxcheck (is the sandbox holding?)")
    for opt in OPTIONS:
        if opt.ini_type == "linelist":
            group.addoption(opt.flag, action="append", dest=opt.ini, default=None,
                            metavar=opt.metavar, help=opt.help)
        elif opt.ini_type == "bool":
            group.addoption(opt.flag, action="store_true", dest=opt.ini, default=None, help=opt.help)
        else:
            group.addoption(opt.flag, dest=opt.ini, default=None, metavar=opt.metavar, help=opt.help)
        parser.addini(opt.ini, opt.help, type=opt.ini_type)


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


# -- the session's runs: one Harness, results cached --------------------------------------

class RunError(Exception):
    """A run could not happen (not a verdict): the message says why."""


class Runs:
    """Runs matrices for this pytest process, sharing Harnesses and caching results.

    One Harness per set of harness-level options (timeout, workspace keeping,
    fork-server controls), which is one per session unless suites differ in
    timeout; all are closed at the end of the session.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._harnesses: dict[tuple[Any, ...], Harness] = {}
        self._results: dict[tuple[str, str, str], Result] = {}
        self._errors: dict[tuple[str, str, str], str] = {}
        self._unavailable: dict[int, tuple[Target, str | None]] = {}
        self._reports: dict[tuple[Any, ...], RunReport] = {}
        self._loaded: dict[tuple[Any, ...], Any] = {}

    def close(self) -> None:
        """Close every Harness (kills what still runs, removes every temporary path)."""
        while self._harnesses:
            _, harness = self._harnesses.popitem()
            harness.close()

    def unavailable(self, target: Target) -> str | None:
        """Why ``target`` cannot run here (asked once per target), else None."""
        if id(target) not in self._unavailable:
            self._unavailable[id(target)] = (target, target.unavailable())
        return self._unavailable[id(target)][1]

    def run(self, matrix: Matrix, targets: Sequence[Target], options: RunOptions) -> list[RunReport]:
        """``run_targets`` on the session's Harness for these options."""
        problem = check_temp_dir()
        if problem:
            raise RunError(problem)
        key = (options.timeout, options.keep_workspace, options.fork_controls, options.sessions)
        harness = self._harnesses.get(key)
        if harness is None:
            # The test process is the harness here: a leaky target must not find the
            # caller's secrets in its /proc/PID/environ (os.environ stays as it is).
            scrub_initial_environ()
            harness = self._harnesses[key] = Harness(options)
        try:
            return run_targets(matrix, targets, options, harness=harness)
        except BaseException:
            # run_targets closes the Harness on the way out: never reuse it.
            self._harnesses.pop(key, None)
            harness.close()
            raise

    # -- items
    def result(self, item: CheckItem) -> Result:
        """The item's result, running its batch the first time one of its items asks."""
        if item.key not in self._results and item.key not in self._errors:
            self._run_batch(item)
        if item.key in self._errors:
            raise RunError(self._errors[item.key])
        return self._results[item.key]

    def _run_batch(self, item: CheckItem) -> None:
        parent = item.parent
        batch = [i for i in _pending(item) if isinstance(i, CheckItem) and i.parent is parent
                 and i.key not in self._results and i.key not in self._errors]
        if item not in batch:
            batch.insert(0, item)
        node = item.key[0]
        wanted: dict[str, set[str]] = {}
        for i in batch:
            wanted.setdefault(i.check.id, set()).add(i.target.name)
        # Checks wanted for the same targets run together (usually: one group).
        groups: dict[frozenset[str], set[str]] = {}
        for check_id, target_names in wanted.items():
            groups.setdefault(frozenset(target_names), set()).add(check_id)
        plan = item.plan
        for names, ids in groups.items():
            targets = [t for t in plan.targets if t.name in names]
            sub = dataclasses.replace(plan.matrix, checks=tuple(c for c in plan.matrix.checks if c.id in ids))
            try:
                reports = self.run(sub, targets, plan.options)
            except Exception as exc:
                # The other items of the batch report the error without running it again;
                # the item that ran it shows the traceback unless it is a known RunError.
                text = str(exc) if isinstance(exc, RunError) else f"{type(exc).__name__}: {exc}"
                for t in targets:
                    self._errors.update({(node, t.name, i): text for i in ids})
                if item.check.id in ids and item.target.name in names and not isinstance(exc, RunError):
                    raise
                continue
            for target, report in zip(targets, reports):
                for r in report.results:
                    self._results[(node, target.name, r.id)] = r

    # -- fixture
    def cached(self, key: tuple[Any, ...], make: Callable[[], T]) -> T:
        """``make()`` once per ``key`` for this session (loaded matrices and targets)."""
        if key not in self._loaded:
            self._loaded[key] = make()
        return cast(T, self._loaded[key])

    def report(self, matrix: Matrix, target: Target, options: RunOptions) -> RunReport:
        """The report of ``matrix`` against ``target``, run once per session and options."""
        key = (_identity(matrix), id(target), options)
        if key not in self._reports:
            self._reports[key] = self.run(matrix, [target], options)[0]
            self._loaded[("keep", id(target))] = target  # keeps id() unique while cached
        report = self._reports[key]
        return dataclasses.replace(report, results=list(report.results), kept=list(report.kept))

    def check(self, matrix: Matrix, check: Check, target: Target, options: RunOptions) -> Result:
        """One check's result: from a cached report of its matrix, else a run of it alone."""
        full = self._reports.get((_identity(matrix), id(target), options))
        if full is not None:
            return next(r for r in full.results if r.id == check.id)
        sub = dataclasses.replace(matrix, checks=(check,))
        return self.report(sub, target, options).results[0]


def _identity(matrix: Matrix) -> Any:
    try:
        hash(matrix)
        return matrix
    except TypeError:  # a hand-made Matrix holding lists
        return id(matrix)


def _pending(item: CheckItem) -> list[pytest.Item]:
    """Items this process will run from here on: all of them, or under xdist those handed to it so far."""
    items = item.session.items
    if not hasattr(item.config, "workerinput"):
        return list(items)
    for plugin in item.config.pluginmanager.get_plugins():
        queue = getattr(plugin, "torun", None)
        if type(plugin).__name__ != "WorkerInteractor" or queue is None:
            continue
        try:
            # The worker's queue of item indices (xdist internals: checked, with a safe fallback).
            with queue.lock() as queued:
                indices = [getattr(plugin, "item_index", None), getattr(plugin, "nextitem_index", None),
                           *queued]
        except (AttributeError, TypeError):
            break
        return [items[i] for i in indices if isinstance(i, int) and 0 <= i < len(items)]
    return [item]


_RUNS = pytest.StashKey[Runs]()


def _runs(config: pytest.Config) -> Runs:
    return config.stash[_RUNS]


# -- hooks --------------------------------------------------------------------------------

def pytest_configure(config: pytest.Config) -> None:
    """Validate the options (UsageError with the loaders' messages) and set up the session's runs."""
    config.addinivalue_line("markers", "sandboxcheck: one sandboxcheck check against one target")
    if getattr(config.option, "help", False):
        return
    config.stash[_RUNS] = Runs(Settings(config))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Close the session's Harnesses."""
    runs = session.config.stash.get(_RUNS, None)
    if runs is not None:
        runs.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Close the Harnesses also when the session never finished."""
    runs = config.stash.get(_RUNS, None)
    if runs is not None:
        runs.close()


def pytest_report_header(config: pytest.Config) -> list[str]:
    """One header line naming the matrices and targets, when given."""
    runs = config.stash.get(_RUNS, None)
    if runs is None or not runs.settings.active:
        return []
    s = runs.settings
    return [f"sandboxcheck: matrices {', '.join(name for name, _ in s.matrices)}; "
            f"targets {', '.join(t.name for t in s.targets)}"]


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
        collector: pytest.Collector) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Add the command line's (or ini's) matrices to the session's collection."""
    report = yield
    if isinstance(collector, pytest.Session) and report.passed:
        runs = collector.config.stash.get(_RUNS, None)
        if runs is not None and runs.settings.active:
            report.result.extend(_command_line_nodes(collector, runs.settings))
    return report


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the checks --sandboxcheck-only leaves out; UsageError for a pattern that matches none."""
    runs = config.stash.get(_RUNS, None)
    only, layer = runs.settings._pick("only") if runs is not None else ((), None)
    if not only:
        return
    checks = [i for i in items if isinstance(i, CheckItem)]
    problems = unmatched_only({i.check.id for i in checks}, only)
    if problems:
        raise pytest.UsageError(*(p.replace("--only", layer.source["only"]) for p in problems))
    keep = [i for i in items if not isinstance(i, CheckItem) or matches_only(i.check.id, only)]
    if len(keep) != len(items):
        config.hook.pytest_deselected(items=[i for i in checks if not matches_only(i.check.id, only)])
        items[:] = keep


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> SuiteFile | None:
    """Collect suite files (``*.sandboxcheck.yaml``)."""
    if is_suite_file(file_path):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


# -- collection -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Plan:
    """What one matrix node runs: the matrix, its targets, and how."""

    matrix: Matrix
    targets: tuple[Target, ...]
    options: RunOptions
    strict: bool


def _command_line_nodes(session: pytest.Session, settings: Settings) -> list[MatrixNode]:
    options, strict = settings.run_options(), settings.strict()
    nodes: list[MatrixNode] = []
    for name, matrix in settings.matrices:
        if any(n.name == name for n in nodes):
            name = str(Path(matrix.path).resolve())
        plan = Plan(matrix=matrix, targets=tuple(settings.targets), options=options, strict=strict)
        nodes.append(MatrixNode.from_parent(session, name=name, nodeid=name, path=Path(matrix.path),
                                            plan=plan))
    return nodes


class SuiteFile(pytest.File):
    """A ``*.sandboxcheck.yaml`` suite: one node per matrix it names."""

    def collect(self) -> Iterable[MatrixNode]:
        """Load the suite (every problem reported with file and line) and yield its matrices."""
        suite = load_suite(self.path)
        settings = _runs(self.config).settings
        options, strict = settings.run_options(suite.options), settings.strict(suite.options)
        targets = tuple(t.target for t in suite.targets)
        names = [Path(m.path).name for m in suite.matrices]
        for sm, name in zip(suite.matrices, names):
            if names.count(name) > 1:
                name = sm.ref
            plan = Plan(matrix=sm.matrix, targets=targets, options=options, strict=strict)
            yield MatrixNode.from_parent(self, name=name, path=Path(sm.path), plan=plan)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | Any:
        """An invalid suite: its problems, one per line with file and line, no traceback."""
        if isinstance(excinfo.value, SuiteError):
            here = self.config.invocation_params.dir
            return "invalid sandboxcheck suite:\n" + "\n".join(
                str(dataclasses.replace(p, file=_shown_path(Path(p.file), here))) for p in excinfo.value.problems)
        return super().repr_failure(excinfo)


class MatrixNode(pytest.Collector):
    """One matrix against its targets: an item per check and target, checks in matrix order."""

    def __init__(self, *, plan: Plan, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan

    def collect(self) -> Iterable[CheckItem]:
        """An item per check and target (``fs.read.symlink[bwrap-strict]``)."""
        for check in self.plan.matrix.checks:
            for target in self.plan.targets:
                yield CheckItem.from_parent(self, name=f"{check.id}[{target.name}]", check=check,
                                            target=target)


class CheckFailed(Exception):
    """A check's verdict counts as a failure (fail, or inconclusive/unavailable under strict)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


class CheckItem(pytest.Item):
    """One check against one target; its result comes from the session's cached run."""

    def __init__(self, *, check: Check, target: Target, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check
        self.target = target
        self.result: Result | None = None
        self.add_marker("sandboxcheck")
        # -k can select by category, severity, tags and target as well as by id.
        self.extra_keyword_matches.update({check.category, check.severity, target.name, *check.tags})

    @property
    def plan(self) -> Plan:
        """The plan of the matrix node this item belongs to."""
        assert isinstance(self.parent, MatrixNode)
        return self.parent.plan

    @property
    def key(self) -> tuple[str, str, str]:
        """Cache key: matrix node, target, check."""
        assert self.parent is not None
        return (self.parent.nodeid, self.target.name, self.check.id)

    def runtest(self) -> None:
        """Report the cached verdict as a pytest outcome."""
        runs = _runs(self.config)
        r = self.result = runs.result(self)
        self.user_properties.extend([
            ("sandboxcheck.target", self.target.name), ("sandboxcheck.expect", r.expect),
            ("sandboxcheck.observed", r.observed.value), ("sandboxcheck.status", r.status.value),
            ("sandboxcheck.evidence", "; ".join(r.evidence)), ("sandboxcheck.reason", r.reason)])
        if r.status is Status.PASS:
            return
        if r.status is Status.SKIP:
            _skip(r.reason)
        if r.waived:
            pytest.xfail(f"{r.waived} ({r.status.value}: expected {r.expect}, observed {r.observed.value})")
        strict = self.plan.strict
        if r.status is Status.INCONCLUSIVE:
            why = runs.unavailable(self.target)
            message = (f"target {self.target.name!r} is not available here: {why}" if why
                       else f"inconclusive: {r.reason}")
            if not strict:
                _skip(message)
            raise CheckFailed(describe_failure(self.check, r, self.target.name,
                                               f"{message} [--sandboxcheck-strict]"))
        raise CheckFailed(describe_failure(self.check, r, self.target.name))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str | Any:
        """The verdict in words and the check's YAML for a failed check; the message for a run error."""
        if isinstance(excinfo.value, CheckFailed):
            return excinfo.value.text
        if isinstance(excinfo.value, RunError):
            return f"sandboxcheck could not run {self.check.id} against {self.target.name}: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """The matrix file, the check's line, and ``id [target]`` as the failure's heading.

        The heading is not the item's name on purpose: pytest would show a
        name ending the node id like a Python ``Class.method`` and turn the
        dots of the check id into ``::``.
        """
        return (Path(self.check.source or self.plan.matrix.path), max(0, self.check.line - 1),
                f"{self.check.id} [{self.target.name}]")


def _skip(reason: str) -> None:
    """Skip the running item, located at its check's line rather than in this module."""
    try:
        # The flag pytest's own skip marks use; not public, hence the fallback.
        raise pytest.skip.Exception(reason, _use_item_location=True)
    except TypeError:
        pytest.skip(reason)


def check_source(check: Check) -> list[str]:
    """The check's lines of its matrix file, numbered, under a ``file:first-last`` heading."""
    if not check.source or not check.line:
        return []
    try:
        lines = Path(check.source).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    last = max(check.line, check.end_line or check.line)
    chunk = lines[check.line - 1:last]
    while chunk and not chunk[-1].strip():
        chunk.pop()
        last -= 1
    width = len(str(last))
    return [f"{check.source}:{check.line}-{last}:",
            *(f"  {n:>{width}} | {text}" for n, text in enumerate(chunk, check.line))]


def describe_failure(check: Check, r: Result, target: str, note: str = "") -> str:
    """Expected vs observed, the evidence, the reason and the check's YAML lines."""
    lines = [f"{check.id} [{target}]: {check.title}",
             f"  expected: {r.expect}",
             f"  observed: {r.observed.value}  (status {r.status.value}, severity {r.severity})"]
    if r.evidence:
        lines += [f"  evidence: {r.evidence[0]}", *(f"            {e}" for e in r.evidence[1:])]
    else:
        lines.append("  evidence: nothing seen outside the sandbox")
    if r.reason != "; ".join(r.evidence):
        lines.append(f"  reason:   {r.reason}")
    if r.control:
        lines.append(f"  control:  {r.control} without a sandbox")
    if r.layer:
        lines.append(f"  layer:    {r.layer}")
    if check.fix:
        lines.append(f"  fix:      {check.fix}")
    if note:
        lines.append(f"  note:     {note}")
    if r.transcript is not None and r.status in (Status.FAIL, Status.INCONCLUSIVE):
        lines += transcript_lines(r.transcript)
    source = check_source(check)
    return "\n".join(lines + ([""] + source if source else []))


#: Lines of a tool result shown under a failing item (the JSON report has up to 2 KiB).
TRANSCRIPT_LINES = 12


def transcript_lines(transcript: Sequence[TranscriptEntry]) -> list[str]:
    """What the scripted model asked the agent and what the agent's tools answered."""
    if not transcript:
        return ["  agent:    made none of the check's tool calls"]
    out = ["  agent transcript:"]
    for t in transcript:
        state = ("no tool_result (the session ended first)" if t.result is None
                 else f"is_error={str(bool(t.is_error)).lower()}")
        out.append(f"    {t.turn}. {t.tool} (session {t.session}): {state}")
        out.append("       input:  " + json.dumps(dict(t.input), sort_keys=True))
        body = (t.result or "").splitlines()
        for i, line in enumerate(body[:TRANSCRIPT_LINES]):
            out.append(("       result: " if i == 0 else "               ") + line)
        if len(body) > TRANSCRIPT_LINES:
            out.append(f"               [... {len(body) - TRANSCRIPT_LINES} more lines in the JSON report]")
    return out


# -- the fixture ---------------------------------------------------------------------------

MatrixRef = Matrix | str | os.PathLike[str]
TargetRef = Target | str


class Sandboxcheck:
    """The ``sandboxcheck`` fixture: run matrices and checks from Python tests.

    Relative matrix paths resolve against the test file's folder, then the
    folder pytest was started in; a bare name may be a bundled matrix. Runs
    share the session's Harness and are cached per session (same matrix,
    target and options). A target that is not available here skips the test
    (fails it under ``--sandboxcheck-strict``); bad matrices and targets fail
    it with the loader's file:line messages.
    """

    def __init__(self, runs: Runs, base: Path, invocation_dir: Path) -> None:
        self._runs = runs
        self._bases = (base, invocation_dir)

    def matrix(self, ref: MatrixRef) -> Matrix:
        """A loaded matrix: a Matrix as is, a path, or a bundled name."""
        if isinstance(ref, Matrix):
            return ref
        text = os.fspath(ref)
        path = next((p for p in (resolve_matrix_ref(text, b) for b in self._bases) if p), None)
        if path is None:
            pytest.fail(missing_matrix_message(text), pytrace=False)
        stat = path.stat()
        try:
            return self._runs.cached(("matrix", str(path.resolve()), stat.st_mtime_ns, stat.st_size),
                                     lambda: load_matrix(path))
        except MatrixError as exc:
            problem = f"invalid matrix:\n{exc}"
        pytest.fail(problem, pytrace=False)  # outside the except: no chained traceback

    def target(self, ref: TargetRef | None = None) -> Target:
        """A loaded target: a Target as is, a preset, a target file or an inline command."""
        ref = self._runs.settings.default_target() if ref is None else ref
        if isinstance(ref, Target):
            return ref
        resolved = next((r for r in (resolve_target_ref(ref, b) for b in self._bases) if r != ref), ref)
        try:
            opts = self._runs.settings.target_options
            return self._runs.cached(("target", resolved), lambda: load_target(resolved, opts, strict=False))
        except TargetError as exc:
            problem = str(exc)
        pytest.fail(problem, pytrace=False)

    def _options(self, jobs: int | None, timeout: float | None, control: bool | None) -> RunOptions:
        base = self._runs.settings.run_options()
        return dataclasses.replace(base, jobs=jobs or base.jobs, timeout=_first(timeout, base.timeout),
                                   control=_first(control, base.control))

    def _require(self, target: Target) -> None:
        why = self._runs.unavailable(target)
        if why:
            message = f"target {target.name!r} is not available here: {why}"
            if self._runs.settings.strict():
                pytest.fail(message + " [--sandboxcheck-strict]", pytrace=False)
            pytest.skip(message)

    def run(self, matrix: MatrixRef, target: TargetRef | None = None, *, only: Iterable[str] | None = None,
            jobs: int | None = None, timeout: float | None = None,
            control: bool | None = None) -> RunReport:
        """Run the checks of ``matrix`` against ``target`` (default: the first configured
        target, else landlock), with the matrix's waivers applied.

        ``only`` keeps the checks whose id or category it names.
        """
        m, t = self.matrix(matrix), self.target(target)
        if only is not None:
            m = self._select(m, only)
        self._require(t)
        try:
            return self._runs.report(m, t, self._options(jobs, timeout, control))
        except RunError as exc:
            problem = str(exc)
        pytest.fail(problem, pytrace=False)

    @staticmethod
    def _select(m: Matrix, only: Iterable[str]) -> Matrix:
        wanted = [only] if isinstance(only, str) else list(only)
        known = {c.id for c in m.checks} | {c.category for c in m.checks}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            pytest.fail(f"matrix {m.name!r} has no check or category {unknown[0]!r}"
                        f"{_close(unknown[0], known)}", pytrace=False)
        return dataclasses.replace(m, checks=tuple(c for c in m.checks
                                                   if c.id in wanted or c.category in wanted))

    def check(self, check_id: str, target: TargetRef | None = None, matrix: MatrixRef = "baseline",
              *, timeout: float | None = None, control: bool | None = None) -> Result:
        """Run one check of ``matrix`` (default: the bundled baseline) against ``target``."""
        m, t = self.matrix(matrix), self.target(target)
        check = next((c for c in m.checks if c.id == check_id), None)
        if check is None:
            pytest.fail(f"matrix {m.name!r} has no check {check_id!r}"
                        f"{_close(check_id, (c.id for c in m.checks))}", pytrace=False)
        self._require(t)
        try:
            return self._runs.check(m, check, t, self._options(None, timeout, control))
        except RunError as exc:
            problem = str(exc)
        pytest.fail(problem, pytrace=False)

    @staticmethod
    def explain(result: Result) -> str:
        """One line for an assertion message: expected, observed, status and why."""
        return (f"{result.id}: expected {result.expect}, observed {result.observed.value} "
                f"({result.status.value}): {result.reason}")


def _close(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


@pytest.fixture
def sandboxcheck(request: pytest.FixtureRequest) -> Sandboxcheck:
    """Run sandboxcheck matrices and checks from a test: ``sandboxcheck.run(...)``,
    ``sandboxcheck.check(...)`` (see :class:`Sandboxcheck`)."""
    return Sandboxcheck(_runs(request.config), Path(request.path).parent,
                        request.config.invocation_params.dir)
