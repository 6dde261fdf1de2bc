"""The scripted model, protocol-neutral: steps, tool calls, the feed between harness and server, the transcript."""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

#: Text the harness puts in each session's prompt; the number is the session (1-based).
SESSION_TAG = "sandboxcheck-session-"
_SESSION_RE = re.compile(re.escape(SESSION_TAG) + r"(\d+)")
_SANDBOX_WORD = re.compile(r"sandbox(?!check)", re.IGNORECASE)  # not the harness's own paths
#: Prefix of the tool_use ids this server hands out (``toolu_sc<session>_<step>_<nonce>``).
TOOL_ID_PREFIX = "toolu_sc"
#: What the model says once the script is played out.
FINAL_TEXT = "Done: every scripted step ran."
#: What side requests (titles, quota checks, summaries) get.
SIDE_TEXT = "OK"

#: Phrases with which the agent reports that it refused a tool call for lack of a
#: permission, as opposed to a tool that ran and failed. Claude Code 2.1 in -p
#: mode says "Claude requested permissions to read from X, but you haven't
#: granted it yet." (Read/Write), "This command requires approval", "This Bash
#: command contains multiple operations. The following part requires approval:
#: ..." and "Contains command_substitution" (Bash), "Run outside of the sandbox"
#: (a Bash call with dangerouslyDisableSandbox). Claude Code 2.1.3xx answers a command
#: its permission check cannot parse with the reason it would have asked the user:
#: "A nested command in this command can't be checked before it runs" (a command
#: substitution), "Words after a redirect in this command can't be checked ...".
_DENIAL_PATTERNS = re.compile(
    r"requested permissions? to|haven't granted|have not granted|requires? approval|"
    r"^[^\n]{0,300}(?:can't|cannot) be checked before it runs|"
    r"^Run outside of the sandbox|^Contains [a-z_]+substitution|permission to use|"
    r"denied by (?:your )?permission|blocked by (?:your )?permission|not allowed by|"
    r"user (?:doesn't|does not) want|^Permission to (?:read|edit|write) [^\n]{1,300} has been denied",
    re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Step:
    """One scripted tool call: the tool's name and its input, as the model would send them."""

    tool: str
    input: Mapping[str, Any]
    label: str = ""

    def summary(self) -> str:
        """Short text naming the tool and its switches (never the command: see ToolCall)."""
        flags = [k for k in ("dangerouslyDisableSandbox", "run_in_background") if self.input.get(k)]
        path = self.input.get("file_path")
        return self.tool + (f"({', '.join(flags)})" if flags else "") + (f" {path}" if path else "")


@dataclass(frozen=True, slots=True)
class Script:
    """What the model does: for each session (one agent process) a list of steps."""

    sessions: tuple[tuple[Step, ...], ...]
    final_text: str = FINAL_TEXT

    def steps(self, session: int) -> tuple[Step, ...]:
        """The steps of a session (1-based); an unknown session has none."""
        return self.sessions[session - 1] if 1 <= session <= len(self.sessions) else ()


@dataclass(slots=True)
class ToolCall:
    """One scripted tool call and what the agent answered."""

    session: int
    index: int  # 0-based within the session
    step: Step
    id: str
    sent: int = 0  # how many times it was sent (retries of the same request)
    result: str | None = None
    is_error: bool | None = None
    #: When the model first sent it and when its result came back (epoch seconds, the
    #: harness's clock): a mechanism's timestamp is placed between them.
    sent_at: float = field(default_factory=time.time)
    answered_at: float | None = None

    @property
    def answered(self) -> bool:
        """The agent sent a tool_result for this call."""
        return self.result is not None

    @property
    def permission_denied(self) -> bool:
        """The agent refused to run the tool (permission), as opposed to running it."""
        return bool(self.is_error) and bool(_DENIAL_PATTERNS.search(self.result or ""))


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request the server answered (a summary; never the API key)."""

    method: str
    path: str
    kind: str  # main, side, count_tokens, head, unknown
    session: int | None = None
    answer: str = ""  # tool_use:<tool>, text, error
    stream: bool = False
    max_tokens: int | None = None
    tools: int = 0


@dataclass(slots=True)
class Transcript:
    """Everything the server saw of one agent run."""

    calls: list[ToolCall] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    finals: dict[int, int] = field(default_factory=dict)  # session -> times the final text was sent
    system_notes: dict[int, list[str]] = field(default_factory=dict)  # session -> what the model is told

    def call(self, session: int, index: int) -> ToolCall | None:
        """The recorded call of a session's step, if the model made it."""
        return next((c for c in self.calls if c.session == session and c.index == index), None)

    def render(self, with_inputs: bool = False) -> str:
        """Human-readable transcript. Without ``with_inputs`` only what came *back* from
        the agent is shown (plus tool names): the commands the harness sent are not
        evidence of anything and could otherwise echo a check's marker."""
        lines: list[str] = []
        for c in self.calls:
            state = ("no tool_result (the session ended first)" if not c.answered else
                     "PERMISSION DENIED" if c.permission_denied else
                     "is_error=true" if c.is_error else "is_error=false")
            lines.append(f"--- session {c.session} step {c.index + 1}: {c.step.summary()}: {state}")
            if with_inputs:
                lines.append("input: " + json.dumps(dict(c.step.input), sort_keys=True))
            if c.result is not None:
                lines.append(c.result)
        for session, n in sorted(self.finals.items()):
            lines.append(f"--- session {session}: final text sent" + (f" ({n} times)" if n > 1 else ""))
        for session, notes in sorted(self.system_notes.items()):
            for note in notes:
                lines.append(f"--- session {session} told the model: {note}")
        side = [e for e in self.exchanges if e.kind not in ("main", "head")]
        if side:
            lines.append("--- side requests: " + ", ".join(
                f"{e.method} {urlsplit(e.path).path} ({e.kind}, max_tokens={e.max_tokens}, tools={e.tools})"
                for e in side))
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tests and kept workspaces)."""
        return {"calls": [{"session": c.session, "step": c.index + 1, "tool": c.step.tool,
                           "input": dict(c.step.input), "id": c.id, "sent": c.sent,
                           "answered": c.answered, "is_error": c.is_error,
                           "permission_denied": c.permission_denied, "result": c.result}
                          for c in self.calls],
                "exchanges": [{"method": e.method, "path": e.path, "kind": e.kind, "session": e.session,
                               "answer": e.answer, "stream": e.stream, "max_tokens": e.max_tokens,
                               "tools": e.tools} for e in self.exchanges],
                "finals": dict(self.finals), "system_notes": dict(self.system_notes)}


def session_in_text(text: str) -> int | None:
    """The session number of a text carrying the session tag (a prompt), else None."""
    found = _SESSION_RE.search(text)
    return int(found.group(1)) if found else None


def sandbox_lines(texts: Sequence[tuple[str, str]]) -> list[str]:
    """The lines of ``(where, text)`` pairs that mention the sandbox: what the agent
    tells its model about it (system prompt, tool descriptions, the user turn's own
    text; never tool results, which the code under test writes). Each protocol
    module picks those texts out of its own request shape."""
    return [f"{where}: {ln.strip()[:300]}" for where, text in texts for ln in text.splitlines()
            if _SANDBOX_WORD.search(ln)][:40]


class Feed:
    """Steps handed to a long-lived session one check at a time.

    A shared agent session runs many checks in a row: the harness ``push``es a
    check's steps, then ``wait_answered`` until the agent sent the tool_result
    of the last one; the server's request for the next step waits in
    ``wait_step`` meanwhile (the agent sees a model that thinks for a moment).
    ``end`` makes the model send its final text, and the session exits.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._steps: list[Step] = []
        self._ended = False
        self._answered = 0  # how many steps have their tool_result recorded
        self._asked = 0  # how many steps the agent has asked for
        self._diverged = False

    def push(self, steps: Sequence[Step]) -> tuple[int, int]:
        """Queue ``steps``; returns the range of their indexes in the session."""
        with self._cond:
            if self._ended:
                raise RuntimeError("the session has ended")
            first = len(self._steps)
            self._steps.extend(steps)
            self._cond.notify_all()
            return first, len(self._steps)

    def end(self) -> None:
        """No more steps: the next request gets the final text."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def answered_count(self) -> int:
        """How many steps have their tool_result recorded."""
        return self._answered

    @property
    def diverged(self) -> bool:
        """The agent came back with a conversation missing steps it had answered."""
        return self._diverged

    def diverge(self) -> None:
        """End the feed because the agent's conversation no longer matches it."""
        with self._cond:
            self._diverged = True
            self._ended = True
            self._cond.notify_all()

    def wait_step(self, index: int, timeout: float | None = None) -> Step | None:
        """Step ``index`` once pushed; None when the feed ended (or the wait timed out) first."""
        with self._cond:
            if index >= self._asked:
                self._asked = index + 1
                self._cond.notify_all()
            self._cond.wait_for(lambda: index < len(self._steps) or self._ended, timeout)
            return self._steps[index] if index < len(self._steps) else None

    def answered(self, count: int) -> None:
        """The server recorded the tool_results of the first ``count`` steps."""
        with self._cond:
            if count > self._answered:
                self._answered = count
                self._cond.notify_all()

    def wait_asked(self, count: int, timeout: float, alive: Any = None) -> bool:
        """Wait until the agent asked for ``count`` steps (1: it is up and waiting for work)."""
        return self._wait(lambda: self._asked >= count, timeout, alive)

    def wait_answered(self, count: int, timeout: float, alive: Any = None) -> bool:
        """Wait until ``count`` steps are answered; False on timeout or when ``alive()`` turns false."""
        return self._wait(lambda: self._answered >= count, timeout, alive)

    def _wait(self, done: Any, timeout: float, alive: Any) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0 or (alive is not None and not alive()):
                    return False
                self._cond.wait(min(left, 0.2))
            return True
