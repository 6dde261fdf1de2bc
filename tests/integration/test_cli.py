"""The command line end to end: exit codes, reports, timeouts, Ctrl-C and cleanup."""
from __future__ import annotations

import glob
import shutil
import tempfile
from collections.abc import Iterator
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from marks import eventually, requires_bwrap

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def private_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test's runs get their own (short: unix socket paths) temp folder."""
    tmp = Path(tempfile.mkdtemp(prefix="sct-", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(tmp))
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


def sc(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sandboxcheck.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def leftovers() -> set[str]:
    return set(glob.glob(os.path.join(os.environ["TMPDIR"], "*")))


def one_check_matrix(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text("checks:\n" + body)
    return path


READ_OUTSIDE = """  - id: fs.read.absolute
    category: fs-read
    title: read outside
    probe: read_file
    args: {path: "{outside}/secret.txt"}
    expect: denied
"""


def test_exit_1_on_fail_and_json_report(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = sc("run", "baseline", "--target", "none", "--format", "json", "--output", str(out))
    assert proc.returncode == 1, proc.stderr
    report = json.loads(out.read_text())
    assert report["schema_version"] == 1
    assert report["target"]["name"] == "none"
    assert report["target"]["expanded_command"][0].endswith("python3")
    assert set(report["summary"]) == {"pass", "fail", "inconclusive", "skip", "waived", "accepted"}
    assert report["summary"]["fail"] > 30
    first = report["results"][0]
    assert set(first) >= {"id", "category", "title", "expect", "observed", "status", "errno",
                          "evidence", "reason", "duration_s"}
    assert leftovers() == set(), "a throwaway root or file was left behind"


@requires_bwrap
def test_exit_0_when_everything_passes() -> None:
    proc = sc("run", "baseline", "--target", "bwrap-strict")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "43 passed, 0 failed" in proc.stdout


def test_exit_2_on_bad_matrix_and_bad_target(tmp_path: Path) -> None:
    bad = one_check_matrix(tmp_path, READ_OUTSIDE.replace("expect: denied", "expect: denyed"))
    proc = sc("run", str(bad), "--target", "none")
    assert proc.returncode == 2
    assert f"{bad}:7: checks[0].expect: 'denyed' is not one of: allowed, denied" in proc.stderr
    proc = sc("run", "baseline", "--target", "no-such-target")
    assert proc.returncode == 2 and "unknown target 'no-such-target'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unavailable_target_names_the_package(tmp_path: Path) -> None:
    target = tmp_path / "t.yaml"
    target.write_text("name: ghost\nrequires: [{name: sandboxcheck-no-such-binary, install: "
                      "'apt-get install ghost'}]\ncommand: [sandboxcheck-no-such-binary, '{cmd}']\n")
    proc = sc("run", "baseline", "--target", str(target))
    assert proc.returncode == 2
    assert "sandboxcheck-no-such-binary not found on PATH: apt-get install ghost" in proc.stderr


def test_missing_binary_is_inconclusive_never_a_denial(tmp_path: Path) -> None:
    m = one_check_matrix(tmp_path, READ_OUTSIDE)
    proc = sc("run", str(m), "--target", "/nonexistent/sandbox {cmd}", "--format", "json")
    assert proc.returncode == 3, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert result["status"] == "inconclusive" and result["observed"] == "unknown"
    assert "exit 127" in result["reason"]


def test_control_that_cannot_act_makes_inconclusive(tmp_path: Path) -> None:
    m = one_check_matrix(tmp_path, READ_OUTSIDE.replace("secret.txt", "missing.txt"))
    proc = sc("run", str(m), "--target", "landlock", "--format", "json")
    result = json.loads(proc.stdout)["results"][0]
    assert result["status"] == "inconclusive"
    assert "control without a sandbox could not do it either" in result["reason"]
    assert proc.returncode == 3


def test_timeout_kills_the_whole_tree(tmp_path: Path) -> None:
    m = one_check_matrix(tmp_path, READ_OUTSIDE)
    marker = "31.4159"
    start = time.monotonic()
    proc = sc("run", str(m), "--target", f"/bin/sh -c 'sleep {marker}; exec \"$@\"' sh {{cmd}}",
              "--timeout", "1", "--format", "json", "--no-control")
    assert time.monotonic() - start < 20
    result = json.loads(proc.stdout)["results"][0]
    assert result["status"] == "inconclusive" and "timed out" in result["reason"]
    assert eventually(lambda: not [p for p in psutil.process_iter(["cmdline"])
                                   if marker in " ".join(p.info["cmdline"] or [])])


@pytest.mark.parametrize("sig, jobs", [(signal.SIGINT, "2"), (signal.SIGTERM, "8")])
def test_ctrl_c_removes_everything(tmp_path: Path, sig: int, jobs: str) -> None:
    before: set[str] = set()
    marker = "27.1828"
    proc = subprocess.Popen([sys.executable, "-m", "sandboxcheck.cli", "run", "baseline", "--target",
                             f"/bin/sh -c 'sleep {marker}; exec \"$@\"' sh {{cmd}}", "--jobs", jobs],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # Ctrl-C as a user's shell gives it, whatever the test runner inherited.
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    def sleeping() -> bool:  # a target's sleep (the run's own command line names the marker too)
        return any((p.info["cmdline"] or [""])[0] == "sleep" and marker in p.info["cmdline"]
                   for p in psutil.process_iter(["cmdline"]))

    # A launch is under way once a target's sleep runs: the signal lands inside its wait.
    eventually(lambda: (bool(leftovers() - before) and sleeping()) or proc.poll() is not None, timeout=60)
    if not leftovers() - before:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate(timeout=30)
        pytest.fail(f"the run never started (exit {proc.returncode}):\n{err[-4000:]}\n{out[-2000:]}")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert eventually(lambda: leftovers() <= before), leftovers() - before
    assert eventually(lambda: not sleeping())


def test_keep_workspace_keeps_and_reports(tmp_path: Path) -> None:
    m = one_check_matrix(tmp_path, READ_OUTSIDE)
    proc = sc("run", str(m), "--target", "landlock", "--keep-workspace", "--format", "json")
    kept = json.loads(proc.stdout)["kept_workspaces"]
    try:
        # The target's root and the control's (plus the preflight's), each labelled.
        labels = sorted(Path(f"{root}.check.txt").read_text().split()[1] for root in kept
                        if Path(f"{root}.check.txt").read_text().startswith("fs.read.absolute "))
        assert labels == ["control", "landlock"]
        for root in kept:
            assert (Path(root) / "workspace" / "notes.txt").exists()
            assert (Path(root) / "home" / ".ssh" / "id_ed25519").exists()
    finally:
        for root in kept:
            shutil.rmtree(root, ignore_errors=True)


def test_validate_targets_probes() -> None:
    assert sc("validate", "baseline").returncode == 0
    listing = sc("targets")
    assert listing.returncode == 0
    for preset in ("none", "bwrap-strict", "bwrap-loose", "landlock"):
        assert preset in listing.stdout
    probes = sc("probes")
    assert "read_file" in probes.stdout and "dns_query" in probes.stdout


def test_too_long_temp_dir_is_bad_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    deep = tmp_path / ("x" * 60) / ("y" * 60)
    deep.mkdir(parents=True)
    monkeypatch.setenv("TMPDIR", str(deep))
    proc = sc("run", "baseline", "--target", "none")
    assert proc.returncode == 2
    assert "too long for unix sockets" in proc.stderr and "TMPDIR" in proc.stderr
