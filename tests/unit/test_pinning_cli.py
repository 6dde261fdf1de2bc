"""The bisect and targets NAME commands: bad input exits 2 with one line, before anything installs."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sandboxcheck.cli import main


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SANDBOXCHECK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("args,message", [
    (["--target", "srt", "--old", "0.0.50", "--new", "0.0.78", "--check", "env.proc1"],
     "error: --check env.proc1: no such check in baseline (did you mean 'env.proc-1'?)"),
    (["--target", "bwrap-strict", "--old", "1", "--new", "2"],
     "error: target 'bwrap-strict' cannot be pinned to a version"),
    (["--target", "srt@0.0.50", "--old", "0.0.50", "--new", "0.0.78"],
     "error: --target srt@0.0.50: give the target without a version; --old and --new choose releases"),
    (["--target", "srtt", "--old", "0.0.50", "--new", "0.0.78"], "error: unknown target 'srtt' (did you mean 'srt'?)"),
])
def test_bisect_bad_input(args: list[str], message: str, empty_cache: Path) -> None:
    result = CliRunner().invoke(main, ["bisect", "baseline", *args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(message)
    assert len(result.output.strip().splitlines()) == 1
    assert not empty_cache.exists()  # refused before any install


def test_targets_detail_refuses_an_unpinnable_preset() -> None:
    shown = CliRunner().invoke(main, ["targets", "landlock"])
    assert shown.exit_code == 0 and "landlock" in shown.output and "package:" not in shown.output
    result = CliRunner().invoke(main, ["targets", "landlock@latest"])
    assert result.exit_code == 2
    assert "cannot be pinned to a version" in result.output and "pinnable presets: claude-code" in result.output
