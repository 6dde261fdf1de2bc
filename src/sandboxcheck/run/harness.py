"""Run checks through targets in throwaway roots and collect outside evidence."""
from __future__ import annotations

import dataclasses
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import placeholders
from ..probes import EXEC_ONLY_PROBES
from .launch import Capture, ForkServer, Keeper, LaunchResult, sweep_orphans
from ..model import Check, Execution, ProbeReport, TranscriptEntry
from ..evidence.sinks import Sinks
from ..evidence.processes import Witness, kill_tree, processes_with
from ..evidence.files import file_state, tree_state
from ..redact import Redactor, caller_environ, default_redactor
from ..resources import probes_dir
from ..targets.base import Target
from ..targets.tools import DEFAULT_PATH
from ..labels import CANARY_PREFIX, canary
from .workspace import Root, RunFolder, SetupError, apply_setup, copy_probes
from .sessions import MAX_SESSION_CHECKS
from .options import RunOptions
from .roots import _Roots
from .sessions import _Session
from ..probes import parse_probe_line, probe_argv as build_probe_argv
from .launch import _LAUNCH
from .launch import _server_python
from ..network.world import NET_PLACEHOLDERS, NET_SINKS, NetworkUnavailable, OwnedNetwork
from ..evidence.base import Observation, observers
from ..evidence.leak import digest as _digest

#: Every evidence kind's observer (evidence/).
_OBSERVERS = observers()




