"""Bisect and version-aware presets against real releases from the npm registry.

Known answer: sandbox-runtime let a sandboxed command read the caller's
environment through /proc/1/environ up to 0.0.65; 0.0.66 to 0.0.75 cannot
start a command as root here (skipped); 0.0.76 is the first that denies it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxcheck.targets.pinning import satisfies, system_node

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed"),
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")]


def _cli(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    # A cache that git ignores and that survives between runs: each release installs once.
    env = {**os.environ, "SANDBOXCHECK_CACHE": str(ROOT / ".tools" / "cache")}
    return subprocess.run([sys.executable, "-m", "sandboxcheck.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_bisect_finds_where_srt_stopped_leaking_proc_1(tmp_path: Path) -> None:
    out = tmp_path / "bisect.json"
    proc = _cli("bisect", "baseline", "--target", "srt", "--old", "0.0.50", "--new", "0.0.78",
                "--check", "env.proc-1", "--format", "json", "--output", str(out), "-j", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["old_side"]["version"] == "0.0.65"
    assert data["new_side"]["version"] == "0.0.76"
    assert data["old_side"]["summary"]["checks"] == {"env.proc-1": "FAIL allowed"}
    assert data["new_side"]["summary"]["checks"] == {"env.proc-1": "PASS denied"}
    assert [(c["id"], c["change"]) for c in data["changes"]] == [("env.proc-1", "tightened")]
    tried = {t["version"]: t["status"] for t in data["tried"]}
    assert tried["0.0.50"] == "old" and tried["0.0.65"] == "old"
    assert tried["0.0.78"] == "new" and tried["0.0.76"] == "new"
    skipped = sorted((v for v, s in tried.items() if s == "skipped"), key=lambda v: int(v.rsplit(".", 1)[1]))
    assert skipped and all(66 <= int(v.rsplit(".", 1)[1]) <= 75 for v in skipped)
    assert data["skipped_between"] == skipped


def test_old_srt_runs_the_baseline_with_nothing_inconclusive(tmp_path: Path) -> None:
    # 0.0.15 has no -c: the preset's versions entry drives it with the command as arguments.
    out = tmp_path / "r.json"
    proc = _cli("run", "baseline", "-t", "srt@0.0.15", "-f", "json", "-o", str(out), "-j", "2")
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    results = json.loads(out.read_text())["results"]
    assert len(results) >= 40
    assert [r["id"] for r in results if r["status"] == "inconclusive"] == []


def test_latest_srt_runs_under_a_node_from_the_registry(tmp_path: Path) -> None:
    # Newer sandbox-runtime needs node >= 22.12; the system node here is 20.
    detail = _cli("targets", "srt@latest", timeout=600)
    assert detail.returncode == 0, detail.stderr
    out = tmp_path / "r.json"
    proc = _cli("run", "baseline", "-t", "srt@latest", "-f", "json", "-o", str(out), "-j", "2")
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert [r["id"] for r in report["results"] if r["status"] == "inconclusive"] == []
    have = system_node()
    if not have or not satisfies(have, ">=22.12.0"):
        assert "from the cache" in report["target"]["description"]


def test_unsupported_release_exits_2_naming_the_range() -> None:
    proc = _cli("run", "baseline", "-t", "srt@0.0.8", timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: srt@0.0.8: release 0.0.8 is not supported (supported: >=0.0.10); "
                                   "pick a release in that range")


def test_pinned_agent_runs_its_own_release_and_reports_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandboxcheck.compare import versions_of
    from sandboxcheck.targets.registry import load_target

    monkeypatch.setenv("SANDBOXCHECK_CACHE", str(ROOT / ".tools" / "cache"))
    target = load_target("claude-code@2.1.0")
    argv = target.tool_argv("claude")
    assert str(ROOT / ".tools" / "cache" / "npm" / "@anthropic-ai_claude-code@2.1.0") in argv[-1]
    assert versions_of(target) == {"version": "2.1.0"}
    assert target.unavailable() is None


def test_bisect_names_an_unpublished_end_with_its_neighbours() -> None:
    proc = _cli("bisect", "baseline", "--target", "srt", "--old", "0.0.9", "--new", "0.0.78", timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: 0.0.9 is not a published release (near it: 0.0.8, 0.0.10")
