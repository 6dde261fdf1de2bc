"""Black-box kit for the hostile-target suite.

Every attack is shell code that runs *inside the target*: a target file whose
command is ``/bin/sh -c '<preamble><attack>; exec "$@"' <marker> {root} {cmd}``
(optionally wrapped in bubblewrap or the Landlock launcher). The harness is run
as a subprocess (``python3 -m sandboxcheck run ...``) with its own TMPDIR
(mode 1777) inside the test's scratch folder; the "host files" the attacks aim
at are decoys in another folder of that scratch folder, never real system
files.

Nothing here imports sandboxcheck: the suite checks behaviour seen from
outside (files, modes, processes, exit codes, reports, memory, wall time).
"""
from __future__ import annotations

import json
import os
import re
import resource
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

requires_chattr = pytest.mark.skipif(shutil.which("chattr") is None, reason="chattr not installed (e2fsprogs)")
requires_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                    reason="bwrap not installed: apt-get install bubblewrap")
requires_mount = pytest.mark.skipif(shutil.which("mount") is None or shutil.which("umount") is None,
                                    reason="mount/umount not installed")

#: Harness peak RSS bound (the README's promise: under 100 MB whatever a target does).
RSS_LIMIT_MB = 100
#: Default wall-time bound of one harness run.
RUN_TIMEOUT = 60.0
#: Address-space cap of the harness process (inherited by what it starts): a regressed
#: harness that reads a device or a huge output gets MemoryError instead of taking the
#: test machine's memory (measured before the fix: 19 GB for a character device).
HARNESS_AS_LIMIT = 6 << 30
#: After SIGINT / SIGTERM, how long the harness may take to exit.
STOP_GRACE = 5.0

#: Names of the fake home's dummy credentials and the outside canary (README: the root layout).
CREDENTIAL_NAMES = frozenset({"id_ed25519", "credentials", ".netrc", ".git-credentials", ".npmrc", ".pypirc",
                              "secret.txt", "application_default_credentials.json"})
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


# --------------------------------------------------------------------------- matrices

def check(cid: str, probe: str, args: str, evidence: str | None = None, expect: str = "allowed",
          category: str = "exec", timeout: int | None = None) -> str:
    """One matrix check as YAML text (``args``/``evidence`` are YAML flow mappings)."""
    lines = [f"  - id: {cid}", f"    category: {category}", f"    title: hostile {cid}",
             f"    probe: {probe}", f"    args: {args}"]
    if evidence:
        lines.append(f"    evidence: {evidence}")
    lines.append(f"    expect: {expect}")
    if timeout:
        lines.append(f"    timeout: {timeout}")
    return "\n".join(lines) + "\n"


def hello(i: int | str = 0) -> str:
    """The cheapest check: the probe interpreter prints a marker."""
    return check(f"hostile.hello-{i}", "hello", '{left: RAN, right: "{token}"}',
                 '{kind: marker, marker: "RAN-{token}"}')


def read_notes(i: int | str = 0) -> str:
    """Read a workspace file (leak evidence: the harness scans outputs and the workspace)."""
    return check(f"hostile.read-notes-{i}", "read_file", '{path: "{workspace}/notes.txt"}',
                 "{kind: leak, labels: [workspace-file]}", category="fs-read")


def write_watched(i: int | str = 0, path: str = "{outside}/created.txt") -> str:
    """A check with a ``file`` evidence watch on ``path`` (the probe writes it)."""
    return check(f"hostile.write-watched-{i}", "write_file",
                 f'{{path: "{path}", content: "written {{token}}"}}',
                 f'{{kind: file, path: "{path}", contains: "{{token}}"}}', expect="denied",
                 category="fs-write")


def hello_watching(i: int | str = 0, path: str = "{outside}/created.txt") -> str:
    """A harmless probe whose check watches ``path`` (the probe never touches it)."""
    return check(f"hostile.watch-{i}", "hello", '{left: RAN, right: "{token}"}',
                 f'{{kind: file, path: "{path}"}}', expect="denied", category="fs-write")


