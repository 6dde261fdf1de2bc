"""Run an agent's sessions one after the other and record how each ended.

The harness starts this file (standard library only, ``python3 -I -S``) as the
target process of an agent check. It reads a plan written by the agent target,
runs every session's argv with the session's prompt on stdin, passes each
session's output on (so the runner sees it as the target's stdout and stderr)
and writes each session's exit code and stderr to the plan's status file,
where the target's ``finish`` reads them: an agent that refuses to start
(``failIfUnavailable``) is told apart from one that crashed only this way.

A session with a ``terminal`` entry runs as a user starts the CLI: in a
terminal of its own (a pseudo-terminal, ``rows`` x ``cols``), with no prompt
and no answer to anything it asks. Once its screen has been still for
``quiet_s`` seconds and shows one of the ``waiting`` patterns (a screen where
the CLI waits for the user), or once ``max_s`` have passed, the launcher ends
the session's process group, which it started, and passes the screen's text
on as the session's output. The status says ``waited`` only when the CLI sat
at such a screen with nothing it started still running (a hook still at work
when the screen went still is no wait).

Usage: python3 -I -S launch.py PLAN.json
"""
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

#: Escape sequences of a terminal screen (CSI, OSC, two-byte ESC forms).
_ESCAPES = re.compile(r"\x1b\[[0-9;?<>=!]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()#][0-9A-Za-z]|\x1b[=>78cDEHMZ]")
#: Cursor moves a terminal UI uses for the spaces between words: forward by n (CSI n C)
#: and to column n (CSI n G).
_MOVE = re.compile(r"\x1b\[(\d{0,3})([CG])")
#: Cursor moves to another row (CSI row;col H or f, CSI n A/B/d).
_ROW = re.compile(r"\x1b\[\d{0,3}(?:;\d{0,3})?[Hf]|\x1b\[\d{0,3}[ABd]")
#: Bytes of a terminal session's output kept: the last ones (what the screen shows last).
_SCREEN_CAP = 1 << 16


def _write_status(path: str, sessions: list) -> None:
    """Write the status beside the plan without following a link planted there (the root
    is the target's to write: a link, FIFO or folder at the path is not followed or waited on)."""
    tmp = path + ".tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    except OSError:
        return  # a folder in the way: no status (the target's finish says the session did not finish)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError:
        return
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"sessions": sessions}, fh)
    os.replace(tmp, path)  # replaces whatever entry is at path (a link itself, not its target)


def screen_text(raw: bytes, cols: int = 100) -> str:
    """The text a terminal UI drew: escape sequences removed, its cursor moves to the
    right turned into the spaces they leave (at most a line's width), carriage returns dropped."""
    out, col = [], 0
    text = raw.decode("utf-8", "replace")
    pos = 0
    for m in _ESCAPES.finditer(text):
        for ch in text[pos:m.start()]:
            if ch == "\n":
                col = 0
            elif ch == "\r":
                continue
            else:
                col += 1
            out.append(ch)
        pos = m.end()
        move = _MOVE.fullmatch(m.group(0))
        if _ROW.fullmatch(m.group(0)):  # to a row (and column): a new line of the screen
            out.append("\n")
            col = 0
        elif move:
            n = int(move.group(1) or 1)
            gap = n if move.group(2) == "C" else max(n - 1 - col, 1 if col else 0)
            gap = min(gap, max(cols - col, 1))
            out.append(" " * gap)
            col += gap
    for ch in text[pos:]:
        if ch != "\r":
            out.append(ch)
    return "".join(out)


