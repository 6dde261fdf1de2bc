"""``bisect --shard``: bad parts exit 2 before anything installs; a part's result says it is one."""
from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from sandboxcheck import bisect as bs
from sandboxcheck.cli import main


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SANDBOXCHECK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("args,message", [
    (["--check", "env.proc-1", "--shard", "2/2"],
     "error: --shard 2/2: this part has none of the 1 chosen check(s); give at most 1 parts"),
    (["--shard", "3/2"], "error: --shard '3/2': K must be from 1 to 2"),
    (["--shard", "half"], "error: --shard 'half': expected K/N"),
])
def test_bisect_bad_shard(args: list[str], message: str, empty_cache: Path) -> None:
    result = CliRunner().invoke(main, ["bisect", "baseline", "--target", "srt", "--old", "0.0.50",
                                       "--new", "0.0.78", *args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(message)
    assert not empty_cache.exists()  # refused before any install


def _evaluate(version: str) -> bs.Outcome:
    leaking = int(version.rsplit(".", 1)[1]) <= 65
    return bs.Outcome(version, {"results": [{"id": "env.proc-1", "observed": "allowed" if leaking else "denied",
                                             "status": "fail" if leaking else "pass"}]})


def test_a_part_says_so_in_json_and_text() -> None:
    found = bs.bisect("srt", "baseline", ["env.proc-1"], "0.0.60", "0.0.70", _evaluate,
                      versions=[f"0.0.{n}" for n in range(60, 71)])
    shard = {"index": 2, "count": 3, "spec": "2/3", "covered": 1, "matrix_checks": 3,
             "check_ids": ["env.own", "env.proc-1", "env.proc-ppid"]}
    part = dataclasses.replace(found, shard=shard, host={"id": "host-0", "anonymised": True},
                               matrix_digest="sha256:ab")
    data = json.loads(json.dumps(part.to_dict()))
    assert data["shard"] == shard and data["host"]["anonymised"] is True and data["matrix_digest"] == "sha256:ab"
    assert "shard" not in found.to_dict() and "host" not in found.to_dict()
    out = io.StringIO()
    bs.render(part, "table", out)
    assert "shard 2/3: 1 of 3 checks" in out.getvalue() and "first changed:  srt@0.0.66" in out.getvalue()