def ssh_agent(i: int | str = 0) -> str:
    return check(f"hostile.ssh-agent-{i}", "unix_send", '{env: SSH_AUTH_SOCK, payload: "agent {token}"}',
                 "{kind: sink, sink: ssh-agent}", expect="allowed", category="ipc")


def spawn(i: int | str, shell: str) -> str:
    """A spawn probe running ``shell`` then printing SPAWNED-<token> (the probe runs in the
    unsandboxed control too: the fork-server path)."""
    argv = ["/bin/sh", "-c", shell + "; printf '%s-%s\\n' SPAWNED {token}"]
    return (check(f"hostile.spawn-{i}", "spawn", "{}", '{kind: marker, marker: "SPAWNED-{token}"}')
            + "    argv: " + json.dumps(argv) + "\n")


def matrix_text(checks: Iterable[str], name: str = "hostile", timeout: int = 10) -> str:
    return (f"version: 1\nname: {name}\ndefaults: {{timeout: {timeout}, severity: high}}\n"
            "checks:\n" + "".join(checks))


# --------------------------------------------------------------------------- processes

def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def marked_pids(mark: str) -> list[int]:
    """Live processes (not zombies) whose argv carries ``mark``."""
    me = os.getpid()
    found = []
    needle = mark.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        if needle in _cmdline(int(entry)):
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    state = fh.read().rsplit(b")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state not in (b"Z", b"X"):
                found.append(int(entry))
    return found


def kill_marked(mark: str, wait: float = 5.0) -> list[int]:
    """SIGKILL every process carrying ``mark`` (by pid); the pids killed."""
    killed: list[int] = []
    end = time.monotonic() + wait
    while time.monotonic() < end:
        pids = marked_pids(mark)
        if not pids:
            break
        for pid in pids:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            killed.append(pid)
        time.sleep(0.05)
    return sorted(set(killed))


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (HARNESS_AS_LIMIT, HARNESS_AS_LIMIT))
    # The harness gets Ctrl-C as a user's shell gives it: a test runner started in the
    # background (SIGINT ignored, inherited) must not turn the Ctrl-C tests into hangs.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _show_cmdline(pid: int) -> str:
    return _cmdline(pid).replace(b"\0", b" ")[:160].decode("utf-8", "replace")


