"""Command line: ``sandboxcheck run|validate|targets|probes``."""
from __future__ import annotations

import math
import os
import signal
import stat
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .matrix import MatrixError, load_matrix
from .model import Result
from .compare import DEFAULT_FAIL_ON, FAIL_ON_WORDS, Comparison, diff_reports, load_report, matrix_mismatch
from .compare import render as render_diff
from .compare import results_by_id, side
from .policy import BaselineError, apply_baseline, load_baseline
from .probes import PROBES
from .resources import resolve_matrix
from .runner import Progress, RunOptions, check_temp_dir, run_matrix, run_targets
from .targets import TargetError, load_target, parse_target_opts, preset_names, requirement_versions

REPORT_FORMATS = ["table", "json", "junit", "sarif", "markdown"]
EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INCONCLUSIVE, EXIT_INTERNAL = 0, 1, 2, 3, 4


class RichProgress(Progress):
    """A progress bar on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

        self._bar = Bar(TextColumn("[bold]checks"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("{task.description}"),
                        console=Console(stderr=True), transient=True)
        self._task: Any = None

    def start(self, total: int) -> None:
        self._bar.start()
        self._task = self._bar.add_task("", total=total)

    def advance(self, result: Result) -> None:
        self._bar.update(self._task, advance=1, description=f"{result.id}: {result.status.value}")

    def finish(self) -> None:
        self._bar.stop()


class _Seconds(click.FloatRange):
    """A number of seconds in a range: nan and inf are refused, not passed on to a run."""

    name = "number of seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        return number


#: --timeout of run, compare and survey.
TIMEOUT = _Seconds(0.1, 600)


def _housekeeping(report: Any) -> None:
    """Say on stderr what the harness cleaned up from earlier runs, and what it could not remove."""
    for path in report.removed_stale:
        click.echo(f"removed {path}: the run folder of a sandboxcheck that ended without cleaning up", err=True)
    for line in report.leftovers:
        click.echo(f"WARNING: left behind: {line}", err=True)


_SHARD_HELP = ("Run only part K of N of the work (K from 1 to N), split by check id (run) or by target and "
               "check (survey); N jobs with 1/N .. N/N cover it once; join them with 'sandboxcheck merge'.")
_ANON_HELP = ("Record a stable salted hash of the host ($SANDBOXCHECK_HOST_SALT) in the report instead of "
              "its name.")


def _parse_shard(spec: str | None) -> Any:
    from .shard import Shard, ShardError

    if spec is None:
        return None
    try:
        return Shard.parse(spec)
    except ShardError as exc:
        _fail_usage(str(exc))


def _shard_facts(report: Any, whole: Any, shard: Any, anonymise: bool) -> None:
    """Record the shard and the whole matrix's digest in a report; hide the host name if asked."""
    from .hostfacts import anonymised, matrix_digest

    if shard is not None:
        report.shard = shard.describe(whole, len(report.results))
        report.matrix_digest = matrix_digest(whole)
    if anonymise and report.host is not None:
        report.host = anonymised(report.host)


