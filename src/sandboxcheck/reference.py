"""The generated parts of ``docs/matrix-reference.md``, from the schema and the registries.

The reference is prose around tables; each table sits between
``<!-- generated:NAME -->`` and ``<!-- end:NAME -->`` and is made here from
the matrix schema, the probe catalogue, the evidence kinds, the labels and the
placeholders, so it says what the loader accepts. ``python -m
sandboxcheck.reference FILE`` rewrites the tables of FILE in place; a test
fails when the file differs from what this module makes.
"""
from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any

from .placeholders import MATRIX_MEANINGS
from .probes import PROBES
from .resources import schema_path

_BLOCK = re.compile(r"(<!-- generated:([a-z-]+) -->\n)(.*?)(<!-- end:\2 -->)", re.S)


def _schema() -> dict[str, Any]:
    return json.loads(schema_path("matrix").read_text(encoding="utf-8"))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _kind(prop: dict[str, Any]) -> str:
    """A schema property's value in a few words."""
    if "enum" in prop:
        return "one of: " + ", ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if "$ref" in prop:
        return {"#/$defs/agent": "mapping (see the agent block)",
                "#/$defs/check/properties/probe": "a probe name",
                "#/$defs/check/properties/args": "mapping of probe arguments"}.get(prop["$ref"], "mapping")
    if "oneOf" in prop:
        return " or ".join(_kind(p) if "enum" not in p else "a kind name" for p in prop["oneOf"])
    kind = prop.get("type", "")
    words = {"string": "text", "number": "number", "integer": "integer", "boolean": "true/false",
             "object": "mapping", "array": "list"}
    if kind == "array":
        item = prop.get("items", {})
        inner = "setup steps" if item.get("$ref") == "#/$defs/setup_step" else \
            "tool calls" if item.get("$ref") == "#/$defs/agent_step" else \
            "checks" if item.get("$ref") == "#/$defs/check" else \
            "waivers" if item.get("$ref") == "#/$defs/waiver" else f"{words.get(item.get('type', ''), 'value')}s"
        return f"list of {inner}"
    if isinstance(kind, list):
        return " or ".join(words.get(k, k) for k in kind)
    extra = []
    if "pattern" in prop:
        extra.append(f"matching `{prop['pattern']}`")
    if "minimum" in prop or "exclusiveMinimum" in prop:
        extra.append(f"> {prop['exclusiveMinimum']}" if "exclusiveMinimum" in prop else f">= {prop['minimum']}")
    if "maximum" in prop:
        extra.append(f"<= {prop['maximum']}")
    return " ".join([words.get(kind, kind or "value"), *extra])


def _keys(props: dict[str, Any], required: list[str], notes: dict[str, str] | None = None) -> str:
    rows = ["| key | required | value | meaning |", "|---|---|---|---|"]
    for name, prop in props.items():
        meaning = (notes or {}).get(name) or prop.get("description", "")
        rows.append(f"| `{name}` | {'yes' if name in required else ''} | {_cell(_kind(prop))} | {_cell(meaning)} |")
    return "\n".join(rows)


_TOP_NOTES = {"version": "The matrix format's version.", "name": "Matrix name (default: the file name).",
              "description": "What the matrix is about.",
              "defaults": "Defaults for every check: timeout, severity, tags (added to each check's).",
              "checks": "The checks, in the order reports list them: at least one, unless `conform` derives "
                        "them."}
_CHECK_NOTES = {"title": "One line saying what the check tries.",
                "category": "What kind of hole the check looks for.", "expect": "What a sound sandbox does.",
                "severity": "How bad a failure is (default medium, or the matrix's defaults).",
                "timeout": "Seconds before the target's process tree is killed (default 10).",
                "tags": "Free labels (lowercase), for selection and reports.",
                "evidence": "How the effect is seen from outside (default: the probe's; see the evidence table)."}


