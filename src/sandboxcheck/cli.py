"""Command line: ``sandboxcheck run|validate|targets|probes``.

Start-up stays fast (``--help`` well under 0.1 s): this module imports only
click and the standard library at the top; the engine, the matrix loader
(jsonschema, yaml) and rich are imported inside the commands that use them.
"""
from __future__ import annotations

import contextlib
import math
import os
import signal
import stat
import sys
import tempfile
from collections.abc import Iterator
from typing import IO, Any

import click

from . import __version__
from .compare import DEFAULT_FAIL_ON, FAIL_ON_WORDS

class _Formats(click.Choice):
    """The --format choices of one kind of result, read from the format registry when first
    needed (the registry also lists formats other packages add)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.case_sensitive = True

    @property
    def choices(self) -> list[str]:  # type: ignore[override]
        from .report.registry import formats

        return formats(self.kind)

    @choices.setter
    def choices(self, value: object) -> None:  # click's own __init__ is bypassed
        pass

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from .report.registry import is_format

        if isinstance(value, str) and is_format(self.kind, value):
            return value  # a known format: no need to list every installed package's
        return super().convert(value, param, ctx)


def _report_formats() -> list[str]:
    from .report.registry import formats

    return formats("run")
#: The one --target-opt of every command that loads targets (run, compare, survey, bisect;
#: the plugin's --sandboxcheck-target-opt): see ``targets.registry.load_targets``.
_TARGET_OPT = click.option("--target-opt", "target_opts", multiple=True, metavar="KEY=VALUE",
                           help="Target option (e.g. settings=FILE for srt-settings, flags=... for an "
                                "agent), given to every target that takes it; one no target takes is an "
                                "error. Repeatable.")
from .report.registry import EXIT_FAIL, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
#: The target of ``run`` without --target: sandboxcheck's own Landlock launcher.
DEFAULT_TARGET = "landlock"


def _progress() -> Any:
    """A progress bar on stderr when stderr is a terminal, else the silent default."""
    if sys.stderr.isatty():
        from .report.console import RichProgress

        return RichProgress()
    from .run.options import Progress

    return Progress()


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


def _selection(command: Any) -> Any:
    """--only and -k, shared by every command that runs a matrix."""
    command = click.option("-k", "keyword", default=None, metavar="EXPR",
                           help="Only checks whose id, category or title contain the words of EXPR, "
                                "joined with and, or, not and parentheses (as pytest's -k).")(command)
    return click.option("--only", "only", multiple=True, metavar="ID_OR_GLOB",
                        help="Only this check id, or the ids a glob such as 'fs.read.*' matches. "
                             "Repeatable.")(command)


def _load_selected(ref: str, only: tuple[str, ...], keyword: str | None) -> Any:
    """The matrix ``ref`` with the checks --only and -k select (MatrixError, or exit 2 for a selection)."""
    from .matrix.select import SelectionError, select
    from .matrix.load import load_matrix

    m = load_matrix(_matrix_path(ref))
    try:
        return select(m, only, keyword)
    except SelectionError as exc:
        _fail_usage(str(exc))
        raise  # not reached: _fail_usage exits


def _conform_target(m: Any, target_ref: str, target_opts: tuple[str, ...], target: Any) -> Any:
    """The target a matrix with ``conform:`` runs on (srt with the declared settings); says which on stderr."""
    from .matrix.conform_option import conform_target

    derived, note = conform_target(m, target_ref, any(o.startswith("settings=") for o in target_opts))
    if note:
        click.echo(note, err=True)
    return derived or target


def _harness() -> None:
    """Set up this process to launch targets: SIGTERM ends a run cleanly, and orphans come back here."""
    from .run.launch import become_subreaper

    signal.signal(signal.SIGTERM, _sigterm)
    become_subreaper()


def _did_you_mean(word: str, choices: list[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing."""
    import difflib

    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_DEBUG_HELP = "Show tracebacks of internal errors (before or after the command name)."


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(dict)["debug"] = True


class _Commands(click.Group):
    """The command group: every command also takes ``--debug``, so it works after the command name."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Register ``cmd`` with a ``--debug`` option of its own."""
        if not any(p.name == "debug" for p in cmd.params):
            cmd.params.append(click.Option(["--debug"], is_flag=True, expose_value=False, callback=_set_debug,
                                           help=_DEBUG_HELP))
        super().add_command(cmd, name)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sandboxcheck", help="Show the version and exit.")
