"""Long-lived target sessions (an agent process that runs check after check)."""
from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .launch import Keeper
from ..model import Check
from ..targets.base import Target, TargetError, TargetSession
from .launch import _LAUNCH, _server_python
from .workspace import Root, new_token, reseed

if TYPE_CHECKING:
    from .harness import Harness


#: A long-lived session is retired after this many checks, before its conversation grows
#: long enough for the agent to compact it (and lose the steps the model counts on).
MAX_SESSION_CHECKS = 100


class _Session:
    """A target's long-lived process (an agent session) and the root it works in.

    The root is the session's for its whole life (the process's cwd and HOME);
    before each check it is reseeded with a new token, so every check still has
    canaries of its own. The process's environment canaries carry the
    session's token, which no check's ever equals.
    """

    def __init__(self, harness: Harness, target: Target) -> None:
        self.harness = harness
        self.target = target
        self.root = harness.roots.take()
        self.closed = False
        self._close_lock = threading.Lock()
        #: Checks handed to this session so far.
        self.checks = 0
        self.handle: TargetSession
        try:
            self.handle = target.open_session(harness.values(self.root, target))
        except BaseException:
            harness.roots.discard(self.root)
            raise
        env = harness.environment(self.root, target)
        env.update(self.handle.env)
        self._out, self._err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
        try:
            self.proc: Keeper = harness.forkserver(_server_python()).spawn(
                [*_LAUNCH, *self.handle.argv], env, self.root.workspace, stdin_r,
                self._out.fileno(), self._err.fileno())
        except OSError as exc:
            os.close(stdin_w)
            self.handle.finish()
            self.handle.close()
            harness.roots.discard(self.root)
            raise TargetError(f"target {target.name!r}: could not start a session: {exc}") from None
        finally:
            os.close(stdin_r)
        harness.track(self.proc)
        try:
            with os.fdopen(stdin_w, "wb") as fh:
                fh.write(self.handle.stdin)
        except OSError:
            pass  # it died at once: the first check says so

    def alive(self) -> bool:
        return self.proc.poll() is None and not self.proc.ended

    def next_root(self) -> Root:
        """The session's root, reseeded for one more check."""
        self.checks += 1
        root = reseed(self.root, new_token(), self.handle.keep)
        root.env_canaries = dict(self.root.env_canaries)  # the process's, fixed at its start
        self.handle.restore()
        self.harness.roots.listen(root)
        self.root = root
        return root

    def run(self, check: Check, values: dict[str, str], cmd: Sequence[str], timeout: float
            ) -> tuple[tuple[int | None, str, str, bool, float, str | None], list[tuple[str, str]]]:
        """Hand one check to the process; the launch tuple ``_launch`` returns, and the outputs."""
        start = time.monotonic()
        answered, outputs = self.handle.run(check, values, cmd, timeout, self.alive)
        duration = time.monotonic() - start
        rc = self.proc.poll()
        error = None
        timed_out = not answered and rc is None
        if not answered and rc is not None:
            size = self._err.seek(0, os.SEEK_END)
            self._err.seek(max(0, size - 2000))
            tail = self._err.read(2000).decode("utf-8", "replace").strip()
            error = (f"the {self.target.name} session ended (exit {rc}) before answering the check"
                     + (f": {tail.splitlines()[-1][:200]}" if tail else ""))
        return (rc, "", "", timed_out, duration, error), outputs

    def close(self, graceful: bool = True) -> None:
        """End the process (asked first when ``graceful``), stop its helpers, drop its root.

        Whatever the process started and left running goes too (its descendants,
        found while it still runs, and its process group), before the root is
        handed back for another check.
        """
        with self._close_lock:
            if self.closed:
                return
            self.closed = True
        self.handle.finish()
        if graceful:
            self.proc.wait(5)
        self.proc.end()  # the process and everything it started, by its keeper
        self.harness.untrack(self.proc)
        self.handle.close()
        self._out.close()
        self._err.close()
        roots = self.harness.root_pool()  # not .roots: that refuses once the harness is closing
        if roots is not None:
            roots.discard(self.root)
