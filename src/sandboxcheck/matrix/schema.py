"""The matrix JSON Schema, its enums filled from the registries.

The shipped ``schemas/matrix.schema.json`` holds the structure; every list of
names in it (probes, categories, evidence kinds, sinks, severities, setup
access modes, agent tools) comes from the registry that owns the names, so a
probe or an evidence kind is added in one place. ``python -m
sandboxcheck.matrix.schema --write`` rewrites the shipped file from the
registries (a unit test fails when it is stale, so the published schema that
editors and CI read never disagrees with the loader).
"""
from __future__ import annotations

import copy
import json
import sys
from functools import lru_cache
from typing import Any

from ..model import CATEGORIES, EVIDENCE_KINDS, EXPECTS, FD_ACCESS, SEVERITIES, SINKS
from ..probes import PROBES
from ..resources import schema_path
from ..targets.agents.spec import TOOLS

#: JSON pointer-ish paths of each enum in the schema -> the registry's names.
def _enums() -> dict[tuple[str, ...], list[str]]:
    kinds = list(EVIDENCE_KINDS)
    check = ("$defs", "check", "properties")
    return {
        ("properties", "defaults", "properties", "severity"): list(SEVERITIES),
        (*check, "category"): list(CATEGORIES),
        (*check, "probe"): sorted(PROBES),
        (*check, "expect"): list(EXPECTS),
        (*check, "evidence", "oneOf", 0): kinds,
        (*check, "evidence", "oneOf", 1, "properties", "kind"): kinds,
        (*check, "evidence", "oneOf", 1, "properties", "sink"): list(SINKS),
        (*check, "severity"): list(SEVERITIES),
        ("$defs", "setup_step", "properties", "access"): list(FD_ACCESS),
        ("$defs", "agent_step", "properties", "tool"): list(TOOLS),
    }


def _fill(schema: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(schema)
    for path, names in _enums().items():
        node: Any = out
        for key in path:
            node = node[key]
        node["enum"] = names
    return out


@lru_cache(maxsize=1)
def _matrix_schema() -> str:
    return json.dumps(_fill(json.loads(schema_path("matrix").read_text(encoding="utf-8"))))


def matrix_schema() -> dict[str, Any]:
    """The matrix schema the loader validates against (a fresh copy)."""
    return json.loads(_matrix_schema())


def shipped_text() -> str:
    """The text ``schemas/matrix.schema.json`` should have."""
    return json.dumps(matrix_schema(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    path = schema_path("matrix")
    if argv[1:] == ["--write"]:
        path.write_text(shipped_text(), encoding="utf-8")
        return 0
    stale = path.read_text(encoding="utf-8") != shipped_text()
    print(f"{path}: {'stale: run python -m sandboxcheck.matrix.schema --write' if stale else 'up to date'}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
