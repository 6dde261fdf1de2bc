"""Shards: K/N parsing, and N parts that cover the work exactly once."""
from __future__ import annotations

from collections import Counter

import pytest

from sandboxcheck.model import Matrix
from sandboxcheck.shard import Shard, ShardError


@pytest.mark.parametrize("text, expected", [("1/1", Shard(1, 1)), ("2/3", Shard(2, 3)), (" 3 / 3 ", Shard(3, 3))])
def test_parse(text: str, expected: Shard) -> None:
    assert Shard.parse(text) == expected


@pytest.mark.parametrize("text, message", [
    ("0/3", "K must be from 1 to 3 (K is 1-based; did you mean 1/3?)"),
    ("4/3", "did you mean 3/3?"),
    ("1/0", "N must be from 1 to"),
    ("1", "expected K/N"),
    ("a/b", "expected K/N"),
    ("-1/3", "expected K/N"),
])
def test_bad_values_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ShardError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        Shard.parse(text)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 40, 41])
def test_run_shards_cover_every_check_once(baseline: Matrix, count: int) -> None:
    parts = [Shard(k, count).checks(baseline) for k in range(1, count + 1)]
    seen = Counter(c.id for part in parts for c in part.checks)
    assert set(seen) == {c.id for c in baseline.checks} and set(seen.values()) == {1}
    sizes = [len(p.checks) for p in parts]
    assert max(sizes) - min(sizes) <= 1  # dealt out in turn: balanced
    for part in parts:  # each part keeps the matrix's order
        order = [c.id for c in baseline.checks if c in part.checks]
        assert [c.id for c in part.checks] == order


def test_split_does_not_depend_on_matrix_order(baseline: Matrix) -> None:
    import dataclasses

    shuffled = dataclasses.replace(baseline, checks=tuple(reversed(baseline.checks)))
    assert {c.id for c in Shard(2, 3).checks(shuffled).checks} == {c.id for c in Shard(2, 3).checks(baseline).checks}


def test_survey_shards_cover_every_cell_once(baseline: Matrix) -> None:
    targets = ["landlock", "bwrap-strict", "none"]
    cells = Counter(cell for k in range(1, 4) for cell in Shard(k, 3).cells(baseline, targets))
    assert len(cells) == len(baseline.checks) * len(targets) and set(cells.values()) == {1}
    sizes = [len(Shard(k, 3).cells(baseline, targets)) for k in range(1, 4)]
    assert max(sizes) - min(sizes) <= 1
    # Each part touches as few targets as it can: one each for 3 targets in 3 parts, at most 2 in 2.
    assert [len({t for t, _ in Shard(k, 3).cells(baseline, targets)}) for k in range(1, 4)] == [1, 1, 1]
    assert [len({t for t, _ in Shard(k, 2).cells(baseline, targets)}) for k in (1, 2)] == [2, 2]


def test_describe_records_the_whole_matrix(baseline: Matrix) -> None:
    entry = Shard(2, 3).describe(baseline, 13)
    assert entry["spec"] == "2/3" and entry["matrix_checks"] == len(baseline.checks) == len(entry["check_ids"])


def test_a_survey_shard_runs_and_reports_only_its_cells(baseline: Matrix) -> None:
    import io

    from sandboxcheck.survey import Column, Survey, render_markdown

    cols = [Column(name=n, ref=n, description="", versions=(), unavailable="not here", report=None)
            for n in ("landlock", "none")]
    shard = Shard(1, 2)
    assigned = frozenset(shard.cells(baseline, ["landlock", "none"]))
    survey = Survey(matrix=baseline, columns=cols, started="", duration_s=0.0, assigned=assigned,
                    shard=shard.describe(baseline, len(assigned)))
    data = survey.to_dict()
    cells = {(c["id"], t) for c in data["checks"] for t in c["cells"]}
    assert {(cid, t) for t, cid in assigned} == cells and data["shard"]["spec"] == "1/2"
    out = io.StringIO()
    render_markdown(survey, out)
    assert "shard 1/2: only this part's cells ran" in out.getvalue()


def test_a_shard_and_its_merge_load_no_terminal_renderer() -> None:
    """Every shard of a fleet and its merge are processes of their own: what they import
    for a JSON report is paid once per process, so rich (a terminal renderer) is not."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[2] / "src")
    code = ("import sys\n"
            "import sandboxcheck.cli, sandboxcheck.survey, sandboxcheck.merge, sandboxcheck.run.schedule\n"
            "from sandboxcheck.report.registry import render\n"
            "print(sorted(m for m in sys.modules if m == 'rich' or m.startswith('rich.')))\n")
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": src},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
