"""Choosing checks: --only ids and globs, and -k expressions."""
from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence


from ..model import Check, Matrix
from .lines import suggest


# -- selecting checks: --only ID_OR_GLOB and -k EXPR -------------------------------------

class SelectionError(ValueError):
    """A selection names no check (the message says which part, with a suggestion)."""


def matches_only(check_id: str, patterns: Iterable[str]) -> bool:
    """Whether ``check_id`` is one of ``patterns`` (ids or shell globs such as ``fs.read.*``)."""
    return any(fnmatch.fnmatchcase(check_id, p) for p in patterns)


def unmatched_only(ids: Iterable[str], patterns: Iterable[str]) -> list[str]:
    """One line for each pattern that matches none of ``ids``, with a "did you mean" when one is close."""
    known = list(ids)
    out = []
    for p in patterns:
        if not any(fnmatch.fnmatchcase(i, p) for i in known):
            out.append(f"--only {p!r} matches no check{suggest(p, known)}")
    return out


def parse_keyword(expr: str) -> Callable[[Check], bool]:
    """A predicate for ``-k EXPR``: words joined with ``and``, ``or``, ``not`` and parentheses,
    as pytest's ``-k``; a word matches a check whose id, category or title contains it
    (case-insensitive). SelectionError when the expression does not parse."""
    tokens = re.findall(r"\(|\)|[^\s()]+", expr)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def fail(why: str) -> SelectionError:
        return SelectionError(f"-k {expr!r}: {why}")

    def chain(word: str, operand: Callable[[], Callable[[Check], bool]],
              combine: Callable[[Iterable[bool]], bool]) -> Callable[[Check], bool]:
        parts = [operand()]
        while peek() == word:
            take()
            parts.append(operand())
        return parts[0] if len(parts) == 1 else (lambda c: combine(p(c) for p in parts))

    def or_expr() -> Callable[[Check], bool]:
        return chain("or", and_expr, any)

    def and_expr() -> Callable[[Check], bool]:
        return chain("and", not_expr, all)

    def not_expr() -> Callable[[Check], bool]:
        tok = peek()
        if tok is None:
            raise fail("expected a word after the end")
        if tok == "not":
            take()
            inner = not_expr()
            return lambda c: not inner(c)
        if tok == "(":
            take()
            inner = or_expr()
            if peek() != ")":
                raise fail("missing ')'")
            take()
            return inner
        if tok in (")", "and", "or"):
            raise fail(f"unexpected {tok!r}")
        word = take().lower()
        return lambda c: any(word in text.lower() for text in (c.id, c.category, c.title))

    if not tokens:
        raise fail("empty expression")
    pred = or_expr()
    if pos != len(tokens):
        raise fail(f"unexpected {tokens[pos]!r}")
    return pred


def select(matrix: Matrix, only: Sequence[str] = (), keyword: str | None = None) -> Matrix:
    """``matrix`` with the checks that match every given filter: one of ``only`` (ids or
    globs) and ``keyword`` (a ``-k`` expression). SelectionError when a pattern of ``only``
    matches no check, or when nothing is left ("found 0 checks" is an error, not a pass)."""
    if not only and not keyword:
        return matrix
    problems = unmatched_only((c.id for c in matrix.checks), only)
    if problems:
        raise SelectionError("; ".join(problems))
    pred = parse_keyword(keyword) if keyword else None
    checks = tuple(c for c in matrix.checks
                   if (not only or matches_only(c.id, only)) and (pred is None or pred(c)))
    if not checks:
        asked = " and ".join([*(f"--only {p!r}" for p in only), *([f"-k {keyword!r}"] if keyword else [])])
        raise SelectionError(f"{asked}: no check of matrix {matrix.name!r} matches")
    return dataclasses.replace(matrix, checks=checks)
