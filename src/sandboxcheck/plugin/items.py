"""Collection: suite files, matrix nodes and check items, and how an item reports its result."""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ..model import Check, Matrix, Result, Status, TranscriptEntry
from ..run.options import RunOptions
from ..matrix.suite import SuiteError, load_suite
from ..targets.base import Target
from .runs import RunError
from .options import Settings
from .runs import _runs
from .options import _shown_path


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
        #: The batch this item runs in: its matrix node and target. Under xdist the same
        #: ``xdist_group`` (public mark), so ``--dist loadgroup`` keeps a batch on one worker.
        self.group = f"{self.parent.nodeid if self.parent else ''}[{target.name}]"
        self.add_marker(pytest.mark.xdist_group(self.group))
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
    """Skip the running item (the reason names the check and target; -rs lists it)."""
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


#: Lines of a tool result shown under a failing item (the JSON report has up to 2 KiB).
TRANSCRIPT_LINES = 12
