"""The probe programs' own reports, run directly (no sandbox): errno numbers, exits, preconditions."""
from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

from sandboxcheck.model import ProbeReport
from sandboxcheck.resources import probes_dir
from sandboxcheck.probes import parse_probe_line

PYTHON = "/usr/bin/python3"


def probe(name: str, *argv: str) -> ProbeReport:
    """Run probe ``name`` as the harness does and parse its line."""
    proc = subprocess.run([PYTHON, "-B", "-E", "-s", "-S", str(probes_dir() / f"{name}.py"), *argv],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    rep = parse_probe_line(proc.stdout)
    assert rep is not None, proc.stdout
    return rep


def test_an_oserror_carries_its_errno_name_and_number(tmp_path: Path) -> None:
    rep = probe("read_file", "--path", str(tmp_path / "missing"))
    assert (rep.attempted, rep.ok, rep.errno, rep.errno_number, rep.precondition) == (True, False, "ENOENT", 2, None)


def test_spawn_reports_the_exit_status_and_stderr_of_the_program() -> None:
    rep = probe("spawn", "--", "/bin/sh", "-c", "echo first >&2; echo second >&2; exit 3")
    assert (rep.attempted, rep.ok, rep.errno) == (True, False, None)
    assert (rep.data["returncode"], rep.data["signal"], rep.data["stderr"]) == (3, None, "first\nsecond\n")


def test_spawn_reports_the_signal_that_killed_the_program() -> None:
    rep = probe("spawn", "--", "/bin/sh", "-c", "kill -USR2 $$")
    assert (rep.ok, rep.data["returncode"], rep.data["signal"]) == (False, -12, "SIGUSR2")


def test_spawn_that_cannot_start_is_the_denial_unless_starting_is_a_precondition(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-program")
    rep = probe("spawn", "--", missing)
    assert (rep.attempted, rep.errno, rep.errno_number, rep.precondition) == (True, "ENOENT", 2, None)
    rep = probe("spawn", "--exec", "precondition", "--", missing)
    assert (rep.attempted, rep.ok, rep.errno, rep.precondition) == (False, False, "ENOENT", f"start {missing}")


def test_a_shell_that_cannot_run_its_command_is_a_failed_precondition() -> None:
    rep = probe("spawn", "--exec", "precondition", "--", "/bin/sh", "-c", "sandboxcheck-no-such-command")
    assert (rep.attempted, rep.data["returncode"]) == (False, 127)
    assert rep.precondition == "start /bin/sh (a command it runs could not be executed)"
    assert "not found" in rep.data["stderr"]
    # A command that runs and fails is the action failing: a denial, not a precondition.
    rep = probe("spawn", "--exec", "precondition", "--", "/bin/sh", "-c", "exit 1")
    assert (rep.attempted, rep.precondition, rep.data["returncode"]) == (True, None, 1)


def test_read_and_write_through_a_symlink_the_probe_makes(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("canary\n")
    rep = probe("read_file", "--path", str(secret), "--via-symlink", str(tmp_path / "link"))
    assert (rep.ok, rep.data["data"], (tmp_path / "link").readlink()) == (True, "canary\n", secret)
    target = tmp_path / "written.txt"
    rep = probe("write_file", "--path", str(target), "--content", "x", "--via-symlink", str(tmp_path / "wlink"))
    assert rep.ok and target.read_text() == "x\n" and (tmp_path / "wlink").is_symlink()


def test_a_symlink_that_cannot_be_made_is_a_failed_precondition(tmp_path: Path) -> None:
    link = tmp_path / "no-such-folder" / "link"
    for name in ("read_file", "write_file"):
        rep = probe(name, "--path", str(tmp_path / "secret.txt"), "--via-symlink", str(link))
        assert (rep.attempted, rep.ok, rep.errno, rep.errno_number) == (False, False, "ENOENT", 2)
        assert rep.precondition == f"symlink {link} -> {tmp_path / 'secret.txt'}"
        assert rep.action.endswith(f"through symlink {link}")


def test_an_archive_that_cannot_be_opened_is_a_failed_precondition(tmp_path: Path) -> None:
    rep = probe("extract_tar", "--archive", str(tmp_path / "missing.tar"), "--dest", str(tmp_path))
    assert (rep.attempted, rep.errno, rep.precondition) == (False, "ENOENT", f"open {tmp_path / 'missing.tar'}")
    # Opened, then extraction refused (the destination is a file): the action's own failure.
    member = tmp_path / "m.txt"
    member.write_text("m")
    with tarfile.open(tmp_path / "a.tar", "w") as tar:
        tar.add(member, arcname="m.txt")
    rep = probe("extract_tar", "--archive", str(tmp_path / "a.tar"), "--dest", str(member))
    assert (rep.attempted, rep.ok, rep.precondition) == (True, False, None)
    assert rep.errno in ("ENOTDIR", "EEXIST") and rep.errno_number in (20, 17), rep
