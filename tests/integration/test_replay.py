"""``sandboxcheck replay`` against real releases: every bundled advisory is reproduced here.

Each advisory's checks run against its vulnerable and its fixed release
(installed once into the cache), and the bypass must show: allowed in the
first, denied in the second. Two advisories of our own prove that the other
verdicts come from real runs too: a pair of releases that both leak (not
reproduced, exit 1) and a release that cannot start a command as root here
(could not run, exit 3).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxcheck.advisories import load_corpus

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed"),
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")]


def _cli(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    # A cache that survives between runs: each release installs once.
    env = {"SANDBOXCHECK_CACHE": str(ROOT / ".tools" / "cache"), **os.environ}
    return subprocess.run([sys.executable, "-m", "sandboxcheck.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_every_bundled_advisory_is_reproduced(tmp_path: Path) -> None:
    out = tmp_path / "replay.json"
    proc = _cli("replay", "--format", "json", "--output", str(out), "-j", "1")
    data = json.loads(out.read_text())
    statuses = {a["name"]: (a["status"], a["reason"]) for a in data["advisories"]}
    assert proc.returncode == 0, statuses
    assert len(data["advisories"]) == len(load_corpus()) >= 6
    for a in data["advisories"]:
        assert a["status"] == "reproduced", (a["name"], a["reason"])
        for c in a["checks"]:
            assert (c["vulnerable"]["observed"], c["fixed"]["observed"], c["fits"]) == ("allowed", "denied", True)
    assert proc.stderr.rstrip().endswith(f"{len(data['advisories'])} reproduced (of {len(data['advisories'])} "
                                         "advisories)")


def _advisory(folder: Path, name: str, vulnerable: str, fixed: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(
        f"id: https://example.invalid/{name}\ntitle: {name}\nurl: https://example.invalid/{name}\n"
        f"target: srt\nvulnerable: \"{vulnerable}\"\nfixed: \"{fixed}\"\nmatrix: baseline\nchecks: [env.proc-1]\n")


def test_releases_that_both_leak_are_not_reproduced(tmp_path: Path) -> None:
    _advisory(tmp_path / "corpus", "both-leak", "0.0.64", "0.0.65")
    proc = _cli("replay", "--advisories", str(tmp_path / "corpus"), "-j", "1")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "both-leak  NOT REPRODUCED" in proc.stdout
    assert "env.proc-1: vulnerable allowed (fail), fixed allowed (fail)" in proc.stdout


def test_a_release_that_cannot_start_here_could_not_run(tmp_path: Path) -> None:
    # srt 0.0.66 to 0.0.75 cannot start a command as root here (apply-seccomp writes /proc/self/uid_map).
    _advisory(tmp_path / "corpus", "cannot-start", "0.0.65", "0.0.70")
    proc = _cli("replay", "cannot-start", "--advisories", str(tmp_path / "corpus"), "-j", "1", "-f", "json")
    assert proc.returncode == 3, proc.stderr[-2000:]
    (a,) = json.loads(proc.stdout)["advisories"]
    assert a["status"] == "could not run"
    assert a["reason"].startswith("a check proved nothing: env.proc-1: vulnerable allowed (fail), fixed unknown")
