"""Plain data types shared by every layer (no I/O here)."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from . import __version__

CATEGORIES: tuple[str, ...] = (
    "fs-read", "fs-write", "credentials", "env", "exec",
    "network", "process", "ipc", "tamper", "agent",
)
EXPECTS: tuple[str, ...] = ("allowed", "denied")
SEVERITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
#: Every evidence kind and what it takes as proof that the action took effect.
#: The sinks the harness owns, which ``sink`` evidence names: network sinks on
#: 127.0.0.1 and unix sockets in the root's run/ folder.
SINKS: dict[str, str] = {
    "tcp": "a TCP listener on 127.0.0.1 ({tcp_port})",
    "udp": "a UDP socket on 127.0.0.1 ({udp_port})",
    "dns": "a DNS server on 127.0.0.1 ({dns_port}) that logs query names",
    "ssh-agent": "a unix socket at run/ssh-agent.sock ($SSH_AUTH_SOCK)",
    "docker": "a unix socket at run/docker.sock ($DOCKER_HOST)",
    "web": "the harness's own network: HTTP, CONNECT, TLS and SOCKS5 sinks on its addresses ({net_port})",
    "resolver": "the harness's own network: its DNS server ({net_dns_ip}), which logs query names",
}
#: The sinks that are unix sockets in the root (the rest listen on 127.0.0.1).
UNIX_SINKS: tuple[str, ...] = ("ssh-agent", "docker")
EVIDENCE_KINDS: dict[str, str] = {
    "leak": "the check's canary crosses: in the target's output, in a file written in the workspace, "
            "or at any sink",
    "file": "a host path ('path') is created, changed or removed; with 'contains', only when it then "
            "holds that text",
    "sink": f"a harness-owned sink ('sink': {', '.join(SINKS)}) receives the check's canary",
    "marker": "a string ('marker') that only exists once the action ran shows up in the output",
    "survivor": "a process tagged with the check's canary outlives the target",
    "signal": "the harness's witness process ({witness_pid}) receives a signal",
}


class Observed(str, Enum):
    """What the evidence shows happened."""

    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"


class Status(str, Enum):
    """How the observation compares with the expectation."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    SKIP = "skip"


#: The probe name of the harness's own line for an interactive agent session that sat
#: waiting for the user with nothing it started still at work (its denial is worded apart).
WAITED_PROBE = "agent-start"

@dataclass(frozen=True, slots=True)
class EvidenceSpec:
    """How a check is judged from outside the sandbox.

    kind is one of: leak (the check's canary escapes), file (a host path is
    created or changed), sink (a harness-owned sink receives the canary),
    marker (a string that only exists once the action ran shows up in the
    output), survivor (a tagged process outlives the target), signal (the
    harness's witness process receives a signal).
    """

    kind: str
    path: str | None = None
    contains: str | None = None
    sink: str | None = None
    marker: str | None = None
    labels: tuple[str, ...] = ()


#: The actions a ``setup:`` step can take, in the order the docs list them.
SETUP_ACTIONS: tuple[str, ...] = ("file", "dir", "hardlink", "symlink", "chmod", "pass_fd")
#: How a ``pass_fd`` step opens its file.
FD_ACCESS: tuple[str, ...] = ("read", "write", "read-write")


@dataclass(frozen=True, slots=True)
class SetupStep:
    """One host-side action in a check's root before the target starts.

    ``path`` is a template naming an entry inside the root (the file, folder,
    link or descriptor's file); ``to`` is a hard link's existing file (inside
    the root too) or a symlink's target text (anything). ``fd`` is the number
    the target inherits a ``pass_fd`` descriptor as.
    """

    action: str
    path: str
    to: str | None = None
    content: str = ""
    mode: int | None = None
    access: str = "read"
    fd: int | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class Check:
    """One row of a check matrix, as loaded and validated."""

    id: str
    category: str
    title: str
    probe: str
    args: tuple[tuple[str, Any], ...]
    expect: str
    evidence: EvidenceSpec
    severity: str = "medium"
    timeout: float = 10.0
    skip: str | None = None
    tags: tuple[str, ...] = ()
    control: bool = True
    control_reason: str | None = None
    description: str = ""
    fix: str = ""
    source: str = ""
    line: int = 0
    end_line: int = 0
    #: An agent check's script and agent settings (the matrix's ``agent:`` mapping),
    #: read by agent targets; None for a plain probe check.
    agent: CheckAgent | None = field(default=None, hash=False)
    #: Host-side actions in the root before the target starts (the matrix's ``setup:`` list).
    setup: tuple[SetupStep, ...] = ()

    @property
    def passed_fds(self) -> dict[int, SetupStep]:
        """The descriptors the target inherits: number -> the ``pass_fd`` step opening it."""
        return {s.fd: s for s in self.setup if s.action == "pass_fd" and s.fd is not None}


