"""Shards: split a matrix's work into N parts that N jobs run once each.

A run splits by check id: the ids are sorted and dealt out in turn, so every
part gets a mix of categories (slow checks cluster in a few) whatever the
order of the matrix. A survey splits by (target, check) into runs of
consecutive pairs, so a target's preflight is paid in as few parts as
possible. Every job computes the same split on its own, and the parts
together cover the work exactly once.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .model import Matrix

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
#: More parts than this is a typo, not a fleet.
MAX_SHARDS = 10_000


class ShardError(ValueError):
    """A --shard value that is not K/N with 1 <= K <= N."""


@dataclass(frozen=True, slots=True)
class Shard:
    """Part ``index`` (1-based) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/3"`` -> Shard(2, 3); ShardError with the fix for anything else."""
        m = _SPEC.fullmatch(text)
        if not m:
            raise ShardError(f"--shard {text!r}: expected K/N, e.g. 1/3 (part K of N, K from 1 to N)")
        index, count = int(m.group(1)), int(m.group(2))
        if count < 1 or count > MAX_SHARDS:
            raise ShardError(f"--shard {text!r}: N must be from 1 to {MAX_SHARDS}")
        if not 1 <= index <= count:
            raise ShardError(f"--shard {text!r}: K must be from 1 to {count} (K is 1-based; "
                             f"did you mean {max(1, min(index, count))}/{count}?)")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def take(self, items: Sequence[str]) -> set[str]:
        """This part's share of ``items`` (sorted, then dealt out in turn)."""
        return {item for i, item in enumerate(sorted(set(items))) if i % self.count == self.index - 1}

    def checks(self, matrix: Matrix) -> Matrix:
        """The matrix with only this part's checks (in matrix order)."""
        mine = self.take([c.id for c in matrix.checks])
        return dataclasses.replace(matrix, checks=tuple(c for c in matrix.checks if c.id in mine))

    def cells(self, matrix: Matrix, targets: Sequence[str]) -> set[tuple[str, str]]:
        """This part's (target, check id) pairs of a survey of ``matrix`` against ``targets``.

        The pairs, sorted by target then check, are cut into N runs of equal
        length (give or take one): a part touches as few targets as it can,
        so each target's fixed cost (its preflight) is paid in as few parts.
        """
        pairs = sorted({(t, c.id) for t in targets for c in matrix.checks})
        start, end = (len(pairs) * i // self.count for i in (self.index - 1, self.index))
        return set(pairs[start:end])

    def describe(self, matrix: Matrix, covered: int) -> dict[str, Any]:
        """The report's ``shard`` entry: which part, how much it ran, and the whole matrix's order
        (so a merge puts the parts back in it)."""
        return {"index": self.index, "count": self.count, "spec": str(self),
                "covered": covered, "matrix_checks": len(matrix.checks),
                "check_ids": [c.id for c in matrix.checks]}