def _vm_hwm_kb(pid: int) -> int | None:
    """The process's own peak resident set (VmHWM), in KiB; children never count."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


# --------------------------------------------------------------------------- the scene

@dataclass
class Run:
    """One harness run as seen from outside."""

    argv: list[str]
    rc: int | None
    stdout: str
    stderr: str
    elapsed: float
    peak_rss_mb: float
    #: "self" (exited on its own), "SIGINT", "SIGTERM" or "SIGKILL" (what made it exit).
    stopped_by: str
    #: True when the harness outlived the wall-time bound given to ``run``.
    hung: bool
    report: dict | None = None
    report_texts: dict[str, str] = field(default_factory=dict)

    def brief(self) -> str:
        tail = "\n".join(self.stderr.strip().splitlines()[-15:])
        return (f"rc={self.rc} stopped_by={self.stopped_by} hung={self.hung} elapsed={self.elapsed:.1f}s "
                f"peak_rss={self.peak_rss_mb:.0f}MB\n--- stderr (tail) ---\n{tail}")

    def results(self) -> list[dict]:
        return list((self.report or {}).get("results", []))

    def leftovers(self) -> list[str]:
        return [str(x) for x in (self.report or {}).get("leftovers", [])]


class Scene:
    """One test's scratch world: TMPDIR for the harness, decoy host files, an attack channel."""

    def __init__(self) -> None:
        tag = secrets.token_hex(6)
        self.mark = f"schx{tag}"
        self.base = Path(f"/tmp/{self.mark}")  # short: unix socket paths live under TMPDIR
        self.base.mkdir(mode=0o755)
        os.chmod(self.base, 0o755)
        self.tmpdir = self.base / "t"
        self.tmpdir.mkdir()
        os.chmod(self.tmpdir, 0o1777)
        self.host = self.base / "host"  # the decoy "host files"
        self.host.mkdir()
        os.chmod(self.host, 0o755)
        self.find = self.base / "find"  # where attacks write what they found
        self.find.mkdir()
        os.chmod(self.find, 0o777)
        self.out = self.base / "out"  # reports
        self.out.mkdir()
        self.secret = f"decoy-{secrets.token_hex(12)}"
        self.host_content = f"hostcontent-{secrets.token_hex(8)}"
        self._make_decoys()
        self.before = self.snapshot()
        self.base_modes = self._modes()
        self.runs: list[Run] = []
        self.procs: list[subprocess.Popen] = []

    # ---- decoys

    def _make_decoys(self) -> None:
        h = self.host
        (h / "file.txt").write_text(f"host file {self.host_content}\n")
        os.chmod(h / "file.txt", 0o644)
        (h / "hard.txt").write_text(f"hard-link target {self.host_content}\n")
        os.chmod(h / "hard.txt", 0o640)
        d = h / "victim"
        (d / "sub").mkdir(parents=True)
        (d / "a.txt").write_text(f"victim a {self.host_content}\n")
        (d / "sub" / "b.txt").write_text(f"victim b {self.host_content}\n")
        os.chmod(d / "a.txt", 0o640)
        os.chmod(d / "sub" / "b.txt", 0o604)
        os.chmod(d / "sub", 0o751)
        os.chmod(d, 0o755)
        m = h / "mnt"  # a folder an attack bind-mounts into a root
        m.mkdir()
        (m / "keep.txt").write_text(f"mounted {self.host_content}\n")
        os.chmod(m / "keep.txt", 0o644)
        os.chmod(m, 0o755)

    def snapshot(self) -> dict[str, tuple]:
        """Every entry of the decoy folder: type, mode, owner, bytes or link target."""
        snap: dict[str, tuple] = {}
        for dirpath, dirnames, filenames in os.walk(self.host, followlinks=False):
            for name in [*dirnames, *filenames, ""]:
                p = os.path.join(dirpath, name) if name else dirpath
                rel = os.path.relpath(p, self.host)
                try:
                    st = os.lstat(p)
                except OSError as exc:
                    snap[rel] = ("error", exc.errno)
                    continue
                if stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as fh:
                        body: object = fh.read(1 << 20)
                elif stat.S_ISLNK(st.st_mode):
                    body = os.readlink(p)
                else:
                    body = None
                snap[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, body)
        return snap

    def _modes(self) -> dict[str, tuple[int, int]]:
        out = {}
        for p in (self.base, self.tmpdir, self.host, self.find, Path("/tmp")):
            st = os.lstat(p)
            out[str(p)] = (st.st_mode, st.st_uid)
        return out

    # ---- targets and matrices

    def preamble(self) -> str:
        return f"""ROOT="$1"; shift
MARK='{self.mark}'; HOST='{self.host}'; FIND='{self.find}'; SCTMP='{self.tmpdir}'
WS="$ROOT/workspace"; FHOME="$ROOT/home"; OUT="$ROOT/outside"; RUNS="$ROOT/run"; RUNF=$(dirname "$ROOT")
once() {{ mkdir "$FIND/once-$1" 2>/dev/null; }}
msleep_bg() {{ setsid bash -c 'exec -a "$0" sleep "$1"' "$MARK-sleep" "$1" </dev/null >/dev/null 2>&1 & }}
harness_pid() {{
  P=$$; H=
  while [ "$P" -gt 1 ] 2>/dev/null; do
    if tr '\\0' ' ' <"/proc/$P/cmdline" 2>/dev/null | grep -q -- "$MARK" &&
       tr '\\0' ' ' <"/proc/$P/cmdline" 2>/dev/null | grep -q sandboxcheck; then H=$P; fi
    P=$(awk '/^PPid:/ {{print $2}}' "/proc/$P/status" 2>/dev/null); [ -n "$P" ] || break
  done
  echo "$H"
}}
"""

    def script(self, body: str) -> str:
        text = self.preamble() + body.strip("\n") + '\nexec "$@"\n'
        # Expanded by the harness as a template: a stray {name} would be a placeholder.
        bad = _PLACEHOLDER.findall(text.replace("{{", "").replace("}}", ""))
        assert not bad, f"attack script contains placeholder-like text {bad}"
        return text

    def target(self, body: str, wrap: str = "none", name: str | None = None,
               pass_env: Sequence[str] = ()) -> Path:
        """A target file running ``body`` (shell, inside the target) before the probe."""
        name = name or f"hostile-{wrap}"
        sh = ["/bin/sh", "-c", self.script(body), f"{self.mark}-attack", "{root}", "{cmd}"]
        if wrap == "none":
            cmd = sh
            requires = []
        elif wrap == "bwrap-loose":
            # bwrap-loose as the preset has it, plus the attack's findings folder (its exfil channel).
            cmd = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                   "--bind", "{workspace}", "{workspace}", "--bind", str(self.find), str(self.find),
                   "--chdir", "{workspace}", "--", *sh]
            requires = [{"name": "bwrap"}]
        elif wrap == "landlock":
            cmd = ["{python}", "-B", "-E", "-s", "-S", "{probes}/_landlock.py",
                   "--read", "/usr", "--read", "/lib", "--read", "/lib64", "--read", "/bin", "--read", "/etc",
                   "--read", "/proc", "--read", "{probes}", "--write", "/dev", "--write", "{workspace}",
                   "--write", str(self.find), "--deny-tcp", "--scope", "--", *sh]
            requires = []
        else:
            raise ValueError(wrap)
        data = {"name": name, "description": "hostile-suite attacker", "command": cmd}
        if requires:
            data["requires"] = requires
        if pass_env:
            data["pass_env"] = list(pass_env)
        if wrap == "landlock":
            data["kernel"] = ["landlock"]
        path = self.base / f"target-{name}-{secrets.token_hex(3)}.yaml"
        path.write_text(json.dumps(data, indent=1))  # JSON is YAML
        return path

    def matrix(self, checks: Iterable[str], timeout: int = 10) -> Path:
        path = self.base / f"matrix-{secrets.token_hex(3)}.yaml"
        path.write_text(matrix_text(checks, name="hostile", timeout=timeout))
        return path

    # ---- running the harness

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update({"TMPDIR": str(self.tmpdir), "GITHUB_TOKEN": self.secret,
                    "SCHX_DECOY_SECRET": self.secret, "PYTHONDONTWRITEBYTECODE": "1"})
        env.pop("SANDBOXCHECK_DEBUG", None)
        env.update(extra)
        return env

    def run(self, matrix: Path | str, target: Path | str, *args: str, jobs: int | None = 1,
            timeout: float = RUN_TIMEOUT, preflight: bool = False, reports: Sequence[str] = ("json",),
            interrupt_when: Callable[[], bool] | None = None, interrupt_timeout: float = 30.0,
            env: dict[str, str] | None = None) -> Run:
        """Run the harness; stop it (SIGINT, then SIGTERM, then SIGKILL) if it outlives
        ``timeout``, or send SIGINT once ``interrupt_when()`` is true."""
        n = len(self.runs)
        files = {fmt: self.out / f"report{n}.{fmt}" for fmt in reports}
        argv = [sys.executable, "-m", "sandboxcheck", "run", str(matrix), "--target", str(target)]
        if jobs is not None:
            argv += ["--jobs", str(jobs)]
        if not preflight:
            argv.append("--no-preflight")
        for fmt, path in files.items():
            argv += ["--report", f"{fmt}:{path}"]
        argv += list(args)
        errf = open(self.out / f"stderr{n}.txt", "w+b")
        outf = open(self.out / f"stdout{n}.txt", "w+b")
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=outf, stderr=errf, cwd=self.base,
                                env=env if env is not None else self.env(), start_new_session=True,
                                preexec_fn=_limit_memory)
        self.procs.append(proc)
        peak = [0]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                kb = _vm_hwm_kb(proc.pid)
                if kb is not None and proc.poll() is None:
                    peak[0] = max(peak[0], kb)
                stop.wait(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        stopped_by = "self"
        hung = False
        try:
            if interrupt_when is not None:
                end = time.monotonic() + interrupt_timeout
                while proc.poll() is None and time.monotonic() < end and not interrupt_when():
                    time.sleep(0.05)
                if proc.poll() is None and time.monotonic() < end:
                    stopped_by = self._stop(proc, first=signal.SIGINT)
            if proc.poll() is None:
                try:
                    proc.wait(max(0.1, timeout - (time.monotonic() - start)))
                except subprocess.TimeoutExpired:
                    hung = True
                    stopped_by = self._stop(proc, first=signal.SIGINT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            stop.set()
            sampler.join()
        elapsed = time.monotonic() - start
        outf.seek(0)
        errf.seek(0)
        stdout = outf.read(8 << 20).decode("utf-8", "replace")
        stderr = errf.read(8 << 20).decode("utf-8", "replace")
        outf.close()
        errf.close()
        run = Run(argv, proc.returncode, stdout, stderr, elapsed, peak[0] / 1024, stopped_by, hung)
        measured = os.environ.get("SANDBOXCHECK_HOSTILE_LOG")
        if measured:
            # One line per harness run: what the closing notes' table is measured from.
            with open(measured, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"test": os.environ.get("PYTEST_CURRENT_TEST", "").split(" ")[0],
                                     "rc": proc.returncode, "elapsed_s": round(elapsed, 2),
                                     "peak_rss_mb": round(peak[0] / 1024, 1), "stopped_by": stopped_by,
                                     "hung": hung}) + "\n")
        for fmt, path in files.items():
            if path.is_file():
                text = path.read_bytes()[: 16 << 20].decode("utf-8", "replace")
                run.report_texts[fmt] = text
                if fmt == "json":
                    try:
                        run.report = json.loads(text)
                    except ValueError:
                        run.report = None
        self.runs.append(run)
        return run

    @staticmethod
    def _stop(proc: subprocess.Popen, first: int) -> str:
        """Send ``first`` then escalate; the name of the signal the harness obeyed."""
        for sig, name in ((first, signal.Signals(first).name), (signal.SIGTERM, "SIGTERM")):
            try:
                os.kill(proc.pid, sig)
            except ProcessLookupError:
                return name
            try:
                proc.wait(STOP_GRACE)
                return name
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session (start_new_session): ours
        except OSError:
            proc.kill()
        proc.wait()
        return "SIGKILL"

    # ---- what must hold after any run

    def tmp_entries(self, cap: int = 20000) -> list[str]:
        """Everything under TMPDIR (relative paths), walked without recursion or following links."""
        out: list[str] = []
        stack = [""]
        while stack and len(out) < cap:
            rel = stack.pop()
            try:
                with os.scandir(os.path.join(str(self.tmpdir), rel)) as it:
                    for e in it:
                        sub = os.path.join(rel, e.name) if rel else e.name
                        out.append(sub)
                        if e.is_dir(follow_symlinks=False):
                            stack.append(sub)
            except OSError:
                continue
        return sorted(out)

    def findings(self) -> str:
        texts = []
        for p in sorted(self.find.iterdir()):
            if p.is_file() and not p.is_symlink():
                texts.append(p.read_bytes()[: 4 << 20].decode("utf-8", "replace"))
        return "\n".join(texts)

    def assert_host_unchanged(self) -> None:
        after = self.snapshot()
        changed = sorted(k for k in set(self.before) | set(after) if self.before.get(k) != after.get(k))
        details = [f"{k}: {self.before.get(k)!r:.120} -> {after.get(k)!r:.120}" for k in changed[:8]]
        assert not changed, "decoy host files changed:\n" + "\n".join(details)
        modes = self._modes()
        assert modes == self.base_modes, (
            "modes of TMPDIR / scratch folders changed: "
            + ", ".join(f"{p}: {oct(self.base_modes[p][0])} -> {oct(modes[p][0])}"
                        for p in modes if modes[p] != self.base_modes[p]))

    def assert_no_process_left(self, grace: float = 2.0) -> None:
        end = time.monotonic() + grace
        while True:
            left = marked_pids(self.mark)
            if not left or time.monotonic() > end:
                break
            time.sleep(0.05)
        desc = [f"{pid}: {_show_cmdline(pid)}" for pid in left]
        assert not left, "attack processes outlived the harness:\n" + "\n".join(desc)

    def assert_tmp_clean(self, run: Run, mode: str = "empty") -> None:
        """``empty``: nothing left in TMPDIR. ``reported``: only what the report names as
        a leftover (with its parents and, in the run's folder, its owner file), and no
        dummy credential. ``skip``: not checked (a kept root)."""
        if mode == "skip":
            return
        left = self.tmp_entries()
        creds = [e for e in left if os.path.basename(e) in CREDENTIAL_NAMES]
        if mode == "empty":
            assert not left, f"left in TMPDIR after the run: {left[:10]} ({len(left)} entries)"
            return
        named = _leftover_paths(run)
        unnamed = []
        for e in left:
            full = os.path.join(str(self.tmpdir), e)
            if any(full == n or full.startswith(n.rstrip("/") + "/") or n.startswith(full + "/")
                   for n in named):
                continue
            if e.count("/") == 1 and e.endswith("/owner") and named:
                continue
            unnamed.append(e)
        assert not unnamed and not creds, (
            f"left in TMPDIR without being named as a leftover: {unnamed[:10]}; dummy credentials left: "
            f"{creds[:5]} (report leftovers: {run.leftovers()[:5]})")

    def assert_secret_kept(self, run: Run) -> None:
        where = {"stdout (table)": run.stdout, "stderr": run.stderr, **run.report_texts,
                 "attack findings": self.findings()}
        hits = [name for name, text in where.items() if self.secret in text]
        assert not hits, f"the caller's GITHUB_TOKEN ({self.secret}) reached: {hits}"

    def assert_safe(self, run: Run, rcs: Iterable[int] = (0, 1, 3), tmp: str = "empty",
                    max_seconds: float | None = None, secret: bool = True) -> None:
        """Everything the suite requires of every run."""
        problems = []
        for name, fn in (("host", self.assert_host_unchanged),
                         ("processes", self.assert_no_process_left),
                         ("tmp", lambda: self.assert_tmp_clean(run, tmp)),
                         ("secret", lambda: self.assert_secret_kept(run) if secret else None)):
            try:
                fn()
            except AssertionError as exc:
                problems.append(f"[{name}] {exc}")
        if run.hung:
            problems.append(f"[time] the harness did not finish within its bound (stopped by {run.stopped_by})")
        if max_seconds is not None and run.elapsed > max_seconds:
            problems.append(f"[time] took {run.elapsed:.1f}s > {max_seconds}s")
        if run.peak_rss_mb >= RSS_LIMIT_MB:
            problems.append(f"[memory] harness peak RSS {run.peak_rss_mb:.0f} MB >= {RSS_LIMIT_MB} MB")
        rcs = tuple(rcs)
        if run.rc not in rcs:
            problems.append(f"[exit] exit code {run.rc}, expected one of {rcs}")
        assert not problems, "\n".join(problems) + "\n" + run.brief()

    # ---- cleanup

    def cleanup(self) -> list[str]:
        notes: list[str] = []
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                proc.kill()
                proc.wait()
        killed = kill_marked(self.mark)
        if killed:
            notes.append(f"killed leftover attack processes {killed}")
        for mnt in mounts_under(self.base):
            subprocess.run(["umount", "-l", mnt], check=False, capture_output=True)
            notes.append(f"unmounted {mnt}")
        if shutil.which("chattr"):
            subprocess.run(["chattr", "-R", "-f", "-i", "-a", str(self.base)], check=False,
                           capture_output=True)
        # rm copes with trees deeper than Python's recursion limit; never crosses into a mount.
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.base)], check=False, capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)
        if self.base.exists():
            notes.append(f"could not remove {self.base}")
        return notes


def _leftover_paths(run: Run) -> list[str]:
    """Paths named by the report's ``leftovers`` (entries are 'path: reason')."""
    out = []
    for item in run.leftovers():
        m = re.match(r"(/\S+?)(?::\s|$)", item)
        if m:
            out.append(m.group(1).rstrip(":"))
    return out


def mounts_under(base: Path) -> list[str]:
    """Mount points under ``base``, deepest first (from /proc/self/mountinfo)."""
    points = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                mp = line.split()[4].encode().decode("unicode_escape")
                if mp == str(base) or mp.startswith(str(base) + "/"):
                    points.append(mp)
    except OSError:
        pass
    return sorted(set(points), key=lambda p: -p.count("/"))