class Harness:
    """Owns every resource of a run: temp roots, probe copy, sinks, child processes.

    Use as a context manager; ``close()`` kills what is still running and
    removes everything, also after Ctrl-C or an exception.
    """

    def __init__(self, options: RunOptions | None = None) -> None:
        self.options = options or RunOptions()
        self._run: RunFolder | None = None
        self._old_runs: list[RunFolder] = []
        self._probes: Path | None = None
        self._sinks: Sinks | None = None
        #: The harness's own network (names, protocol sinks), started by the first check using it.
        self._network: OwnedNetwork | None = None
        self._network_problem: str | None = None
        self._forkserver: ForkServer | None = None
        self._roots: _Roots | None = None
        self._lock = threading.RLock()  # the lazy properties nest
        self._active: set[Keeper] = set()
        #: What could not be removed at the end (path: why), and roots retired instead of reused.
        self.leftovers: list[str] = []
        #: Run folders of harnesses that died without cleaning up, removed at the start.
        self.removed_stale: list[str] = []
        self._closing = False
        self._sessions: list[_Session] = []
        self._idle_sessions: dict[int, list[_Session]] = {}
        #: Long-lived sessions started so far, and why each one that ended early was retired.
        self.sessions_started = 0
        self.sessions_retired: list[str] = []
        self.kept: list[str] = []
        #: Masks the caller's secrets in every text copied from a target.
        self.redactor: Redactor = default_redactor()

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def probes(self) -> Path:
        with self._lock:
            self._refuse_if_closing()
            if self._probes is None:
                self._probes = copy_probes(probes_dir(), self.run_folder)
            return self._probes

    @property
    def run_folder(self) -> RunFolder:
        """The run's own folder under the temp folder (made on first use)."""
        with self._lock:
            self._refuse_if_closing()
            if self._run is None:
                self._run = RunFolder()
                self.removed_stale = self._run.removed_stale
                self.leftovers.extend(self._run.stale_problems)
            return self._run

    @property
    def sinks(self) -> Sinks:
        with self._lock:
            self._refuse_if_closing()
            if self._sinks is None:
                self._sinks = Sinks()
            return self._sinks

    def network(self) -> OwnedNetwork:
        """The harness's own network, started on first use; NetworkUnavailable when it cannot be."""
        with self._lock:
            self._refuse_if_closing()
            if self._network_problem:
                raise NetworkUnavailable(self._network_problem)
            if self._network is None:
                try:
                    self._network = OwnedNetwork(str(self.run_folder.path))
                except (NetworkUnavailable, OSError) as exc:
                    self._network_problem = str(exc)
                    raise NetworkUnavailable(self._network_problem) from exc
            return self._network

    def _refuse_if_closing(self) -> None:
        # After close() nothing may be created again: a worker still finishing
        # would otherwise re-create folders that cleanup has already passed.
        if self._closing:
            raise KeyboardInterrupt

    def abort(self) -> None:
        """Stop new executions and kill every target still running (close() still to follow)."""
        self._closing = True
        with self._lock:
            active = list(self._active)
        for keeper in active:
            keeper.kill()

    def close(self) -> None:
        """Kill every target still running and remove every temporary path."""
        with self._lock:
            sessions, self._idle_sessions = list(self._sessions), {}
        if not self._closing:
            # A normal end: sessions get their final answer and exit on their own.
            for session in sessions:
                session.handle.finish()
            deadline = time.monotonic() + 5
            for session in sessions:
                session.proc.wait(max(0.1, deadline - time.monotonic()))
        self.abort()
        for session in sessions:
            session.close(graceful=False)
            with self._lock:
                if session in self._sessions:
                    self._sessions.remove(session)
        if self._roots is not None:
            self._roots.close()
            self._roots = None
        if self._forkserver is not None:
            self._forkserver.close()
            self._forkserver = None
        if self._sinks is not None:
            self._sinks.close()
            self._sinks = None
        if self._network is not None:
            self._network.close()
            self._network = None
        runs = [*self._old_runs, *([self._run] if self._run is not None else [])]
        self._old_runs, self._run = [], None
        for run in runs:
            self.leftovers.extend(str(lo) for lo in run.close())
        sweep_orphans()

    # -- one execution ---------------------------------------------------
    @property
    def roots(self) -> _Roots:
        with self._lock:
            self._refuse_if_closing()
            if self._roots is None:
                self._roots = _Roots(self.run_folder, self.sinks, ahead=4 * max(1, self.options.jobs))
            return self._roots

    def forkserver(self, python: str) -> ForkServer:
        """The fork server for control runs, started on first use."""
        with self._lock:
            self._refuse_if_closing()
            if self._forkserver is not None and self._forkserver.proc.poll() is not None:
                # Killed by the code under test: its keepers go on (their sockets are ours);
                # new launches need a new server.
                self._forkserver.close()
                self._forkserver = None
            if self._forkserver is None:
                self._forkserver = ForkServer(python, self.probes)
            return self._forkserver

    def execute(self, check: Check, target: Target, control: bool = False) -> Execution:
        """Run ``check``'s probe through ``target`` in a fresh root and gather evidence.

        ``control`` marks an unsandboxed control run (``target`` is ``none``);
        it may then run from the fork server. A check the target can run in a
        long-lived session (an agent's) goes to one of its sessions instead,
        unless ``--keep-workspace`` or ``sessions=False`` asks for a process each.
        """
        if self._closing:
            raise KeyboardInterrupt
        self._check_run_folder()
        # A session's process is running already: it can inherit no descriptor of the check's,
        # nor join the harness's network (that wraps the process at its start).
        if (not control and self.options.sessions and not self.options.keep_workspace
                and not check.passed_fds and not self.uses_network(check, target)
                and target.session_reason(check) is None):
            return self._execute_in_session(check, target)
        roots = self.roots
        root = roots.take()
        try:
            return self._execute(check, target, root, control, None)
        finally:
            if self.options.keep_workspace:
                # The note lives beside the root, not in it: the target may have planted anything there.
                problem = roots.run.note(f"{root.path.name}.check.txt",
                                         f"{check.id} {'control' if control else target.name}\n")
                roots.keep(root)
                with self._lock:
                    self.kept.append(str(root.path))
                    if problem:
                        self.leftovers.append(f"note not written: {problem}")
            else:
                roots.discard(root)

    def _check_run_folder(self) -> None:
        """Start a new run folder if the code under test removed or moved the current one."""
        with self._lock:
            run = self._run
            if run is None or run.intact():
                return
            self._old_runs.append(run)
            self._run = RunFolder()
            self._probes = None
            if self._roots is not None:
                self._roots.switch(self._run)
            self.leftovers.append(f"{run.path}: the run's folder was removed or moved by the code under test "
                                  f"during the run; later checks ran in {self._run.path}")

    def track(self, keeper: Keeper) -> None:
        """Count ``keeper``'s process as the run's: ``abort``/``close`` end it."""
        with self._lock:
            self._active.add(keeper)

    def untrack(self, keeper: Keeper) -> None:
        """``keeper``'s process has ended and was waited for."""
        with self._lock:
            self._active.discard(keeper)

    def root_pool(self) -> _Roots | None:
        """The root pool if one was made (also while closing, unlike ``roots``)."""
        return self._roots

    def values(self, root: Root, target: Target) -> dict[str, str]:
        sinks = self.sinks
        return {"workspace": str(root.workspace), "home": str(root.home),
                "outside": str(root.outside), "root": str(root.path), "run": str(root.run),
                "probes": str(self.probes), "python": target.python(),
                "tmp": tempfile.gettempdir(), "token": root.token,
                "tcp_port": str(sinks.ports["tcp"]), "udp_port": str(sinks.ports["udp"]),
                "dns_port": str(sinks.ports["dns"])}

    def uses_network(self, check: Check, target: Target) -> bool:
        """Whether ``check`` runs inside the harness's own network (``--own-network``, or what it names)."""
        return bool(self.options.own_network
                    or (_placeholders_used(check) | getattr(target, "uses", set)()) & NET_PLACEHOLDERS
                    or check.evidence.sink in NET_SINKS or getattr(target, "own_network", lambda _: False)(check))

    def _execute(self, check: Check, target: Target, root: Root, control: bool,
                 session: _Session | None) -> Execution:
        """One execution in a seeded ``root``: by its own process, or by ``session``."""
        token, path = root.token, root.path
        witness: Witness | None = None
        cleanup_paths: list[Path] = []
        sinks = self.sinks
        unix = {name: path / "run" / f"{name}.sock" for name in _Roots.UNIX}
        sinks.watch(token)
        passed: dict[int, int] = {}
        net: OwnedNetwork | None = None
        try:
            values = self.values(root, target)
            used = _placeholders_used(check)
            if self.uses_network(check, target):
                try:
                    net = self.network()
                    if session is not None:
                        raise NetworkUnavailable("a long-lived agent session cannot run inside the harness's network: "
                                                 "use --agent-sessions per-check")
                    blind = net.cannot_observe(check.evidence.sink, [str(v) for v in _flat(check.args)])
                    if blind:
                        raise NetworkUnavailable(blind)
                except NetworkUnavailable as exc:
                    return Execution(target=target.name, argv=(), returncode=None, timed_out=False,
                                     duration_s=0.0, stdout="", stderr="", probe=None, evidence=(), effect=False,
                                     error=f"the harness's own network is unavailable: {exc}")
                values.update(net.values())
            if "witness_pid" in used:
                witness = Witness(canary(token, "witness"),
                                  lifetime=60 + (self.options.timeout or check.timeout) * 2)
                values["witness_pid"] = str(witness.pid)
            if check.passed_fds:
                values["fd"] = str(next(iter(check.passed_fds)))
            try:
                passed = apply_setup(root, check.setup, values)
            except (SetupError, placeholders.PlaceholderError) as exc:
                why = (exc.strerror if isinstance(exc, SetupError) else None) or str(exc)
                return Execution(target=target.name, argv=(), returncode=None, timed_out=False,
                                 duration_s=0.0, stdout="", stderr="", probe=None, evidence=(), effect=False,
                                 error="setup failed: " + self.redactor(why.replace(str(path), "{root}")))
            probe_argv = build_probe_argv(values["python"], self.probes, check.probe, check.args, values)
            ev = check.evidence
            watch = Path(placeholders.expand(ev.path, values)) if ev.path else None
            timeout = self.options.timeout or check.timeout + target.extra_timeout
            # What is searched for in the whole of the target's output as it streams
            # (only the head and tail of a flood are kept).
            needles = [f"{CANARY_PREFIX}-{token}-", *root.env_canaries.values(),
                       *(_digest(v) for v in root.env_canaries.values())]
            if ev.kind == "marker" and ev.marker:
                needles.append(placeholders.expand(ev.marker, values))
            survivors: list[tuple[int, str]] = []
            turns: tuple[TranscriptEntry, ...] | None = None
            if session is not None:
                before, ws_before = self._snapshots(check, root, watch, cleanup_paths)
                argv = list(session.handle.argv)
                proc_out, extra = session.run(check, values, probe_argv, timeout)
                turns = _transcript_of(session.handle)
            else:
                # The target's own set-up (an agent's settings files) comes before the
                # snapshots, so they count it as the starting state, not as an effect.
                state = target.start(values, probe_argv, check)
                try:
                    before, ws_before = self._snapshots(check, root, watch, cleanup_paths)
                    argv = target.argv(values, probe_argv)
                    if net is not None:
                        argv = net.wrap(argv)
                    env = self.environment(root, target)
                    fork = (control and self.options.fork_controls and check.probe not in EXEC_ONLY_PROBES
                            and net is None)
                    launched = self._launch(argv, root.workspace, env, timeout, needles, fork=fork,
                                            want_survivors=token if ev.kind == "survivor" else False,
                                            pass_fds=passed)
                    proc_out = launched
                    survivors = launched.survivors
                finally:
                    extra = target.finish(state)
                    turns = _transcript_of(state)
            if isinstance(proc_out, LaunchResult):
                rc, timed_out, duration, launch_error = (proc_out.returncode, proc_out.timed_out,
                                                         proc_out.duration, proc_out.error)
                out, err = proc_out.stdout.text(), proc_out.stderr.text()
                outputs = [("the target's stdout", proc_out.stdout.searchable()),
                           ("the target's stderr", proc_out.stderr.searchable())]
            else:
                rc, out, err, timed_out, duration, launch_error = proc_out
                outputs = [("the target's stdout", out), ("the target's stderr", err)]
            # Everything the harness saw of the target, outside the sandbox.
            outputs += [(where, _bounded(text)) for where, text in extra]
            # An agent's probe line is the one the harness's own model server saw come back
            # (or wrote itself): the launcher's stdout is reachable by whatever the agent
            # starts (/proc/<launcher>/fd/1), so it could forge one there.
            own = parse_probe_line(out) if turns is None else None
            probe = own or next((p for p in (parse_probe_line(text) for _, text in extra) if p), None)
            if probe is not None:
                # Throwaway paths are noise in a report line: show them as {root}.
                probe = _rewrite(probe, lambda text: text.replace(str(path), "{root}"))
            obs = Observation(check=check, root=root, values=values, outputs=outputs, argv=argv, sinks=sinks,
                              unix=unix, ws_before=ws_before, watch=watch, before=before, survivors=survivors,
                              witness=witness, network=net, transcript=turns)
            evidence = _OBSERVERS[ev.kind].observe(obs)
            witness = obs.witness  # a signal observer stops the witness it read
            launch_error = launch_error or obs.problem
            if ev.kind == "survivor" or timed_out:
                # Only the daemon probe tags processes; after a timeout look anyway.
                for proc in processes_with(token, exclude={witness.pid} if witness else set()):
                    kill_tree(proc.pid)
            red = self.redactor
            return Execution(target=target.name, argv=tuple(red(a) for a in argv), returncode=rc,
                             timed_out=timed_out, duration_s=duration, stdout=red(out), stderr=red(err),
                             probe=probe if probe is None else _rewrite(probe, red),
                             evidence=tuple(evidence), effect=bool(evidence),
                             error=red(launch_error) if launch_error else launch_error,
                             transcript=None if turns is None else tuple(t.cleaned(red) for t in turns))
        finally:
            for fd in passed.values():
                os.close(fd)
            sinks.forget(token)
            if net is not None:
                net.forget(token)
            if witness is not None:
                witness.stop()
            for extra_path in cleanup_paths:
                try:
                    extra_path.unlink()
                except OSError:
                    pass

    @staticmethod
    def _snapshots(check: Check, root: Root, watch: Path | None, cleanup_paths: list[Path]
                   ) -> tuple[Any, dict[str, tuple[int, int, int]]]:
        """The watched path's state and the workspace's, before the action."""
        before = file_state(watch, root.fd, root.path) if watch else None
        if watch and not before.exists and not _inside(watch, root.path):  # type: ignore[union-attr]
            cleanup_paths.append(watch)
        return before, tree_state(root.fd, "workspace") if check.evidence.kind == "leak" else {}

    # -- long-lived sessions ---------------------------------------------
    def _execute_in_session(self, check: Check, target: Target) -> Execution:
        session = self._acquire_session(target)
        try:
            root = session.next_root()
        except OSError as exc:
            # An earlier check left the root in a state it cannot be reset from.
            self._release_session(target, session, f"its root could not be reset: {exc}")
            session = self._acquire_session(target)
            try:
                root = session.next_root()
            except BaseException:
                self._release_session(target, session, "its root could not be reset")
                raise
        retire: str | None = "interrupted"
        try:
            ex = self._execute(check, target, root, False, session)
            retire = ("the check timed out" if ex.timed_out else
                      "the session ended" if not session.alive() else
                      f"it ran {session.checks} checks" if session.checks >= MAX_SESSION_CHECKS else
                      session.handle.tainted())
            return ex
        finally:
            self._release_session(target, session, retire)

    def _acquire_session(self, target: Target) -> _Session:
        dead: list[_Session] = []
        with self._lock:
            self._refuse_if_closing()
            idle = self._idle_sessions.setdefault(id(target), [])
            while idle:
                session = idle.pop()
                if session.alive():
                    return session
                self._sessions.remove(session)
                self.sessions_retired.append("the session ended while idle")
                dead.append(session)
        for session in dead:
            session.close(graceful=False)
        session = _Session(self, target)
        with self._lock:
            self.sessions_started += 1
            self._sessions.append(session)
            if self._closing:
                session.close(graceful=False)
                raise KeyboardInterrupt
        return session

    def _release_session(self, target: Target, session: _Session, retire: str | None) -> None:
        if retire is None and not self._closing:
            with self._lock:
                self._idle_sessions.setdefault(id(target), []).append(session)
            return
        session.close(graceful=retire != "interrupted")
        with self._lock:
            self.sessions_retired.append(retire or "the harness is closing")
            if session in self._sessions:
                self._sessions.remove(session)

    def environment(self, root: Any, target: Target) -> dict[str, str]:
        base = {"HOME": str(root.home), "PATH": DEFAULT_PATH, "USER": "sandboxcheck",
                "LOGNAME": "sandboxcheck", "LANG": "C.UTF-8", "TERM": "dumb",
                "SSH_AUTH_SOCK": str(root.run / "ssh-agent.sock"),
                "DOCKER_HOST": f"unix://{root.run / 'docker.sock'}"}
        base.update(root.env_canaries)
        return target.environment(base, caller_environ())

    def _launch(self, argv: Sequence[str], cwd: Path, env: dict[str, str], timeout: float,
                needles: Sequence[str] = (), fork: bool = False, want_survivors: bool | str = False,
                pass_fds: Mapping[int, int] | None = None) -> LaunchResult:
        """Run ``argv`` under a keeper of its own (see ``controls``); everything it starts ends with it.

        ``fork`` runs the probe's code in a fork of the launch server (a control run);
        ``pass_fds`` are descriptors the target inherits (number -> the harness's descriptor).
        """
        start = time.monotonic()
        started: list[Keeper] = []

        def on_start(keeper: Keeper) -> None:
            started.append(keeper)
            with self._lock:
                self._active.add(keeper)
            if self._closing:
                keeper.kill()

        try:
            server = self.forkserver(_server_python())
            return server.run(argv if fork else [*_LAUNCH, *argv], env, cwd, timeout, on_start,
                              fork=fork, needles=needles, want_survivors=want_survivors,
                              pass_fds=pass_fds)
        except OSError as exc:
            empty = Capture()
            return LaunchResult(None, empty, Capture(), False, time.monotonic() - start,
                                f"could not start the target: {exc}")
        finally:
            with self._lock:
                self._active.difference_update(started)
            sweep_orphans()