@dataclass(frozen=True, slots=True)
class Waiver:
    """An accepted deviation: a check id, why, until when, optionally for one target."""

    id: str
    reason: str
    expires: str  # ISO date, inclusive
    target: str | None = None
    source: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class Matrix:
    """A loaded check matrix."""

    name: str
    path: str
    checks: tuple[Check, ...]
    description: str = ""
    waivers: tuple[Waiver, ...] = ()
    #: The settings file whose declared rules the matrix's ``conform.*`` checks test ('' when none).
    conform: str = ""


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """The probe's own account of what it tried (explains, never proves)."""

    probe: str
    action: str
    attempted: bool
    ok: bool
    errno: str | None
    message: str
    data: dict[str, Any] = field(default_factory=dict)
    #: The errno's number (13 for EACCES), when the failure had one.
    errno_number: int | None = None
    #: The step the action needed that failed (the action never ran), e.g.
    #: ``symlink {workspace}/link -> ~/.ssh/id_ed25519``; None when there was none.
    precondition: str | None = None


#: Characters kept of each tool input value and tool result in a transcript entry.
TRANSCRIPT_CAP = 2048


def _trimmed(text: str, cap: int = TRANSCRIPT_CAP) -> str:
    return text if len(text) <= cap else text[:cap] + f"[... {len(text) - cap} more characters]"