def _fail_usage(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _sigterm(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sandboxcheck")
@click.option("--debug", is_flag=True, envvar="SANDBOXCHECK_DEBUG", help="Show tracebacks.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Prove, from evidence seen outside, whether an AI agent's sandbox holds.

    Exit codes: 0 every check passed, 1 a check failed, 2 bad input,
    3 no failure but a check was inconclusive, 4 internal error.
    """
    ctx.obj = {"debug": debug}


@main.command()
@click.argument("matrix", envvar="SANDBOXCHECK_MATRIX")
@click.option("--target", "-t", "target_ref", default="landlock", show_default=True,
              envvar="SANDBOXCHECK_TARGET",
              help="Preset name, target file, or inline command containing {cmd}.")
@click.option("--format", "-f", "fmt", type=click.Choice(REPORT_FORMATS), default="table",
              show_default=True, help="Report format on stdout (or --output).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report to this file instead of stdout.")
@click.option("--report", "reports", multiple=True, metavar="FORMAT:FILE",
              help="Also write a report, e.g. --report junit:out.xml --report sarif:out.sarif "
                   f"(formats: {', '.join(REPORT_FORMATS)}). Repeatable.")
@click.option("--baseline", type=click.Path(dir_okay=False), default=None,
              help="Accepted JSON report: fail only on deviations it does not already have.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=os.cpu_count() or 1,
              show_default="cores", envvar="SANDBOXCHECK_JOBS", help="Checks run in parallel.")
@click.option("--timeout", type=TIMEOUT, default=None,
              help="Per-check timeout in seconds, overriding the matrix.")
@click.option("--keep-workspace", is_flag=True, help="Keep each throwaway root for debugging.")
@click.option("--no-control", is_flag=True,
              help="Skip the unsandboxed control runs (faster, weaker proof).")
@click.option("--target-opt", "target_opts", multiple=True, metavar="KEY=VALUE",
              help="Target option, e.g. settings=FILE for srt-settings. Repeatable.")
@click.option("--require-isolation", is_flag=True,
              help="Exit 1 when the preflight sees no isolation at all (a sandbox that fell open).")
@click.option("--no-preflight", is_flag=True, help="Skip the preflight probe.")
@click.option("--agent-sessions", type=click.Choice(["shared", "per-check"]), default="shared",
              show_default=True,
              help="Agent targets: run the checks that allow it one after another in long-lived "
                   "sessions (shared), or start the agent once per check (per-check).")
@click.option("--shard", "shard_spec", default=None, metavar="K/N", envvar="SANDBOXCHECK_SHARD",
              help=_SHARD_HELP)
@click.option("--anonymise-host", is_flag=True, envvar="SANDBOXCHECK_ANONYMISE_HOST", help=_ANON_HELP)
@click.pass_context
def run(ctx: click.Context, matrix: str, target_ref: str, fmt: str, output: str | None,
        reports: tuple[str, ...], baseline: str | None, jobs: int,
        timeout: float | None, keep_workspace: bool, no_control: bool,
        target_opts: tuple[str, ...],
        require_isolation: bool = False, no_preflight: bool = False,
        agent_sessions: str = "shared", shard_spec: str | None = None, anonymise_host: bool = False) -> None:
    """Run MATRIX (a file, or a bundled name such as 'baseline') against a target."""
    shard = _parse_shard(shard_spec)
    extra = _parse_reports(reports)
    _check_writable([output, *(path for _, path in extra)])
    _check_matrix_ref(matrix)
    try:
        m = load_matrix(resolve_matrix(matrix))
        target = load_target(target_ref, parse_target_opts(target_opts))
        accepted = load_baseline(baseline) if baseline else None
        whole, m = m, (shard.checks(m) if shard else m)
    except MatrixError as exc:
        _fail_usage(f"invalid matrix:\n{exc}")
    except (TargetError, BaselineError) as exc:
        _fail_usage(str(exc))
    unavailable = target.unavailable()
    if unavailable:
        _fail_usage(f"target {target.name!r} is not available here: {unavailable}")
    temp_problem = check_temp_dir()
    if temp_problem:
        _fail_usage(temp_problem)
    signal.signal(signal.SIGTERM, _sigterm)
    progress = RichProgress() if sys.stderr.isatty() else Progress()
    if require_isolation and no_preflight:
        _fail_usage("--require-isolation needs the preflight: drop --no-preflight")
    options = RunOptions(jobs=jobs, timeout=timeout, keep_workspace=keep_workspace,
                         control=not no_control, preflight=not no_preflight,
                         sessions=agent_sessions == "shared")
    try:
        report = run_matrix(m, target, options, progress)
    except KeyboardInterrupt:
        click.echo("interrupted: every process and temporary folder of this run was removed", err=True)
        sys.exit(130)
    _housekeeping(report)
    _shard_facts(report, whole, shard, anonymise_host)
    if accepted is not None:
        report.results = apply_baseline(report.results, accepted)
    write_reports(report, fmt, output, extra)
    pf = report.preflight
    fell_open = pf is not None and not pf.get("isolated")
    if fell_open:
        click.echo("WARNING: the preflight saw no isolation at all"
                   + (f" ({pf.get('reason')})" if pf.get("reason") else "")
                   + ": the target may have fallen back to running commands directly", err=True)
    sys.exit(EXIT_FAIL if require_isolation and fell_open else report.exit_code())


#: Character devices a report may go to: they take any amount of text and never block.
_SINK_DEVICES = ("/dev/null",)


def _output_problem(path: str) -> str | None:
    """Why a report cannot be written to ``path`` (None when it can), found without creating it.

    A FIFO would block the write until a reader comes, a device or a /proc or
    /sys file would fail or do something else than keep the text; none of
    them is a report file.
    """
    if not path.strip():
        return "empty file name"
    real = os.path.realpath(path)
    if real in _SINK_DEVICES:
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        return exc.strerror
    if st is not None and stat.S_ISDIR(st.st_mode):
        return "it is a folder"
    if st is not None and not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device"
        return f"it is {kind}, not a regular file (leave out the option to write to stdout)"
    if real.startswith(("/proc/", "/sys/", "/dev/")):
        return "it is a kernel or device file, not a report file"
    if st is not None:  # an existing file is rewritten in place: its folder need not be writable
        return None if os.access(path, os.W_OK) else "the file is not writable"
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
        return f"folder {folder} does not exist or is not writable"
    return None


def _check_writable(paths: list[str | None]) -> None:
    """Fail before a run, not after it, when a report cannot be written (nothing is created)."""
    for path in paths:
        if path is None:
            continue
        problem = _output_problem(path)
        if problem:
            _fail_usage(f"cannot write {path!r}: {problem}")


def _check_matrix_ref(ref: str) -> None:
    """An empty reference would resolve to the current folder: say what is wrong instead."""
    if not ref.strip():
        _fail_usage("empty matrix reference: give a matrix file or a bundled matrix name such as 'baseline'")


def _parse_reports(reports: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for spec in reports:
        fmt, sep, path = spec.partition(":")
        if not sep or not path or fmt not in REPORT_FORMATS:
            _fail_usage(f"--report {spec!r}: expected FORMAT:FILE with FORMAT one of "
                        f"{', '.join(REPORT_FORMATS)}")
        out.append((fmt, path))
    return out


def write_reports(report: Any, fmt: str, output: str | None, extra: list[tuple[str, str]]) -> None:
    """The main report (stdout or --output), every --report file, and a summary on stderr."""
    from .report import FORMATTERS

    for f, path in ([(fmt, output)] if output else []) + extra:
        with open(path, "w", encoding="utf-8") as fh:
            FORMATTERS[f](report, fh)
        click.echo(f"{f} report written to {path}", err=True)
    if not output:
        FORMATTERS[fmt](report, sys.stdout)
    if output or fmt != "table":
        s = report.summary()
        click.echo(f"{s['pass']} passed, {s['fail']} failed, {s['inconclusive']} inconclusive, "
                   f"{s['skip']} skipped", err=True)


_FAIL_ON_HELP = ("Comma-separated words that make the exit code 1: 'regression' (a check's status got worse: "
                 "pass -> inconclusive -> fail, or a new check that fails or is inconclusive), 'improvement', "
                 "or a change kind of the observation (" + ", ".join(FAIL_ON_WORDS[2:]) + ").")
_FORMAT_HELP = "Output format on stdout (or --output)."
_OUTPUT_HELP = "Write the comparison to this file instead of stdout."


@main.command()
@click.argument("before", type=click.Path(dir_okay=False))
@click.argument("after", type=click.Path(dir_okay=False))
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table",
              show_default=True, help=_FORMAT_HELP)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None, help=_OUTPUT_HELP)
@click.option("--fail-on", default=",".join(DEFAULT_FAIL_ON), show_default=True, metavar="WORDS", help=_FAIL_ON_HELP)
@click.option("--all", "show_all", is_flag=True, help="List unchanged checks too.")
@click.option("--allow-different-matrices", is_flag=True,
              help="Compare reports of different matrices (another name, or checks of BEFORE missing in AFTER).")
def diff(before: str, after: str, fmt: str, output: str | None, fail_on: str, show_all: bool,
         allow_different_matrices: bool = False) -> None:
    """Compare two JSON reports of one matrix: which checks regressed or improved from BEFORE to AFTER.

    Exit 1 when a check regressed (its status got worse), 0 otherwise, 2 on bad input.
    """
    kinds = _fail_on(fail_on)
    _check_writable([output])
    try:
        reports = [load_report(before), load_report(after)]
    except BaselineError as exc:
        _fail_usage(str(exc))
    sides = [side(reports[0], before), side(reports[1], after)]
    mismatch = matrix_mismatch(*sides)
    if mismatch and not allow_different_matrices:
        _fail_usage(f"{before} and {after} are reports of different matrices: {mismatch}. "
                    "Compare reports of the same matrix, or pass --allow-different-matrices")
    changes = diff_reports(results_by_id(reports[0]), results_by_id(reports[1]))
    comparison = Comparison("diff", sides[0], sides[1], tuple(changes),
                            f"different matrices: {mismatch}" if mismatch else None)
    _emit(lambda fh: render_diff(comparison, fmt, fh, show_all), output)
    sys.exit(comparison.exit_code(kinds))


def _fail_on(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in FAIL_ON_WORDS]
    if bad:
        _fail_usage(f"--fail-on: unknown change kind(s) {', '.join(bad)} (known: {', '.join(FAIL_ON_WORDS)})")
    return kinds


def _emit(write: Any, output: str | None) -> None:
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            write(fh)
        click.echo(f"written to {output}", err=True)
    else:
        write(sys.stdout)


@main.command()
@click.argument("matrix")
@click.option("--before", "before_ref", required=True, help="Target before (preset, file or inline).")
@click.option("--after", "after_ref", required=True, help="Target after.")
@click.option("--target-opt", "target_opts", multiple=True, metavar="KEY=VALUE",
              help="Target option (e.g. settings=FILE), given to each of the two targets that takes it. "
                   "Repeatable.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "markdown"]), default="table",
              show_default=True, help=_FORMAT_HELP)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None, help=_OUTPUT_HELP)
@click.option("--report", "reports", multiple=True, metavar="WHICH:FILE",
              help="Also keep a run's JSON report: before:FILE or after:FILE.")
@click.option("--fail-on", default=",".join(DEFAULT_FAIL_ON), show_default=True, metavar="WORDS", help=_FAIL_ON_HELP)
@click.option("--all", "show_all", is_flag=True, help="List unchanged checks too.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=os.cpu_count() or 1, show_default="cores",
              help="Checks run in parallel.")
@click.option("--timeout", type=TIMEOUT, default=None, help="Per-check timeout in seconds, overriding the matrix.")
def compare(matrix: str, before_ref: str, after_ref: str, fmt: str, output: str | None,
            reports: tuple[str, ...], fail_on: str, show_all: bool, jobs: int, timeout: float | None,
            target_opts: tuple[str, ...] = ()) -> None:
    """Run MATRIX against two targets, interleaved check by check, and say which checks regressed or improved.

    Exit 1 when a check regressed (its status got worse), 0 otherwise, 2 on bad input.
    """
    from .compare import versions_of
    from .survey import load_targets

    kinds = _fail_on(fail_on)
    keep: dict[str, str] = {}
    for spec in reports:
        which, sep, path = spec.partition(":")
        if which not in ("before", "after") or not path:
            _fail_usage(f"--report {spec!r}: expected before:FILE or after:FILE")
        keep[which] = path
    _check_writable([output, *keep.values()])
    _check_matrix_ref(matrix)
    temp_problem = check_temp_dir()
    if temp_problem:
        _fail_usage(temp_problem)
    try:
        m = load_matrix(resolve_matrix(matrix))
        targets = [t for _, t in load_targets([before_ref, after_ref], parse_target_opts(target_opts))]
    except MatrixError as exc:
        _fail_usage(f"invalid matrix:\n{exc}")
    except TargetError as exc:
        _fail_usage(str(exc))
    for t in targets:
        why = t.unavailable()
        if why:
            _fail_usage(f"target {t.name!r} is not available here: {why}")
    signal.signal(signal.SIGTERM, _sigterm)
    progress = RichProgress() if sys.stderr.isatty() else Progress()
    try:
        runs = run_targets(m, targets, RunOptions(jobs=jobs, timeout=timeout), progress)
        if runs:
            _housekeeping(runs[0])
    except KeyboardInterrupt:
        click.echo("interrupted: every process and temporary folder of this run was removed", err=True)
        sys.exit(130)
    from .report import render_json

    for which, target, run_report in zip(("before", "after"), targets, runs):
        run_report.target.update(versions_of(target))
        if which in keep:
            with open(keep[which], "w", encoding="utf-8") as fh:
                render_json(run_report, fh)
    before_d, after_d = (r.to_dict() for r in runs)
    changes = diff_reports(results_by_id(before_d), results_by_id(after_d))
    comparison = Comparison("compare", side(before_d, before_ref), side(after_d, after_ref), tuple(changes))
    _emit(lambda fh: render_diff(comparison, fmt, fh, show_all), output)
    sys.exit(comparison.exit_code(kinds))


@main.command()
@click.argument("matrix")
@click.option("--target", "-t", "target_refs", multiple=True, required=True,
              help="Preset name, target file or inline command; repeat for each column.")
@click.option("--target-opt", "target_opts", multiple=True, metavar="KEY=VALUE",
              help="Target option, given to every target that takes it. Repeatable.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "markdown", "json", "html"]),
              default="table", show_default=True, help="Grid format on stdout (or --output).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the grid to this file instead of stdout.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=os.cpu_count() or 1,
              show_default="cores", envvar="SANDBOXCHECK_JOBS", help="Checks run in parallel.")
@click.option("--timeout", type=TIMEOUT, default=None,
              help="Per-check timeout in seconds, overriding the matrix.")
@click.option("--no-control", is_flag=True,
              help="Skip the unsandboxed control runs (faster, weaker proof).")
@click.option("--shard", "shard_spec", default=None, metavar="K/N", envvar="SANDBOXCHECK_SHARD",
              help=_SHARD_HELP)
@click.option("--anonymise-host", is_flag=True, envvar="SANDBOXCHECK_ANONYMISE_HOST", help=_ANON_HELP)
def survey(matrix: str, target_refs: tuple[str, ...], target_opts: tuple[str, ...], fmt: str,
           output: str | None, jobs: int, timeout: float | None, no_control: bool,
           shard_spec: str | None = None, anonymise_host: bool = False) -> None:
    """Run MATRIX against several targets and print a grid: checks down, targets across.

    A target that is not available here becomes a column of n/a with the
    reason in a note. Exit 0 every cell passed, 1 a cell failed, 3 otherwise.
    """
    import shlex

    from . import survey as sv

    shard = _parse_shard(shard_spec)
    _check_writable([output])
    _check_matrix_ref(matrix)
    try:
        m = load_matrix(resolve_matrix(matrix))
        loaded = sv.load_targets(target_refs, parse_target_opts(target_opts))
    except MatrixError as exc:
        _fail_usage(f"invalid matrix:\n{exc}")
    except TargetError as exc:
        _fail_usage(str(exc))
    temp_problem = check_temp_dir()
    if temp_problem:
        _fail_usage(temp_problem)
    signal.signal(signal.SIGTERM, _sigterm)
    tty = sys.stderr.isatty()
    command = shlex.join(["sandboxcheck", *sys.argv[1:]])
    try:
        result = sv.run_survey(m, loaded, RunOptions(jobs=jobs, timeout=timeout, control=not no_control),
                               (lambda _name: RichProgress()) if tty else None, command=command, shard=shard)
    except KeyboardInterrupt:
        click.echo("interrupted: every process and temporary folder of this run was removed", err=True)
        sys.exit(130)
    _shard_facts(result, m, None, anonymise_host)
    if output:
        with open(output, "w", encoding="utf-8") as fh:
            sv.FORMATTERS[fmt](result, fh)
        click.echo(f"survey written to {output}", err=True)
    else:
        sv.FORMATTERS[fmt](result, sys.stdout)
    sys.exit(result.exit_code())


@main.command()
@click.argument("files", nargs=-1, required=True)
def validate(files: tuple[str, ...]) -> None:
    """Validate matrix FILES, reporting every problem with file and line."""
    bad = 0
    for f in files:
        if not f.strip():
            bad += 1
            click.echo("error: empty matrix reference: give a matrix file or a bundled matrix name", err=True)
            continue
        try:
            m = load_matrix(resolve_matrix(f))
        except MatrixError as exc:
            bad += 1
            for p in exc.problems:
                click.echo(str(p), err=True)
            continue
        click.echo(f"{f}: ok ({len(m.checks)} checks)")
    sys.exit(EXIT_USAGE if bad else EXIT_OK)


@main.command()
def targets() -> None:
    """List the bundled target presets and whether each is available here.

    A preset's tools are looked up in $SANDBOXCHECK_TOOLS (folders separated
    by ':'), then on PATH, then in the checkout's .tools/npm/node_modules/.bin
    (where .ci/run installs srt and codex).
    """
    from rich.console import Console
    from rich.table import Table

    table = Table("preset", "available", "version", "description")
    for name in preset_names():
        t = load_target(name)
        why = t.unavailable()
        version = "; ".join(requirement_versions(t)) or "-"
        table.add_row(name, "yes" if not why else f"no: {why}", version, t.description)
    Console().print(table)


@main.command()
def probes() -> None:
    """List the probe catalogue."""
    from rich.console import Console
    from rich.table import Table

    table = Table("probe", "arguments", "evidence", "what it does")
    for p in PROBES.values():
        args = " ".join([f"--{a}" for a in p.required] + [f"[--{a}]" for a in p.optional]
                        + (["-- ARGV"] if p.passthrough else []))
        table.add_row(p.name, args, p.evidence.kind + (f":{p.evidence.sink}" if p.evidence.sink else ""),
                      p.summary)
    Console().print(table)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "markdown", "html"]), default="table",
              show_default=True, help="Report format on stdout (or --output).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the merged report to this file instead of stdout.")
@click.option("--allow-different-matrices", is_flag=True, help="Merge reports of matrices with different digests.")
def merge(files: tuple[str, ...], fmt: str, output: str | None, allow_different_matrices: bool) -> None:
    """Join JSON reports: shards of one run into the report an unsharded run writes, or
    reports from many hosts (runs or surveys) into a fleet view: checks down, target@host across,
    differences between hosts of the same target release first.

    Exit codes as for run: 1 a check failed, 3 no failure but an inconclusive, missing or conflicting
    result, 0 otherwise, 2 bad input.
    """
    from . import merge as mg

    _check_writable([output])
    try:
        fleet = mg.load(files, allow_different_matrices)
    except mg.MergeError as exc:
        _fail_usage(str(exc))
    if mg.single_run(fleet):
        report = mg.run_report(fleet)
        if fmt == "json":
            _emit(lambda fh: mg.render_run_json(fleet, report, fh), output)
        elif fmt in REPORT_FORMATS:
            write_reports(report, fmt, output, [])
        else:
            _emit(lambda fh: mg.FORMATTERS[fmt](fleet, fh), output)
        sys.exit(report.exit_code())
    _emit(lambda fh: mg.FORMATTERS[fmt](fleet, fh), output)
    sys.exit(fleet.exit_code())


def entry() -> None:
    """Console entry point: internal errors become one line (exit 4) unless --debug."""
    debug = "--debug" in sys.argv[1:] or os.environ.get("SANDBOXCHECK_DEBUG", "").lower() in ("1", "true", "yes")
    try:
        main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - last line of defence for people, not tracebacks
        if debug:
            raise
        click.echo(f"internal error: {type(exc).__name__}: {exc} (rerun as 'sandboxcheck --debug ...' "
                   "for the traceback)", err=True)
        sys.exit(EXIT_INTERNAL)


if __name__ == "__main__":
    entry()
