"""Selecting checks: --only ID_OR_GLOB and -k EXPR (the core, without click or pytest)."""
from __future__ import annotations

import pytest

from sandboxcheck.matrix.select import SelectionError, parse_keyword, select
from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.resources import resolve_matrix


@pytest.fixture(scope="module")
def baseline():
    return load_matrix(resolve_matrix("baseline"))


def ids(matrix) -> list[str]:
    return [c.id for c in matrix.checks]


def test_no_filter_is_the_matrix_itself(baseline) -> None:
    assert select(baseline) is baseline


def test_only_takes_ids_and_globs_and_keeps_matrix_order(baseline) -> None:
    got = ids(select(baseline, ["fs.read.symlink", "network.*"]))
    assert got == [c.id for c in baseline.checks if c.id == "fs.read.symlink" or c.id.startswith("network.")]
    assert "fs.read.symlink" in got and len(got) > 2


def test_only_with_an_unknown_id_says_what_was_meant(baseline) -> None:
    with pytest.raises(SelectionError, match=r"^--only 'fs\.read\.symlnk' matches no check "
                                             r"\(did you mean 'fs\.read\.symlink'\?\)$"):
        select(baseline, ["fs.read.symlnk"])
    with pytest.raises(SelectionError, match=r"^--only 'zzz\.\*' matches no check$"):
        select(baseline, ["fs.read.*", "zzz.*"])


@pytest.mark.parametrize("expr, want", [
    ("symlink", lambda c: "symlink" in (c.id + c.category + c.title).lower()),
    ("fs-read and not proc", lambda c: c.category == "fs-read" and "proc" not in (c.id + c.title).lower()),
    ("tcp or DNS", lambda c: any(w in (c.id + c.category + c.title).lower() for w in ("tcp", "dns"))),
    ("not (network or fs-read)", lambda c: c.category not in ("network", "fs-read")
     and "network" not in (c.id + c.title).lower() and "fs-read" not in (c.id + c.title).lower()),
])
def test_keyword_expressions_match_id_category_and_title(baseline, expr: str, want) -> None:
    got = ids(select(baseline, keyword=expr))
    assert got == [c.id for c in baseline.checks if want(c)]
    assert got


def test_only_and_keyword_combine(baseline) -> None:
    assert ids(select(baseline, ["fs.*"], "write and symlink")) == ["fs.write.symlink"]


@pytest.mark.parametrize("expr, message", [
    ("", "empty expression"),
    ("a and", "expected a word after the end"),
    ("(a or b", "missing ')'"),
    ("a b", "unexpected 'b'"),
    ("or a", "unexpected 'or'"),
])
def test_bad_keyword_expressions(expr: str, message: str) -> None:
    with pytest.raises(SelectionError, match=f"^-k {expr!r}: ".replace("(", r"\(") + message.replace("(", r"\(")
                       .replace(")", r"\)")):
        parse_keyword(expr)


def test_a_selection_that_leaves_nothing_is_an_error(baseline) -> None:
    with pytest.raises(SelectionError, match=r"^-k 'nothing-like-this': no check of matrix 'baseline' matches$"):
        select(baseline, keyword="nothing-like-this")
