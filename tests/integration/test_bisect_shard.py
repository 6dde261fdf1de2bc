"""``bisect --shard K/N`` and the host facts of a bisect, against real sandboxes.

The target is a file whose releases are those of sandbox-runtime (cached
after the first install: they give bisect a real version list) but whose
command changes with the release: no sandbox before 0.0.67, sandboxcheck's
Landlock launcher confining reads from 0.0.67, the same launcher also
denying TCP from 0.0.72. So the known answer is 0.0.67 for the whole
selection; a part that holds only the TCP check finds 0.0.72, and the
earliest first changed release across the parts is the answer.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxcheck.shard import Shard
from sandboxcheck.targets.tools import landlock_abi

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed"),
              pytest.mark.skipif(landlock_abi() < 4, reason="needs Landlock ABI >= 4 (TCP rules)")]

_LANDLOCK = ('["{python}", -B, -E, -s, -S, "{probes}/_landlock.py", --read, /usr, --read, /lib, --read, /lib64, '
             '--read, /bin, --read, /etc, --read, /proc, --read, "{probes}", --write, /dev, --write, "{workspace}", '
             '--scope, %s--, "{cmd}"]')
STEPS = f"""\
name: steps
description: sandbox-runtime's releases as the version list; the command changes at 0.0.67 and 0.0.72.
install: {{npm: "@anthropic-ai/sandbox-runtime@{{version}}", supported: ">=0.0.64 <=0.0.76"}}
requires: [srt]
kernel: [landlock]
command: {_LANDLOCK % "--deny-tcp, "}
versions:
  - range: "<0.0.67"
    command: ["{{cmd}}"]
  - range: "<0.0.72"
    command: {_LANDLOCK % ""}
"""
# Sorted, dealt out in turn: 1/2 gets exec.interpreter and network.tcp (changes at 0.0.72),
# 2/2 gets fs.read.absolute (changes at 0.0.67) and network.udp (Landlock never restricts UDP).
CHECKS = ("exec.interpreter", "fs.read.absolute", "network.tcp", "network.udp")


def _bisect(tmp_path: Path, name: str, *extra: str,
            env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], dict]:
    target = tmp_path / "steps.yaml"
    target.write_text(STEPS, encoding="utf-8")
    out = tmp_path / f"{name}.json"
    cache = os.environ.get("SANDBOXCHECK_CACHE") or str(ROOT / ".tools" / "cache")
    args = ["bisect", "baseline", "--target", str(target), "--old", "0.0.64", "--new", "0.0.76",
            *(a for cid in CHECKS for a in ("--check", cid)), "-j", "2", "-f", "json", "-o", str(out), *extra]
    # A variable the harness does not keep: the clean re-exec happens, as for a person at a shell.
    env = {**{k: v for k, v in os.environ.items() if k != "SANDBOXCHECK_NO_REEXEC"},
           "SANDBOXCHECK_CACHE": cache, "SANDBOXCHECK_TEST_UNKEPT": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "sandboxcheck", *args], capture_output=True, text=True,
                          timeout=900, env=env)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return proc, json.loads(out.read_text())


def test_shards_cover_each_check_once_and_the_earliest_is_the_whole_answer(tmp_path: Path) -> None:
    _, whole = _bisect(tmp_path, "whole")
    assert (whole["old_side"]["version"], whole["new_side"]["version"]) == ("0.0.66", "0.0.67")
    assert [c["id"] for c in whole["changes"]] == ["fs.read.absolute"]
    assert "shard" not in whole and whole["matrix_digest"].startswith("sha256:")
    parts = []
    for k in (1, 2):
        # The second part comes through the environment: the clean re-exec must keep it.
        proc, part = _bisect(tmp_path, f"part{k}", *(["--shard", "1/2"] if k == 1 else []),
                             env={"SANDBOXCHECK_SHARD": "2/2"} if k == 2 else None)
        assert proc.returncode == 0, proc.stderr[-2000:]  # each part holds a check that changes
        assert part["shard"]["spec"] == f"{k}/2" and part["shard"]["matrix_checks"] == len(CHECKS)
        assert part["shard"]["covered"] == len(part["checks"])
        assert set(part["checks"]) == Shard(k, 2).take(CHECKS)
        assert part["matrix_digest"] == whole["matrix_digest"]  # one selection, whichever part
        parts.append(part)
    assert sorted(c for p in parts for c in p["checks"]) == sorted(whole["checks"]) == sorted(CHECKS)
    firsts = {p["shard"]["spec"]: (p["new_side"]["version"], [c["id"] for c in p["changes"]]) for p in parts}
    assert firsts == {"1/2": ("0.0.72", ["network.tcp"]), "2/2": ("0.0.67", ["fs.read.absolute"])}
    earliest = min((p["new_side"]["version"] for p in parts), key=lambda v: int(v.rsplit(".", 1)[1]))
    assert earliest == whole["new_side"]["version"]


def test_bisect_records_the_host_and_hides_its_name_on_request(tmp_path: Path) -> None:
    proc, named = _bisect(tmp_path, "named", "--shard", "2/2")
    host = named["host"]
    assert host["name"] == os.uname().nodename and host["anonymised"] is False
    assert host["kernel"] == os.uname().release and host["landlock_abi"] == landlock_abi()
    assert host["root"] == (os.geteuid() == 0) and "available" in host["user_namespaces"]
    # The tools of the releases that ran: each pinned sandbox-runtime it installed, and Landlock.
    tried = {t["version"] for t in named["tried"]}
    assert {t.split()[1] for t in host["tools"] if t.startswith("srt ")} == tried
    assert f"Landlock ABI {landlock_abi()}" in host["tools"]
    _, hidden = _bisect(tmp_path, "hidden", "--shard", "2/2", env={"SANDBOXCHECK_ANONYMISE_HOST": "1"})
    assert "name" not in hidden["host"] and hidden["host"]["anonymised"] is True
    assert hidden["host"]["id"].startswith("host-") and os.uname().nodename not in hidden["host"].values()
    _, flagged = _bisect(tmp_path, "flagged", "--shard", "2/2", "--anonymise-host")
    assert flagged["host"]["id"] == hidden["host"]["id"]