@click.option("--debug", is_flag=True, envvar="SANDBOXCHECK_DEBUG", help=_DEBUG_HELP)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Prove, from evidence seen outside, whether an AI agent's sandbox holds.

    \b
    Exit codes:
      0    every check passed
      1    a check failed
      2    bad input (matrix, target or options)
      3    no failure, but a check was inconclusive
      4    internal error (rerun with --debug for the traceback)
      130  interrupted (everything the run created was removed)
    """
    ctx.ensure_object(dict)["debug"] = debug


@main.command()
@click.argument("matrix", envvar="SANDBOXCHECK_MATRIX")
@click.option("--target", "-t", "target_ref", default=None, show_default=DEFAULT_TARGET,
              envvar="SANDBOXCHECK_TARGET",
              help="Preset name ('sandboxcheck targets' lists them), target file, or inline command "
                   "containing {cmd}. Without it, sandboxcheck's own Landlock launcher is tested.")
@click.option("--format", "-f", "fmt", type=_Formats("run"), default="table",
              show_default=True, help="Report format on stdout (or --output).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report to this file instead of stdout.")
@click.option("--report", "reports", multiple=True, metavar="FORMAT:FILE",
              help="Also write a report, e.g. --report junit:out.xml --report sarif:out.sarif "
                   "(formats as --format). Repeatable.")
@click.option("--accepted", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Accepted JSON report (of the same target): fail only on deviations it does not already have.")
@click.option("--baseline", "baseline_alias", type=click.Path(dir_okay=False), default=None, hidden=True,
              metavar="FILE", help="Deprecated name of --accepted.")
@click.option("--accepted-any-target", is_flag=True,
              help="Apply an --accepted report made for another target too.")
@click.option("--verbose", "-v", is_flag=True,
              help="Table: under each check, its full reason and, for a deviation, how to fix it.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=os.cpu_count() or 1,
              show_default="cores", envvar="SANDBOXCHECK_JOBS", help="Checks run in parallel.")
@click.option("--timeout", type=TIMEOUT, default=None,
              help="Per-check timeout in seconds, overriding the matrix.")
@click.option("--keep-workspace", is_flag=True, help="Keep each throwaway root for debugging.")
@click.option("--no-control", is_flag=True,
              help="Skip the unsandboxed control runs (faster, weaker proof).")
@_TARGET_OPT
@click.option("--require-isolation", is_flag=True,
              help="Exit 1 when the preflight sees no isolation at all (a sandbox that fell open).")
@click.option("--no-preflight", is_flag=True, help="Skip the preflight probe.")
@click.option("--own-network", is_flag=True,
              help="Run every check inside the harness's own name space (names under sandboxcheck.test "
                   "resolve to its sinks); checks using its network always do.")
@click.option("--agent-sessions", type=click.Choice(["shared", "per-check"]), default="shared",
              show_default=True,
              help="Agent targets: run the checks that allow it one after another in long-lived "
                   "sessions (shared), or start the agent once per check (per-check).")
@click.option("--sarif-base", type=click.Path(file_okay=False), default=None,
              envvar="SANDBOXCHECK_SARIF_BASE",
              help="Repository root that SARIF locations are relative to [default: current folder].")
@_selection
@click.option("--shard", "shard_spec", default=None, metavar="K/N", envvar="SANDBOXCHECK_SHARD",
              help=_SHARD_HELP)
@click.option("--anonymise-host", is_flag=True, envvar="SANDBOXCHECK_ANONYMISE_HOST", help=_ANON_HELP)
@click.pass_context
def run(ctx: click.Context, matrix: str, target_ref: str | None, fmt: str, output: str | None,
        reports: tuple[str, ...], accepted: str | None, jobs: int,
        timeout: float | None, keep_workspace: bool, no_control: bool,
        target_opts: tuple[str, ...],
        require_isolation: bool = False, no_preflight: bool = False,
        agent_sessions: str = "shared", sarif_base: str | None = None,
        only: tuple[str, ...] = (), keyword: str | None = None, baseline_alias: str | None = None,
        accepted_any_target: bool = False, verbose: bool = False, shard_spec: str | None = None,
        anonymise_host: bool = False, own_network: bool = False) -> None:
    """Run MATRIX (a file, or a bundled name such as 'baseline') against a target."""
    from .matrix.load import MatrixError
    from .policy import BaselineError, apply_baseline, load_accepted
    from .run.options import RunOptions
    from .run.schedule import run_matrix
    from .run.roots import check_temp_dir
    from .targets.base import TargetError
    from .targets.registry import load_target, parse_target_opts

    shard = _parse_shard(shard_spec)
    if baseline_alias is not None:
        if accepted is not None:
            _fail_usage("--baseline is the old name of --accepted: give only --accepted")
        click.echo("warning: --baseline FILE is deprecated (it reads like the bundled matrix 'baseline'): "
                   "use --accepted FILE", err=True)
        accepted = baseline_alias
    extra = _parse_reports(reports)
    _check_writable([output, *(path for _, path in extra)])
    if sarif_base is not None and not os.path.isdir(sarif_base):
        _fail_usage(f"--sarif-base {sarif_base!r}: no such folder (give the repository root)")
    if target_ref is None:
        click.echo(f"testing sandboxcheck's built-in {DEFAULT_TARGET} launcher; use --target NAME|'cmd {{cmd}}'|FILE "
                   "to test your sandbox or agent ('sandboxcheck targets' lists presets)", err=True)
        target_ref = DEFAULT_TARGET
    _harness()
    try:
        m = _load_selected(matrix, only, keyword)
        target = load_target(target_ref, parse_target_opts(target_opts))
        target = _conform_target(m, target_ref, target_opts, target)
        accepted_for, accepted_results = load_accepted(accepted) if accepted else (None, None)
        whole, m = m, (shard.checks(m) if shard else m)
    except MatrixError as exc:
        _fail_usage(f"invalid matrix:\n{exc}")
    except (TargetError, BaselineError) as exc:
        _fail_usage(str(exc))
    if accepted_results is not None and accepted_for != target.name and not accepted_any_target:
        _fail_usage(f"--accepted {accepted} is a report of target {accepted_for!r}, not of {target.name!r}: "
                    "accept deviations per target, or pass --accepted-any-target")
    unavailable = target.unavailable()
    if unavailable:
        _fail_usage(f"target {target.name!r} is not available here: {unavailable}")
    temp_problem = check_temp_dir()
    if temp_problem:
        _fail_usage(temp_problem)
    progress = _progress()
    if require_isolation and no_preflight:
        _fail_usage("--require-isolation needs the preflight: drop --no-preflight")
    options = RunOptions(jobs=jobs, timeout=timeout, keep_workspace=keep_workspace,
                         control=not no_control, preflight=not no_preflight,
                         sessions=agent_sessions == "shared", own_network=own_network)
    try:
        report = run_matrix(m, target, options, progress)
    except KeyboardInterrupt:
        click.echo("interrupted: every process and temporary folder of this run was removed", err=True)
        sys.exit(EXIT_INTERRUPTED)
    _housekeeping(report)
    _shard_facts(report, whole, shard, anonymise_host)
    if accepted_results is not None:
        report.results = apply_baseline(report.results, accepted_results)
    write_reports(report, fmt, output, extra, verbose, sarif_base)
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


def _matrix_problem(ref: str) -> str | None:
    """Why ``ref`` names no matrix (an empty reference, or neither a file nor a bundled name), else None."""
    from .resources import bundled_matrices, resolve_matrix

    if not ref.strip():
        return "empty matrix reference: give a matrix file or a bundled matrix name such as 'baseline'"
    if os.path.lexists(ref) or "/" in ref or ref.endswith((".yaml", ".yml")) or resolve_matrix(ref).exists():
        return None  # a path: loading it says what is wrong with it
    names = bundled_matrices()
    return (f"unknown matrix {ref!r}: not a file and not a bundled matrix{_did_you_mean(ref, names)}; "
            f"bundled: {', '.join(names)}")


def _matrix_path(ref: str) -> Any:
    """The path of matrix ``ref``; exit 2 with one line when there is none."""
    from .resources import resolve_matrix

    problem = _matrix_problem(ref)
    if problem:
        _fail_usage(problem)
    return resolve_matrix(ref)


def _parse_reports(reports: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for spec in reports:
        fmt, sep, path = spec.partition(":")
        from .report.registry import is_format

        if not sep or not path or not is_format("run", fmt):
            _fail_usage(f"--report {spec!r}: expected FORMAT:FILE with FORMAT one of "
                        f"{', '.join(_report_formats())}")
        out.append((fmt, path))
    return out


def write_reports(report: Any, fmt: str, output: str | None, extra: list[tuple[str, str]],
                  verbose: bool = False, sarif_base: str | None = None) -> None:
    """The main report (stdout or --output), every --report file, and a summary on stderr.

    A table written to a file has every check's full reason and fix, as ``-v`` shows them.
    """

    from .report.registry import render

    for f, path in ([(fmt, output)] if output else []) + extra:
        with open_output(path) as fh:
            render("run", f, report, fh, verbose=True, base=sarif_base)
        click.echo(f"{f} report written to {path}", err=True)
    if not output:
        render("run", fmt, report, sys.stdout, verbose=verbose, base=sarif_base)
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
@click.option("--format", "-f", "fmt", type=_Formats("diff"), default="table",
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
    from .compare import Comparison, diff_reports, load_report, matrix_mismatch, results_by_id, side
    from .report.registry import exit_code, render
    from .policy import BaselineError

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
    _emit(lambda fh: render("diff", fmt, comparison, fh, show_unchanged=show_all), output)
    sys.exit(exit_code("diff", comparison, fail_on=kinds))


def _fail_on(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in FAIL_ON_WORDS]
    if bad:
        _fail_usage(f"--fail-on: unknown change kind(s) {', '.join(bad)} (known: {', '.join(FAIL_ON_WORDS)})")
    return kinds


@contextlib.contextmanager
def open_output(path: str) -> Iterator[IO[str]]:
    """A report file to write: a new file in ``path``'s folder, put in place (``os.replace``) only
    once the whole report is written. A link at ``path`` is replaced, never followed, and a
    report that fails half-way leaves the old file as it was. A sink device (/dev/null) is
    written as it is; an existing file in a folder that cannot be written to is rewritten in
    place, without following a link."""
    if os.path.realpath(path) in _SINK_DEVICES:
        with open(path, "w", encoding="utf-8") as fh:
            yield fh
        return
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".sandboxcheck-", suffix=".part", dir=folder)
    except PermissionError:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
        return
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _emit(write: Any, output: str | None) -> None:
    if output:
        with open_output(output) as fh:
            write(fh)
        click.echo(f"written to {output}", err=True)
    else:
        write(sys.stdout)


@main.command()
@click.argument("matrix")
@click.option("--before", "before_ref", required=True, help="Target before (preset, file or inline).")
@click.option("--after", "after_ref", required=True, help="Target after.")
@_TARGET_OPT
@click.option("--format", "-f", "fmt", type=_Formats("diff"), default="table",
              show_default=True, help=_FORMAT_HELP)
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None, help=_OUTPUT_HELP)
@click.option("--report", "reports", multiple=True, metavar="WHICH:FILE",
              help="Also keep a run's JSON report: before:FILE or after:FILE.")
@click.option("--fail-on", default=",".join(DEFAULT_FAIL_ON), show_default=True, metavar="WORDS", help=_FAIL_ON_HELP)
@click.option("--all", "show_all", is_flag=True, help="List unchanged checks too.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=os.cpu_count() or 1, show_default="cores",
              help="Checks run in parallel.")
@click.option("--timeout", type=TIMEOUT, default=None, help="Per-check timeout in seconds, overriding the matrix.")
@_selection
def compare(matrix: str, before_ref: str, after_ref: str, fmt: str, output: str | None,
            reports: tuple[str, ...], fail_on: str, show_all: bool, jobs: int, timeout: float | None,
            target_opts: tuple[str, ...] = (), only: tuple[str, ...] = (), keyword: str | None = None) -> None:
    """Run MATRIX against two targets, interleaved check by check, and say which checks regressed or improved.

    Exit 1 when a check regressed (its status got worse), 0 otherwise, 2 on bad input.
    """
    from .compare import Comparison, diff_reports, results_by_id, side, versions_of
    from .report.registry import exit_code, render
    from .matrix.load import MatrixError
    from .run.options import RunOptions
    from .run.schedule import run_targets
    from .run.roots import check_temp_dir
    from .targets.registry import load_targets
    from .targets.base import TargetError
    from .targets.registry import parse_target_opts

    kinds = _fail_on(fail_on)
    keep: dict[str, str] = {}
    for spec in reports:
        which, sep, path = spec.partition(":")
        if which not in ("before", "after") or not path:
            _fail_usage(f"--report {spec!r}: expected before:FILE or after:FILE")
        keep[which] = path
    _check_writable([output, *keep.values()])
    temp_problem = check_temp_dir()
    if temp_problem:
        _fail_usage(temp_problem)
    _harness()
    try:
        m = _load_selected(matrix, only, keyword)
        targets = [t for _, t in load_targets([before_ref, after_ref], parse_target_opts(target_opts))]
    except MatrixError as exc:
        _fail_usage(f"invalid matrix:\n{exc}")
    except TargetError as exc:
        _fail_usage(str(exc))
    for t in targets:
        why = t.unavailable()
        if why:
            _fail_usage(f"target {t.name!r} is not available here: {why}")
    progress = _progress()
    try:
        runs = run_targets(m, targets, RunOptions(jobs=jobs, timeout=timeout), progress)
        if runs:
            _housekeeping(runs[0])
    except KeyboardInterrupt:
        click.echo("interrupted: every process and temporary folder of this run was removed", err=True)
        sys.exit(EXIT_INTERRUPTED)
    from .report.run import render_json

    for which, target, run_report in zip(("before", "after"), targets, runs):
        run_report.target.update(versions_of(target))
        if which in keep:
            with open(keep[which], "w", encoding="utf-8") as fh:
                render_json(run_report, fh)
    before_d, after_d = (r.to_dict() for r in runs)
    changes = diff_reports(results_by_id(before_d), results_by_id(after_d))
    comparison = Comparison("compare", side(before_d, before_ref), side(after_d, after_ref), tuple(changes))
    _emit(lambda fh: render("diff", fmt, comparison, fh, show_unchanged=show_all), output)
    sys.exit(exit_code("diff", comparison, fail_on=kinds))


@main.command()
@click.argument("matrix")
@click.option("--target", "-t", "target_refs", multiple=True, required=True,
              help="Preset name, target file or inline command; repeat for each column.")
@_TARGET_OPT
@click.option("--format", "-f", "fmt", type=_Formats("survey"),
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
@_selection
def survey(matrix: str, target_refs: tuple[str, ...], target_opts: tuple[str, ...], fmt: str,
           output: str | None, jobs: int, timeout: float | None, no_control: bool,
           shard_spec: str | None = None, anonymise_host: bool = False,
           only: tuple[str, ...] = (), keyword: str | None = None) -> None:
    """Run MATRIX against several targets and print a grid: checks down, targets across.

    A target that is not available here becomes a column of n/a with the
    reason in a note. Exit 0 every cell passed, 1 a cell failed, 3 otherwise.
    """
    import shlex

    from . import survey as sv
    from .matrix.load import MatrixError
    from .run.options import RunOptions
    from .run.roots import check_temp_dir
    from .targets.base import TargetError
    from .targets.registry import parse_target_opts

    shard = _parse_shard(shard_spec)
    _check_writable([output])
    _harness()
    try:
        m = _load_selected(matrix, only, keyword)
        loaded = sv.load_targets(target_refs, parse_target_opts(target_opts))
    except MatrixError as exc:
        _fail_usage(f"invalid matrix:\n{exc}")
    except TargetError as exc:
        _fail_usage(str(exc))
    temp_problem = check_temp_dir()
    if temp_problem:
        _fail_usage(temp_problem)
    tty = sys.stderr.isatty()
    command = shlex.join(["sandboxcheck", *sys.argv[1:]])
    try:
        result = sv.run_survey(m, loaded, RunOptions(jobs=jobs, timeout=timeout, control=not no_control),
                               (lambda _name: _progress()) if tty else None, command=command, shard=shard)
    except KeyboardInterrupt:
        click.echo("interrupted: every process and temporary folder of this run was removed", err=True)
        sys.exit(EXIT_INTERRUPTED)
    _shard_facts(result, m, None, anonymise_host)
    from .report.registry import exit_code, render

    if output:
        with open_output(output) as fh:
            render("survey", fmt, result, fh)
        click.echo(f"survey written to {output}", err=True)
    else:
        render("survey", fmt, result, sys.stdout)
    sys.exit(exit_code("survey", result))


@main.command()
@click.argument("matrix")
@click.option("--target", "-t", "target_name", required=True, help="A pinnable preset or target file (no @VERSION).")
@click.option("--old", "old", required=True, help="The release known to behave the old way.")
@click.option("--new", "new", required=True, help="The release known to behave the new way.")
@click.option("--check", "checks", multiple=True, metavar="ID", help="Check to follow (repeatable; default: all).")
@_TARGET_OPT
@click.option("--format", "-f", "fmt", type=_Formats("bisect"), default="table", show_default=True,
              help="Output format on stdout (or --output).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None, help=_OUTPUT_HELP)
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=os.cpu_count() or 1, show_default="cores",
              help="Checks run in parallel.")
@click.option("--timeout", type=TIMEOUT, default=None, help="Per-check timeout in seconds, overriding the matrix.")
@click.option("--shard", "shard_spec", default=None, metavar="K/N", envvar="SANDBOXCHECK_SHARD",
              help="Follow only part K of N of the chosen checks (split by check id as 'run' does) over the "
                   "same releases; the earliest first changed release of the N parts is the answer.")
@click.option("--anonymise-host", is_flag=True, envvar="SANDBOXCHECK_ANONYMISE_HOST", help=_ANON_HELP)
def bisect(matrix: str, target_name: str, old: str, new: str, checks: tuple[str, ...], target_opts: tuple[str, ...],
           fmt: str, output: str | None, jobs: int, timeout: float | None, shard_spec: str | None = None,
           anonymise_host: bool = False) -> None:
    """Find the adjacent releases of TARGET between --old and --new where the checks' verdicts change.

    Releases that cannot run here are skipped (reported, never taken for a
    change). Exit 0 when a change was found, 1 when the ends agree, 2 on bad input.
    """
    import dataclasses
    from pathlib import Path

    from . import bisect as bs
    from .hostfacts import host_facts, matrix_digest
    from .matrix.load import MatrixError, load_matrix
    from .run.options import RunOptions
    from .targets.base import TargetError
    from .targets.registry import parse_target_opts, pin_spec

    shard = _parse_shard(shard_spec)
    _check_writable([output])
    if "@" in target_name and not Path(target_name).exists():
        _fail_usage(f"--target {target_name}: give the target without a version; --old and --new choose releases")
    try:
        whole = bs.select_checks(load_matrix(_matrix_path(matrix)), checks)
        m = shard.checks(whole) if shard else whole
        if not m.checks:
            _fail_usage(f"--shard {shard}: this part has none of the {len(whole.checks)} chosen check(s); "
                        f"give at most {len(whole.checks)} parts")
        install, _, _ = pin_spec(target_name)
        options = parse_target_opts(target_opts)
        loaded: list[Any] = []
        evaluate = bs.evaluator(target_name, m, options, RunOptions(jobs=jobs, timeout=timeout),
                                lambda line: click.echo(line, err=True), loaded)
        _harness()
        result = bs.bisect(target_name, m.name, [c.id for c in m.checks], old, new, evaluate,
                           package=install.name)
        result = dataclasses.replace(result, host=host_facts(loaded, anonymise_host),
                                     shard=shard.describe(whole, len(m.checks)) if shard else None,
                                     matrix_digest=matrix_digest(whole))
    except MatrixError as exc:
        _fail_usage(f"invalid matrix:\n{exc}")
    except (TargetError, bs.BisectError) as exc:
        _fail_usage(str(exc))
    except KeyboardInterrupt:
        click.echo("interrupted: every process and temporary folder of this run was removed", err=True)
        sys.exit(EXIT_INTERRUPTED)
    from .report.registry import exit_code, render

    _emit(lambda fh: render("bisect", fmt, result, fh), output)
    sys.exit(exit_code("bisect", result))


@main.command()
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--advisories", "folder", default=None, metavar="DIR", envvar="SANDBOXCHECK_ADVISORIES",
              help="Folder of advisory files (default: the bundled corpus).")
@click.option("--format", "-f", "fmt", type=_Formats("replay"), default="table", show_default=True,
              help="Output format on stdout (or --output).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None, help=_OUTPUT_HELP)
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=os.cpu_count() or 1, show_default="cores",
              help="Checks run in parallel.")
@click.option("--timeout", type=TIMEOUT, default=None, help="Per-check timeout in seconds, overriding the matrix.")
def replay(ids: tuple[str, ...], folder: str | None, fmt: str, output: str | None, jobs: int,
           timeout: float | None) -> None:
    """Replay published sandbox bypasses: run each advisory's checks against its vulnerable and fixed
    releases, interleaved, and say whether the bypass is reproduced.

    ID is an advisory's id or file name (default: every advisory). Exit 0 when
    every one is reproduced, 1 when one is not, 3 when one could not run here,
    2 on bad input.
    """
    from . import advisories as adv
    from .run.options import RunOptions

    _check_writable([output])
    try:
        chosen = adv.select(adv.load_corpus(folder), ids)
    except adv.AdvisoryError as exc:
        _fail_usage("\n".join(str(p).removeprefix("replay: ") for p in exc.problems))
    _harness()
    evaluator = adv.PinnedEvaluator(RunOptions(jobs=jobs, timeout=timeout), lambda line: click.echo(line, err=True))
    try:
        replays = adv.replay(chosen, evaluator, lambda r: click.echo(f"{r.advisory.name}: {r.status}", err=True))
    except KeyboardInterrupt:
        click.echo("interrupted: every process and temporary folder of this run was removed", err=True)
        sys.exit(EXIT_INTERRUPTED)
    from .report.registry import exit_code, render

    _emit(lambda fh: render("replay", fmt, replays, fh), output)
    click.echo(adv.summary_line(replays), err=True)
    sys.exit(exit_code("replay", replays))


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--kind", type=click.Choice(["matrix", "suite", "target", "report", "workflow", "advisory"]),
              default=None,
              help="Validate every file as this kind instead of telling it from its name and keys.")
def validate(files: tuple[str, ...], kind: str | None = None) -> None:
    """Validate FILES (matrices, suites, target files, JSON reports, workflows running sandboxcheck, advisories),
    reporting every problem with file and line."""
    from .matrix.load import MatrixError
    from .validate import validate_file

    bad = 0
    for f in files:
        problem = _matrix_problem(f)
        if problem:
            bad += 1
            click.echo(f"error: {problem}", err=True)
            continue
        try:
            done = validate_file(f, kind)
        except MatrixError as exc:
            bad += 1
            for p in exc.problems:
                click.echo(str(p), err=True)
            continue
        # A matrix keeps the line it always had; other kinds say which kind they were read as.
        click.echo(f"{f}: ok ({done.summary if done.kind == 'matrix' else done.kind + ', ' + done.summary})")
    sys.exit(EXIT_USAGE if bad else EXIT_OK)


@main.command()
@click.argument("names", nargs=-1, metavar="[NAME[@VERSION]]...")
@click.option("--verbose", "-v", is_flag=True, help="Every preset in full: why not available, version, description.")
def targets(names: tuple[str, ...], verbose: bool) -> None:
    """List the bundled target presets and whether each is available here, one line each.

    With NAME (a preset, target file or inline command), or with -v, show it in
    full; a pinnable preset, NAME@VERSION or NAME@latest also shows which
    releases it drives, how, and which node a release would run under (nothing
    is installed). A preset's tools are looked up in $SANDBOXCHECK_TOOLS
    (folders separated by ':'), then on PATH, then in
    .tools/npm/node_modules/.bin of the checkout (where .ci/run installs srt and
    codex) and of the current directory, then in
    ~/.cache/sandboxcheck/npm/node_modules/.bin.
    """
    from .targets.pinning import PinError
    from .report.console import console_for, cut
    from .report.run import target_lines
    from .targets.base import TargetError
    from .targets.registry import load_target, pin_details, pinnable_presets, preset_names
    from .targets.base import requirement_versions

    console = console_for(sys.stdout)
    pinned = [n for n in names if "@" in n]
    try:
        loaded = [load_target(n) for n in names if "@" not in n] if names else \
            [load_target(n) for n in preset_names()]
        pins = [pin_details(n) for n in pinned]
        pins += [pin_details(t.name) for t in loaded if names and t.name in pinnable_presets()]
    except (TargetError, PinError) as exc:
        _fail_usage(str(exc))
    if verbose or names:
        for i, t in enumerate(loaded):
            if i:
                console.print()
            for line in target_lines(t.name, t.unavailable(), requirement_versions(t), t.description,
                                     console.width):
                console.print(line, no_wrap=True, crop=False, markup=False, highlight=False)
        for lines in pins:
            console.print()
            for line in lines:
                console.print(line, no_wrap=True, crop=False, markup=False, highlight=False)
        return
    width = max(len(t.name) for t in loaded)
    for t in loaded:
        why = t.unavailable()
        status = "yes" if not why else "no: " + why
        summary = t.description.split(". ")[0].rstrip(".")
        left = f"{t.name.ljust(width)}  "
        room = max(24, console.width - len(left))
        text = cut(status, room) if why else cut(f"yes  {summary}", room)
        console.print(left + text, no_wrap=True, crop=False, markup=False, highlight=False)
    console.print(f"{len(loaded)} presets; 'sandboxcheck targets NAME' or -v shows one in full", style="dim",
                  markup=False, highlight=False)


@main.command()
@click.argument("settings", type=click.Path(dir_okay=False, exists=True))
@click.option("--target", "-t", "target_ref", required=True,
              help="The sandbox to test: srt, srt-settings or srt-net (any @VERSION) run with the settings; "
                   "another target runs with its own configuration.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="table: one line per rule; json: the rules with their verdicts (schema_version 1).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report to this file instead of stdout.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=os.cpu_count() or 1, show_default="cores",
              help="Checks run in parallel.")
def conform(settings: str, target_ref: str, fmt: str, output: str | None, jobs: int) -> None:
    """Test each rule a sandbox's SETTINGS declare (srt JSON, Claude Code JSON, Codex TOML).

    Every declared path and domain, a domain in neither list, a path no rule
    names and the files srt always protects become checks; each rule is
    reported as honoured, violated or could not test (why). Exit 1 when a
    rule was violated.
    """
    import json

    from .conform import PolicyError, format_table
    from .conform import conform as run_conform
    from .matrix.load import MatrixError
    from .run.options import RunOptions
    from .targets.base import TargetError

    _harness()
    try:
        report = run_conform(settings, target_ref, RunOptions(jobs=jobs))
    except (PolicyError, TargetError, MatrixError) as exc:
        _fail_usage(str(exc))
    except KeyboardInterrupt:
        click.echo("interrupted: every process and temporary folder of this run was removed", err=True)
        sys.exit(EXIT_INTERRUPTED)
    text = json.dumps(report.to_dict(), indent=2) if fmt == "json" else format_table(report)
    if output:
        with open_output(output) as fh:
            fh.write(text + "\n")
    else:
        click.echo(text)
    sys.exit(report.exit_code())


@main.command()
def probes() -> None:
    """List the probe catalogue."""
    from rich.table import Table

    from .probes import PROBES
    from .report.console import console_for

    table = Table("probe", "arguments", "evidence", "what it does")
    for p in PROBES.values():
        args = " ".join([f"--{a}" for a in p.required] + [f"[--{a}]" for a in p.optional]
                        + (["-- ARGV"] if p.passthrough else []))
        table.add_row(p.name, args, p.evidence.kind + (f":{p.evidence.sink}" if p.evidence.sink else ""),
                      p.summary)
    console_for(sys.stdout).print(table)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--format", "-f", "fmt", type=_Formats("fleet"), default="table",
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

    from .report.registry import exit_code, render
    from .report.registry import is_format as registry_is_format

    _check_writable([output])
    try:
        fleet = mg.load(files, allow_different_matrices)
    except mg.MergeError as exc:
        _fail_usage(str(exc))
    if mg.single_run(fleet):
        report = mg.run_report(fleet, fleet.durations)
        if fmt == "json":
            _emit(lambda fh: mg.render_run_json(fleet, report, fh), output)
        elif registry_is_format("run", fmt):
            write_reports(report, fmt, output, [])
        else:
            _emit(lambda fh: render("fleet", fmt, fleet, fh), output)
        sys.exit(exit_code("run", report))
    if fmt == "json" and mg.single_survey(fleet):  # the parts of one survey: that survey's JSON
        _emit(lambda fh: mg.render_survey_json(fleet, fh), output)
        sys.exit(mg.survey_dict(fleet)["exit_code"])
    _emit(lambda fh: render("fleet", fmt, fleet, fh), output)
    sys.exit(exit_code("fleet", fleet))


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
