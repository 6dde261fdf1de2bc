"""docs/matrix-reference.md says what the loader accepts: its tables are generated and current,
and it names every probe, evidence kind, label, placeholder and schema key."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from sandboxcheck import reference
from sandboxcheck.labels import LABELS
from sandboxcheck.matrix.load import parse_matrix
from sandboxcheck.model import EVIDENCE_KINDS, SETUP_ACTIONS
from sandboxcheck.placeholders import MATRIX_MEANINGS, MATRIX_PLACEHOLDERS
from sandboxcheck.probes import PROBES
from sandboxcheck.resources import matrices_dir, schema_path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "matrix-reference.md"


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def schema_keys(node: Any) -> set[str]:
    """Every property name anywhere in the schema."""
    out: set[str] = set()
    if isinstance(node, dict):
        out.update(node.get("properties", {}))
        for value in node.values():
            out |= schema_keys(value)
    elif isinstance(node, list):
        for value in node:
            out |= schema_keys(value)
    return out


def test_generated_tables_are_current(doc: str) -> None:
    assert sorted(reference.blocks(doc)) == sorted(reference.SECTIONS), "a generated table is missing"
    assert reference.render(doc) == doc, "stale: run python -m sandboxcheck.reference docs/matrix-reference.md"


def test_every_probe_evidence_kind_label_and_placeholder_is_named(doc: str) -> None:
    for name in PROBES:
        assert f"| `{name}` |" in doc, name
        for arg in (*PROBES[name].required, *PROBES[name].optional):
            assert f"`{arg}`" in doc, (name, arg)
    for kind in EVIDENCE_KINDS:
        assert f"| `{kind}` |" in doc, kind
    for label in LABELS:
        assert f"| `{label}` |" in doc, label
    assert set(MATRIX_MEANINGS) == set(MATRIX_PLACEHOLDERS)
    for name in MATRIX_PLACEHOLDERS:
        assert f"`{{{name}}}`" in doc, name
    for action in SETUP_ACTIONS:
        assert f"| `{action}: PATH` |" in doc, action


def test_every_schema_key_is_named(doc: str) -> None:
    keys = schema_keys(json.loads(schema_path("matrix").read_text(encoding="utf-8")))
    assert {"checks", "setup", "pass_fd", "allowed_tools", "path_without", "session"} <= keys
    missing = sorted(k for k in keys if f"`{k}`" not in doc)
    assert missing == []


def test_the_yaml_examples_are_taken_from_the_bundled_matrices_and_load(doc: str) -> None:
    examples = re.findall(r"```yaml\n(  - id: .*?)```", doc, re.S)
    assert len(examples) >= 3
    sources = {}
    for path in matrices_dir().glob("*.yaml"):
        for block in re.split(r"\n(?=  - id: )", path.read_text(encoding="utf-8")):
            sources[block.splitlines()[0]] = block.splitlines()
    for text in examples:
        for check in re.split(r"\n(?=  - id: )", text.strip("\n")):
            lines = [ln for ln in check.splitlines() if ln.strip()]
            source = iter(sources.get(lines[0], []))
            # The example's lines, in order, in the bundled check of that id (some may be left out).
            assert all(any(ln == src for src in source) for ln in lines), lines[0]
        m = parse_matrix("checks:\n" + text, "example")
        assert m.checks
    assert any("agent:" in t and "steps:" in t for t in examples), "no worked agent example"


def test_the_readme_links_the_reference() -> None:
    assert "docs/matrix-reference.md" in (ROOT / "README.md").read_text(encoding="utf-8")
