"""pytest plugin: matrices and suites as test items, and a ``sandboxcheck`` fixture.

Thin glue over the core (the only module that imports pytest). Each check of
a matrix becomes one item per target (``baseline.yaml::fs.read.symlink[bwrap-strict]``),
from ``--sandboxcheck-matrix``/``--sandboxcheck-target`` (or their ini twins)
and from suite files named ``*.sandboxcheck.yaml`` (see ``suite.py``).

Items do not run one by one: the first item of a matrix to run runs every
check of that matrix this process will run (``run_targets``: all its targets
interleaved, one control per check), the results are cached for the session
and each item reports its own. Under pytest-xdist each item carries an
``xdist_group`` mark (its matrix and target): with ``--dist loadgroup`` a
worker gets whole groups and batches them; with another distribution a
worker cannot know which items it will get, so it runs each item on its own.
Only public pytest and xdist API is used (the pieces live in ``plugin/``).

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

from collections.abc import Generator
from pathlib import Path

import pytest

from .matrix.select import matches_only, unmatched_only
from .matrix.suite import is_suite_file
from .plugin.fixture import Sandboxcheck
from .plugin.items import CheckItem, SuiteFile, _command_line_nodes
from .plugin.options import OPTIONS, Settings
from .plugin.runs import _RUNS, Runs, _runs

__all__ = ["Sandboxcheck", "sandboxcheck"]


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


# -- the session's runs: one Harness, results cached --------------------------------------


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A check item's skip is located at its check's line in the matrix, as its failures are."""
    report = yield
    if isinstance(item, CheckItem) and report.skipped and isinstance(report.longrepr, tuple):
        path, line, _ = item.reportinfo()
        report.longrepr = (str(path), (line or 0) + 1, report.longrepr[2])
    return report


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> SuiteFile | None:
    """Collect suite files (``*.sandboxcheck.yaml``)."""
    if is_suite_file(file_path):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


# -- collection -----------------------------------------------------------------------------


# -- the fixture ---------------------------------------------------------------------------


@pytest.fixture
def sandboxcheck(request: pytest.FixtureRequest) -> Sandboxcheck:
    """Run sandboxcheck matrices and checks from a test: ``sandboxcheck.run(...)``,
    ``sandboxcheck.check(...)`` (see :class:`Sandboxcheck`)."""
    return Sandboxcheck(_runs(request.config), Path(request.path).parent,
                        request.config.invocation_params.dir)
