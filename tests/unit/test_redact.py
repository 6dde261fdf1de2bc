"""The caller's secrets stay out of the harness process's /proc environ and out of reports."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sandboxcheck.redact import MASK, Redactor, secret_values

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_secret_values_skip_paths_locale_and_short_values() -> None:
    values = secret_values({"GITHUB_TOKEN": "ghp_decoy1234567890", "PATH": "/usr/bin:/bin",
                            "LANG": "C.UTF-8", "SHORT": "abc", "CI": "true", "LC_ALL": "C.UTF-8-long-enough",
                            "INIT_CWD": "/work/project", "NODE_PATH": "/a/lib:/b/lib"})
    assert values == ["ghp_decoy1234567890"]


def test_redactor_masks_every_occurrence_longest_first() -> None:
    red = Redactor(secret_values({"A": "decoy-secret-value", "B": "decoy-secret"}))
    assert red("x decoy-secret-value y decoy-secret z") == f"x {MASK} y {MASK} z"
    assert Redactor()("unchanged") == "unchanged"


def test_scrub_blanks_proc_environ_but_keeps_os_environ_and_children() -> None:
    code = ("import os, subprocess, sys\n"
            f"sys.path.insert(0, {SRC!r})\n"
            "from sandboxcheck.redact import scrub_initial_environ\n"
            "assert b'decoy-scrub-value' in open('/proc/self/environ', 'rb').read()\n"
            "assert scrub_initial_environ()\n"
            "assert b'decoy-scrub-value' not in open('/proc/self/environ', 'rb').read()\n"
            "assert os.environ['DECOY_SCRUB'] == 'decoy-scrub-value'\n"
            "out = subprocess.run(['/bin/sh', '-c', 'echo $DECOY_SCRUB'], capture_output=True, text=True).stdout\n"
            "assert out.strip() == 'decoy-scrub-value', out\n")
    env = {"PATH": os.environ["PATH"], "DECOY_SCRUB": "decoy-scrub-value"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_the_cli_re_executes_without_the_callers_variables() -> None:
    """``sandboxcheck`` runs in a process whose /proc environ holds only what it needs."""
    import time

    env = {"PATH": os.environ["PATH"], "PYTHONPATH": SRC, "DECOY_TOKEN": "decoy-reexec-value"}
    proc = subprocess.Popen([sys.executable, "-m", "sandboxcheck", "run", "baseline", "--target", "none",
                             "--no-preflight", "--format", "json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seen = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                seen = open(f"/proc/{proc.pid}/environ", "rb").read()
            except OSError:
                break
            if b"SANDBOXCHECK_CALLER_ENV_FD" in seen:
                break  # re-executed: the same pid, a new environment
            time.sleep(0.005)
        assert b"SANDBOXCHECK_CALLER_ENV_FD" in seen
        assert b"decoy-reexec-value" not in seen
        assert b"PYTHONPATH" in seen  # what the harness needs stays
    finally:
        if proc.poll() is None:
            proc.send_signal(2)  # Ctrl-C: it cleans up and exits
        proc.wait(60)