def top_keys() -> str:
    """The keys of a matrix file."""
    s = _schema()
    return _keys(s["properties"], s["required"], _TOP_NOTES)


def check_keys() -> str:
    """The keys of one check."""
    c = _schema()["$defs"]["check"]
    return _keys(c["properties"], c["required"], _CHECK_NOTES)


def evidence_keys() -> str:
    """The keys of an ``evidence:`` mapping."""
    ev = _schema()["$defs"]["check"]["properties"]["evidence"]["oneOf"][1]
    return _keys(ev["properties"], ev["required"], {"kind": "The evidence kind.",
                                                    "sink": "Which sink must receive the canary (sink evidence)."})


def waiver_keys() -> str:
    """The keys of a waiver."""
    w = _schema()["$defs"]["waiver"]
    return _keys(w["properties"], w["required"])


def setup_keys() -> str:
    """The keys of a ``setup:`` step."""
    return _keys(_schema()["$defs"]["setup_step"]["properties"], [])


def agent_keys() -> str:
    """The keys of an ``agent:`` mapping."""
    return _keys(_schema()["$defs"]["agent"]["properties"], [])


def agent_step_keys() -> str:
    """The keys of one ``agent.steps`` tool call."""
    return _keys(_schema()["$defs"]["agent_step"]["properties"], [],
                 {"args": "Bash: the arguments of the step's own probe."})


def probes() -> str:
    """Every probe, its arguments and its default evidence."""
    rows = ["| probe | arguments (required) | optional | default evidence | what it does |", "|---|---|---|---|---|"]
    for p in PROBES.values():
        req = ", ".join(f"`{a}`" for a in p.required) or ("`argv:` (the program)" if p.passthrough else "-")
        opt = ", ".join(f"`{a}`" for a in p.optional) or "-"
        ev = f"`{p.evidence.kind}`" + (f" (`{p.evidence.sink}`)" if p.evidence.sink else "")
        rows.append(f"| `{p.name}` | {req} | {opt} | {ev} | {_cell(p.summary)} |")
    return "\n".join(rows)


def evidence_kinds() -> str:
    """Every evidence kind and what counts as proof."""
    from .model import EVIDENCE_KINDS

    return "\n".join(["| kind | proof that the action took effect |", "|---|---|",
                      *(f"| `{k}` | {_cell(v)} |" for k, v in EVIDENCE_KINDS.items())])


def labels() -> str:
    """Every canary label and the dummy secret that carries it."""
    from .labels import LABELS

    return "\n".join(["| label | the dummy secret that carries it |", "|---|---|",
                      *(f"| `{k}` | {_cell(v)} |" for k, v in LABELS.items())])


def placeholder_table() -> str:
    """Every matrix placeholder and its value."""
    return "\n".join(["| placeholder | value |", "|---|---|",
                      *(f"| `{{{k}}}` | {_cell(v)} |" for k, v in MATRIX_MEANINGS.items())])


SECTIONS: dict[str, Callable[[], str]] = {
    "top-keys": top_keys, "check-keys": check_keys, "evidence-keys": evidence_keys,
    "waiver-keys": waiver_keys, "setup-keys": setup_keys, "agent-keys": agent_keys,
    "agent-step-keys": agent_step_keys, "probes": probes, "evidence-kinds": evidence_kinds,
    "labels": labels, "placeholders": placeholder_table,
}


def render(text: str) -> str:
    """``text`` with every generated block made anew (an unknown block name raises KeyError)."""
    return _BLOCK.sub(lambda m: m.group(1) + SECTIONS[m.group(2)]() + "\n" + m.group(4), text)


def blocks(text: str) -> list[str]:
    """The names of the generated blocks in ``text``, in order."""
    return [m.group(2) for m in _BLOCK.finditer(text)]


def main(argv: list[str]) -> int:
    """Rewrite the generated blocks of each file named; 0 when done."""
    for path in argv:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        new = render(text)
        if new != text:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(new)
            print(f"{path}: updated")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