def _rewrite(probe: ProbeReport, fn: Callable[[str], str]) -> ProbeReport:
    """``probe`` with ``fn`` applied to its texts, every string in its data included."""
    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return fn(value)
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return dataclasses.replace(probe, action=fn(probe.action), message=fn(probe.message),
                               precondition=fn(probe.precondition) if probe.precondition else None,
                               data=walk(probe.data))


def _placeholders_used(check: Check) -> set[str]:
    """The placeholders ``check``'s arguments and evidence name."""
    ev_texts = [t for t in (check.evidence.path, check.evidence.contains, check.evidence.marker) if t]
    return set().union(*(placeholders.names(v) for v in [*_flat(check.args), *ev_texts]))


def _flat(args: tuple[tuple[str, Any], ...]) -> list[str]:
    out: list[str] = []
    for _, v in args:
        out.extend(v if isinstance(v, (list, tuple)) else [str(v)])
    return out


def _inside(p: Path, root: Path) -> bool:
    """Whether ``p`` names something under ``root`` (by its text: nothing is resolved)."""
    text, base = os.path.normpath(str(p)), str(root)
    return text == base or text.startswith(base + "/")


#: Characters kept of an extra output (an agent's transcript) when it is searched.
_EXTRA_CAP = 4 << 20


def _transcript_of(holder: Any) -> tuple[TranscriptEntry, ...] | None:
    """An agent's record of a check's tool calls (its run state or its session keeps
    one in ``transcript``); None for a target that is no agent."""
    turns = getattr(holder, "transcript", None)
    return tuple(t for t in turns if isinstance(t, TranscriptEntry)) if isinstance(turns, tuple) else None


def _bounded(text: str) -> str:
    if len(text) <= _EXTRA_CAP:
        return text
    half = _EXTRA_CAP // 2
    return text[:half] + "\n[...]\n" + text[-half:]


