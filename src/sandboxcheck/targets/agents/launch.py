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
on as the session's output.

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
#: Bytes of a terminal session's screen output kept.
_SCREEN_CAP = 1 << 20


def _write_status(path: str, sessions: list) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"sessions": sessions}, fh)
    os.replace(tmp, path)


def screen_text(raw: bytes) -> str:
    """The text a terminal UI drew: escape sequences removed, its cursor moves to the
    right turned into the spaces they leave, carriage returns dropped."""
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
            out.append(" " * min(gap, 400))
            col += min(gap, 400)
    for ch in text[pos:]:
        if ch != "\r":
            out.append(ch)
    return "".join(out)


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
    quiet, limit = float(term.get("quiet_s", 4)), float(term.get("max_s", 30))
    # Screens at which the CLI waits for the user (its questions, its input prompt): a
    # still screen ends the session only when it shows one of them, so a start that is
    # merely slow is never taken for one that waits.
    waiting = [re.compile(p) for p in term.get("waiting", [])]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", int(term.get("rows", 40)),
                                                       int(term.get("cols", 100)), 0, 0))
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
        return 127, "", "cannot start the agent: %s" % exc
    os.close(slave)
    screen = bytearray()
    start = last = time.monotonic()
    closed = False
    note = "it exited by itself"
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
                shown = screen_text(bytes(screen[-16384:]))
                if not waiting or any(w.search(shown) for w in waiting):
                    note = "ended by the launcher once its screen had been still for %.0fs" % quiet
                    break
            if closed:  # the program closed its terminal and runs on: wait for it or the limit
                time.sleep(0.2)
                continue
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the terminal's other side closed it
                    chunk = b""
                if not chunk:
                    closed = True
                    continue
                if len(screen) < _SCREEN_CAP:
                    screen += chunk[:_SCREEN_CAP - len(screen)]
                last = time.monotonic()
    finally:
        _end_group(proc)
        os.close(master)
    text = screen_text(bytes(screen))
    text = "\n".join(line.rstrip() for line in text.splitlines() if line.strip())
    # Whatever a screen shows, it is no probe's report (the harness reads lines with the
    # probes' prefix, "SANDBOXCHECK-PROBE ", as one): a program on it could forge one.
    text = text.replace("SANDBOXCHECK-PROBE ", "SANDBOXCHECK-PROBE(on the screen) ")
    return proc.returncode, text, note


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
            rc, screen, note = run_in_terminal(session, env)
            elapsed = time.monotonic() - start
            sys.stdout.write("=== agent session %d in a terminal: %s, exit %s after %.2fs ===\n%s\n"
                             % (number, note, rc, elapsed, screen))
            sys.stdout.flush()
            done.append({"session": number, "returncode": rc, "duration_s": round(elapsed, 3),
                         "terminal": note, "stdout": screen[-20000:], "stderr": ""})
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
