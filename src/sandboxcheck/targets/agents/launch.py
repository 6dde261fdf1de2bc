"""Run an agent's sessions one after the other and record how each ended.

The harness starts this file (standard library only, ``python3 -I -S``) as the
target process of an agent check. It reads a plan written by the agent target,
runs every session's argv with the session's prompt on stdin, passes each
session's output on (so the runner sees it as the target's stdout and stderr)
and writes each session's exit code and stderr to the plan's status file,
where the target's ``finish`` reads them: an agent that refuses to start
(``failIfUnavailable``) is told apart from one that crashed only this way.

Usage: python3 -I -S launch.py PLAN.json
"""
import json
import os
import subprocess
import sys
import time


def _write_status(path: str, sessions: list) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"sessions": sessions}, fh)
    os.replace(tmp, path)


def main(argv: list) -> int:
    """Run every session of the plan in ``argv[1]``; always 0 (each session's exit is in the status)."""
    with open(argv[1], encoding="utf-8") as fh:
        plan = json.load(fh)
    done = []
    for number, session in enumerate(plan["sessions"], 1):
        env = dict(os.environ)
        env.update(session.get("env", {}))
        start = time.monotonic()
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