def _trimmed_value(value: Any, fix: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return _trimmed(fix(value))
    if isinstance(value, Mapping):
        return {str(k): _trimmed_value(v, fix) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_trimmed_value(v, fix) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One tool call the scripted model made in an agent check, and what the agent answered.

    Seen by the harness's model server, outside the sandbox. ``result`` is None
    when the agent never sent a tool_result (the session ended first);
    ``is_error`` is the agent's own flag. ``turn`` counts the check's calls from 1.
    """

    turn: int
    tool: str
    input: Mapping[str, Any] = field(hash=False)
    result: str | None
    is_error: bool | None
    session: int = 1
    #: When the model sent the call and when the agent's result came back (epoch seconds).
    sent_at: float | None = None
    answered_at: float | None = None

    def cleaned(self, fix: Callable[[str], str] = lambda text: text) -> TranscriptEntry:
        """This entry with every text passed through ``fix`` (a redactor) and trimmed to
        ``TRANSCRIPT_CAP`` characters (redacted first, so a trim never cuts a secret in two)."""
        return TranscriptEntry(self.turn, self.tool, _trimmed_value(dict(self.input), fix),
                               None if self.result is None else _trimmed(fix(self.result)),
                               self.is_error, self.session, self.sent_at, self.answered_at)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (an entry of a result's ``transcript``)."""
        return {"turn": self.turn, "session": self.session, "tool": self.tool, "input": dict(self.input),
                "result": self.result, "is_error": self.is_error,
                **({"sent_at": round(self.sent_at, 3)} if self.sent_at is not None else {}),
                **({"answered_at": round(self.answered_at, 3)} if self.answered_at is not None else {})}

    def summary(self, width: int = 80) -> str:
        """One line: the tool, its command or path, and how it ended."""
        what = self.input.get("command") or self.input.get("cmd") or self.input.get("file_path") or ""
        if isinstance(what, list):
            what = " ".join(map(str, what))
        what = " ".join(str(what).split())
        flags = [k for k in ("dangerouslyDisableSandbox", "run_in_background") if self.input.get(k)]
        state = " -> " + ("no result" if self.result is None else "error" if self.is_error else "ok")
        line = f"{self.turn}. {self.tool}" + (f"({', '.join(flags)})" if flags else "") + (f" {what}" if what else "")
        room = max(20, width - len(state))
        return (line if len(line) <= room else line[:room - 3] + "...") + state


@dataclass(frozen=True, slots=True)
class Execution:
    """What the harness saw of one run of a probe through a target."""

    target: str
    argv: tuple[str, ...]
    returncode: int | None
    timed_out: bool
    duration_s: float
    stdout: str
    stderr: str
    probe: ProbeReport | None
    evidence: tuple[str, ...]
    effect: bool
    error: str | None = None
    #: An agent check's tool calls and results (None for a target that is no agent).
    transcript: tuple[TranscriptEntry, ...] | None = None


@dataclass(frozen=True, slots=True)
class Result:
    """The verdict for one check against one target."""

    id: str
    category: str
    title: str
    expect: str
    observed: Observed
    status: Status
    errno: str | None
    evidence: tuple[str, ...]
    reason: str
    duration_s: float
    severity: str = "medium"
    target: str = ""
    control: str | None = None
    probe_action: str = ""
    layer: str | None = None
    waived: str | None = None
    accepted: bool = False
    #: The probe's own account of a failure (errno name and number, message, a
    #: spawned program's exit status, signal and first stderr line, a failed
    #: precondition): explains a denial or an inconclusive result, proves nothing.
    probe_report: dict[str, Any] | None = field(default=None, hash=False)
    #: An agent check's tool calls and the agent's results, trimmed and redacted
    #: (None when the target is no agent): explains a verdict, proves nothing.
    transcript: tuple[TranscriptEntry, ...] | None = field(default=None, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (the canonical report's result entry)."""
        return {
            "id": self.id, "category": self.category, "title": self.title,
            "expect": self.expect, "observed": self.observed.value,
            "status": self.status.value, "errno": self.errno,
            "evidence": list(self.evidence), "reason": self.reason,
            "duration_s": round(self.duration_s, 4), "severity": self.severity,
            "target": self.target, "control": self.control,
            "probe_action": self.probe_action, "layer": self.layer,
            "waived": self.waived, "accepted": self.accepted,
            "probe_report": self.probe_report,
            **({} if self.transcript is None else {"transcript": [t.to_dict() for t in self.transcript]}),
        }

    @property
    def excused(self) -> bool:
        """A deviation covered by an active waiver or by an accepted baseline."""
        return self.status in (Status.FAIL, Status.INCONCLUSIVE) and bool(self.waived or self.accepted)


#: Version of the JSON report format.
def status_exit(statuses: Iterable[str], unsure: Iterable[str] = ("inconclusive",)) -> int:
    """The one exit rule of every verdict (run, survey, fleet, replay): 1 when anything
    failed, else 3 when anything is in ``unsure`` (inconclusive; n/a in a grid), else 0.
    The caller leaves out what is excused (waived, accepted)."""
    seen = set(statuses)
    if "fail" in seen:
        return 1
    return 3 if seen & set(unsure) else 0


SCHEMA_VERSION = 1
#: Fields of a check or waiver that say where it was written, not what it is.
_PLACE = ("source", "line", "end_line")


def matrix_digest(matrix: Matrix) -> str:
    """``sha256:<hex>`` of the matrix's canonical content: its name, checks and waivers.

    Where the file lies and on which lines do not count, so the same matrix
    checked out in two places on two hosts has one digest.
    """
    def canon(obj: Any) -> Any:
        data = dataclasses.asdict(obj)
        for key in _PLACE:
            data.pop(key, None)
        return data

    content = {"name": matrix.name, "checks": [canon(c) for c in matrix.checks],
               "waivers": [canon(w) for w in matrix.waivers]}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(slots=True)
class RunReport:
    """The outcome of running a matrix against a target."""

    matrix: Matrix
    target: dict[str, Any]
    started: str
    duration_s: float
    results: list[Result]
    kept: list[str] = field(default_factory=list)
    preflight: dict[str, Any] | None = None
    #: What the harness could not remove at the end (path: why), and roots it retired.
    leftovers: list[str] = field(default_factory=list)
    #: Run folders of earlier harnesses that died without cleaning up, removed at the start.
    removed_stale: list[str] = field(default_factory=list)
    #: Where the run happened (see hostfacts.host_facts).
    host: dict[str, Any] | None = None
    #: Which part of the matrix this run covered ({"index": K, "count": N, ...}), None for all of it.
    shard: dict[str, Any] | None = None
    #: The digest of the whole matrix when ``matrix`` holds only a shard of it.
    matrix_digest: str | None = None

    def summary(self) -> dict[str, int]:
        """Counts per status, plus how many deviations were waived or accepted."""
        counts = {s.value: 0 for s in Status}
        counts.update(waived=0, accepted=0)
        for r in self.results:
            counts[r.status.value] += 1
            if r.excused:
                counts["waived" if r.waived else "accepted"] += 1
        return counts

    def exit_code(self) -> int:
        """0 all passed (or skipped, waived, accepted), 1 a fail, 3 no fail but an inconclusive."""
        return status_exit(r.status.value for r in self.results if not r.excused)

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON report."""
        return {
            "schema_version": SCHEMA_VERSION, "tool": "sandboxcheck", "version": __version__,
            "matrix": {"name": self.matrix.name, "path": self.matrix.path,
                       "checks": len(self.matrix.checks),
                       "digest": self.matrix_digest or matrix_digest(self.matrix)},
            "target": self.target, "started": self.started,
            "duration_s": round(self.duration_s, 3), "summary": self.summary(),
            "results": [r.to_dict() for r in self.results],
            **({"kept_workspaces": self.kept} if self.kept else {}),
            **({"preflight": self.preflight} if self.preflight is not None else {}),
            **({"leftovers": self.leftovers} if self.leftovers else {}),
            **({"removed_stale_run_folders": self.removed_stale} if self.removed_stale else {}),
            **({"host": self.host} if self.host is not None else {}),
            **({"shard": self.shard} if self.shard is not None else {}),
        }


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One scripted tool call of an agent check, before placeholders are expanded.

    ``tool`` Bash runs ``command`` (default ``{cmd}``: the check's probe, or the
    step's own ``probe`` with ``args``), with ``dangerouslyDisableSandbox: true``
    when ``disable_sandbox``. Read, Write and Edit act on ``path`` (default: the
    check's ``path`` argument) with ``content`` (Write) or ``old``/``new`` (Edit).
    ``session`` is the agent process (1-based) that makes the call: a higher
    number means the agent was restarted in between.
    """

    tool: str = "Bash"
    command: str | None = None
    probe: str | None = None
    args: tuple[tuple[str, Any], ...] = ()
    disable_sandbox: bool = False
    path: str | None = None
    content: str | None = None
    old: str | None = None
    new: str | None = None
    session: int = 1


@dataclass(frozen=True, slots=True)
class CheckAgent:
    """What an agent check scripts and how it configures the agent for that check.

    ``settings``/``user_settings`` are merged over the target's; ``allowed_tools``
    (when given) replaces the target's; ``flags`` and ``env`` are added;
    ``path_without`` removes executables (``bwrap``) from the agent's PATH;
    ``trusted`` (when given) says whether the user trusted the workspace
    (each driver records it the way its CLI does; None: the driver's default,
    trusted, as a user's own repository is); ``interactive`` starts the CLI
    in a terminal as a user does, with no prompt and no answer to what it asks
    (its steps are then never asked for).
    """

    steps: tuple[StepSpec, ...] = (StepSpec(),)
    settings: Mapping[str, Any] = field(default_factory=dict, hash=False)
    user_settings: Mapping[str, Any] = field(default_factory=dict, hash=False)
    allowed_tools: tuple[str, ...] | None = None
    flags: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    path_without: tuple[str, ...] = ()
    trusted: bool | None = None
    interactive: bool = False

    @property
    def sessions(self) -> int:
        """How many agent processes the check starts."""
        return max(s.session for s in self.steps)
