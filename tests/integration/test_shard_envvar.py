"""Options given through the environment reach the command after the clean re-exec.

``python -m sandboxcheck`` re-executes itself with only the variables it keeps;
SANDBOXCHECK_SHARD and SANDBOXCHECK_ANONYMISE_HOST were dropped there, so a
job told to run part 2 of 2 ran every check and named its host.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxcheck.shard import Shard

pytestmark = pytest.mark.integration


def _run(tmp_path: Path, name: str, **env: str) -> dict:
    out = tmp_path / f"{name}.json"
    # A variable the harness does not keep: the re-exec happens, as for a person at a shell.
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("SANDBOXCHECK_")},
            "SANDBOXCHECK_TEST_UNKEPT": "1", **env}
    proc = subprocess.run([sys.executable, "-m", "sandboxcheck", "run", "baseline", "-t", "none",
                           "--only", "fs.read.*", "-f", "json", "-o", str(out), "-j", "2"],
                          capture_output=True, text=True, timeout=300, env=full)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return json.loads(out.read_text())


def test_sandboxcheck_shard_from_the_environment_runs_half(tmp_path: Path) -> None:
    whole = [r["id"] for r in _run(tmp_path, "whole")["results"]]
    assert len(whole) >= 4
    parts = [_run(tmp_path, f"part{k}", SANDBOXCHECK_SHARD=f"{k}/2") for k in (1, 2)]
    for k, part in enumerate(parts, 1):
        assert part["shard"]["spec"] == f"{k}/2"
        assert {r["id"] for r in part["results"]} == Shard(k, 2).take(whole)
    assert sorted(r["id"] for p in parts for r in p["results"]) == sorted(whole)


def test_sandboxcheck_anonymise_host_from_the_environment_hides_the_name(tmp_path: Path) -> None:
    host = _run(tmp_path, "anon", SANDBOXCHECK_ANONYMISE_HOST="1", SANDBOXCHECK_SHARD="1/3")["host"]
    assert host["anonymised"] is True and "name" not in host and host["id"].startswith("host-")
