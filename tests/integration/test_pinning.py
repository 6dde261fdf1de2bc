"""Version-pinned targets: two real releases of sandbox-runtime, installed into a cache and compared.

Known answer: sandbox-runtime 0.0.50 let a sandboxed command read the caller's
environment through /proc/1/environ (pid 1 of its namespace kept it);
0.0.78 denies it with EACCES. Nothing else in the baseline matrix moved.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxcheck.targets.pinning import PinError, cache_dir, split_ref
from sandboxcheck.targets.base import TargetError
from sandboxcheck.targets.registry import load_target

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed"),
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")]


@pytest.fixture(autouse=True)
def project_cache(monkeypatch: pytest.MonkeyPatch) -> Path:
    # A cache that git ignores and that survives between runs: each release installs once.
    cache = ROOT / ".tools" / "cache"
    monkeypatch.setenv("SANDBOXCHECK_CACHE", str(cache))
    return cache


def test_split_ref() -> None:
    assert split_ref("srt@0.0.50") == ("srt", "0.0.50")
    assert split_ref("srt") == ("srt", None)
    assert split_ref("targets/x@y/t.yaml") == ("targets/x@y/t.yaml", None)
    with pytest.raises(PinError):
        split_ref("srt@0.0.50;rm")


def test_pinning_needs_an_install_spec() -> None:
    with pytest.raises(TargetError, match="cannot be pinned to a version"):
        load_target("bwrap-strict@1.0")


def test_unknown_release_is_a_clear_error() -> None:
    with pytest.raises(TargetError, match="npm could not install @anthropic-ai/sandbox-runtime@0.0.9999"):
        load_target("srt@0.0.9999")


def test_compare_two_real_releases(tmp_path: Path, project_cache: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sandboxcheck.cli", "compare", "baseline", "--before", "srt@0.0.50",
         "--after", "srt@0.0.78", "--format", "json"],
        capture_output=True, text=True, timeout=900, env={**os.environ})
    assert proc.returncode == 0, proc.stderr[-2000:]
    changes = {c["id"]: c["change"] for c in json.loads(proc.stdout)["changes"]}
    moved = {cid: kind for cid, kind in changes.items() if kind != "unchanged"}
    assert moved == {"env.proc-1": "tightened", "env.proc-ppid": "tightened"}
    assert (cache_dir() / "npm").is_dir()
    installed = sorted(p.name for p in (project_cache / "npm").iterdir() if p.is_dir())
    assert "@anthropic-ai_sandbox-runtime@0.0.50" in installed