def _still_running(leader: int) -> list:
    """Processes the session's leader started that still run, as "pid command" (its
    descendants by parent, and everything in its session): a hook or server still at
    work when the screen went still."""
    stats = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as fh:
                fields = fh.read(4096).rsplit(b")", 1)[1].split()
            stats[int(name)] = (fields[0], int(fields[1]), int(fields[3]))  # state, ppid, session
        except (OSError, IndexError, ValueError):
            continue
    children: dict = {}
    for pid, (_, ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    mine, todo = set(), [leader]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in mine:
                mine.add(child)
                todo.append(child)
    mine |= {pid for pid, (_, _, sid) in stats.items() if sid == leader and pid != leader}
    out = []
    for pid in sorted(mine):
        if stats.get(pid, (b"Z",))[0] in (b"Z", b"X"):
            continue
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as fh:
                cmd = fh.read(300).replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue
        out.append("%d %s" % (pid, cmd[:120]))
    return out


def _end_group(proc: subprocess.Popen) -> None:
    """End the session's process group (its leader is ``proc``, started by this launcher in
    a session of its own), also what is left of it once the leader exited."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass  # the group is empty
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def run_in_terminal(session: dict, env: dict) -> tuple:
    """(returncode, screen text, note) of one session run in a pseudo-terminal."""
    import fcntl
    import pty
    import struct
    import termios

    term = session["terminal"]
    quiet, limit = float(term.get("quiet_s", 5)), float(term.get("max_s", 30))
    cols = int(term.get("cols", 100))
    # Screens at which the CLI waits for the user (its questions, its input prompt): a
    # still screen ends the session only when it shows one of them, so a start that is
    # merely slow is never taken for one that waits.
    waiting = [re.compile(p) for p in term.get("waiting", [])]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", int(term.get("rows", 40)), cols, 0, 0))
    env = dict(env, TERM="xterm-256color")

    def controlling_terminal() -> None:  # in the child, after setsid: the pty becomes its terminal
        try:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        except OSError:
            pass

    try:
        proc = subprocess.Popen(session["argv"], stdin=slave, stdout=slave, stderr=slave, env=env,
                                cwd=session.get("cwd"), start_new_session=True, close_fds=True,
                                preexec_fn=controlling_terminal)
    except OSError as exc:
        os.close(master)
        os.close(slave)
        return 127, "", "cannot start the agent: %s" % exc, None
    os.close(slave)
    os.set_blocking(master, False)
    screen = bytearray()
    start = last = time.monotonic()
    closed = False
    note = "it exited by itself"
    waited = None
    try:
        while True:
            now = time.monotonic()
            if proc.poll() is not None:
                break
            if now - start >= limit:
                note = "ended by the launcher after %.0fs (the time limit)" % limit
                if waiting:
                    note += ", never at a screen where it waits for the user"
                break
            if screen and now - last >= quiet:
                shown = screen_text(bytes(screen), cols)
                if not waiting or any(w.search(shown) for w in waiting):
                    # Still, at a screen that waits: unless something it started is still at work.
                    busy = _still_running(proc.pid)
                    note = "ended by the launcher once its screen had been still for %.0fs" % quiet
                    if busy:
                        note += "; its own processes still running then: " + "; ".join(busy[:5])
                    else:
                        waited = True
                    break
            if closed:  # the program closed its terminal and runs on: wait for it or the limit
                time.sleep(0.2)
                continue
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: every holder of the terminal's other side closed it
                    chunk = b""
                if not chunk:
                    closed = True
                    continue
                screen += chunk
                if len(screen) > _SCREEN_CAP:
                    del screen[:len(screen) - _SCREEN_CAP]
                last = time.monotonic()
    finally:
        _end_group(proc)
        os.close(master)
    text = screen_text(bytes(screen), cols)
    text = "\n".join(line.rstrip() for line in text.splitlines() if line.strip())
    # Whatever a screen shows, it is no probe's report (the harness reads lines with the
    # probes' prefix, "SANDBOXCHECK-PROBE ", as one): a program on it could forge one.
    text = text.replace("SANDBOXCHECK-PROBE ", "SANDBOXCHECK-PROBE(on the screen) ")
    return proc.returncode, text, note, waited


def main(argv: list) -> int:
    """Run every session of the plan in ``argv[1]``; always 0 (each session's exit is in the status)."""
    with open(argv[1], encoding="utf-8") as fh:
        plan = json.load(fh)
    done = []
    for number, session in enumerate(plan["sessions"], 1):
        env = dict(os.environ)
        env.update(session.get("env", {}))
        start = time.monotonic()
        if session.get("terminal"):
            rc, screen, note, waited = run_in_terminal(session, env)
            elapsed = time.monotonic() - start
            sys.stdout.write("=== agent session %d in a terminal: %s, exit %s after %.2fs ===\n%s\n"
                             % (number, note, rc, elapsed, screen))
            sys.stdout.flush()
            done.append({"session": number, "returncode": rc, "duration_s": round(elapsed, 3),
                         "terminal": note, "waited": bool(waited), "stdout": screen[-20000:], "stderr": ""})
            _write_status(plan["status"], done)
            continue
        try:
            proc = subprocess.run(session["argv"], input=session.get("stdin", "").encode(),
                                  capture_output=True, env=env, cwd=session.get("cwd"))
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        except OSError as exc:
            rc, out, err = 127, b"", ("cannot start the agent: %s\n" % exc).encode()
        elapsed = time.monotonic() - start
        sys.stdout.write("=== agent session %d: exit %d after %.2fs ===\n" % (number, rc, elapsed))
        sys.stdout.write(out.decode("utf-8", "replace"))
        sys.stdout.write("\n")
        sys.stdout.flush()
        if err.strip():
            sys.stderr.write(err.decode("utf-8", "replace"))
            sys.stderr.flush()
        done.append({"session": number, "returncode": rc, "duration_s": round(elapsed, 3),
                     "stdout": out.decode("utf-8", "replace")[-20000:],
                     "stderr": err.decode("utf-8", "replace")[-20000:]})
        _write_status(plan["status"], done)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
