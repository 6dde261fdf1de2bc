"""A replay's JSON says where it ran and what it ran: the host facts and each advisory's matrix digest.

One real advisory of our own (sandbox-runtime let a command read /proc/1/environ
up to 0.0.65; 0.0.76 denies it), given through SANDBOXCHECK_ADVISORIES, which
the clean re-exec must keep.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxcheck.bisect import select_checks
from sandboxcheck.hostfacts import matrix_digest
from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.resources import resolve_matrix

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed"),
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap not installed")]


def test_replay_json_carries_the_host_and_the_matrix_digest(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "proc-1.yaml").write_text(
        "id: https://example.invalid/proc-1\ntitle: proc-1\nurl: https://example.invalid/proc-1\n"
        "target: srt\nvulnerable: \"0.0.65\"\nfixed: \"0.0.76\"\nmatrix: baseline\nchecks: [env.proc-1]\n")
    out = tmp_path / "replay.json"
    env = {**{k: v for k, v in os.environ.items() if k != "SANDBOXCHECK_NO_REEXEC"},
           "SANDBOXCHECK_CACHE": os.environ.get("SANDBOXCHECK_CACHE") or str(ROOT / ".tools" / "cache"),
           "SANDBOXCHECK_ADVISORIES": str(corpus), "SANDBOXCHECK_TEST_UNKEPT": "1"}
    proc = subprocess.run([sys.executable, "-m", "sandboxcheck", "replay", "-f", "json", "-o", str(out), "-j", "1"],
                          capture_output=True, text=True, timeout=900, env=env)
    data = json.loads(out.read_text())
    assert [a["name"] for a in data["advisories"]] == ["proc-1"], proc.stderr[-2000:]  # the folder, not the bundle
    assert proc.returncode == 0, data["advisories"][0]["reason"]
    want = matrix_digest(select_checks(load_matrix(resolve_matrix("baseline")), ["env.proc-1"]))
    assert data["advisories"][0]["matrix_digest"] == want
    host = data["host"]
    assert host["name"] == os.uname().nodename and host["kernel"] == os.uname().release
    assert {t.split()[1] for t in host["tools"] if t.startswith("srt ")} == {"0.0.65", "0.0.76"}
