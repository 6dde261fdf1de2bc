"""Each kind of swappable part is registered in one place, and what is derived from it follows."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import sandboxcheck
from sandboxcheck.matrix.schema import matrix_schema, shipped_text
from sandboxcheck.model import EVIDENCE_KINDS, SINKS
from sandboxcheck.probes import EXEC_ONLY_PROBES, OWN_SESSION_PROBES, PROBES
from sandboxcheck.resources import schema_path
from sandboxcheck.targets.agents.spec import DRIVERS
from sandboxcheck.targets.base import TargetError
from sandboxcheck.targets.registry import load_target, load_targets

PKG = Path(sandboxcheck.__file__).resolve().parent


def test_the_shipped_schema_is_the_one_generated_from_the_registries() -> None:
    assert schema_path("matrix").read_text(encoding="utf-8") == shipped_text(), \
        "stale: run python -m sandboxcheck.matrix.schema --write"


def test_schema_enums_come_from_the_registries() -> None:
    check = matrix_schema()["$defs"]["check"]["properties"]
    assert check["probe"]["enum"] == sorted(PROBES)
    assert check["evidence"]["oneOf"][1]["properties"]["kind"]["enum"] == list(EVIDENCE_KINDS)
    assert check["evidence"]["oneOf"][1]["properties"]["sink"]["enum"] == list(SINKS)


def test_probe_traits_live_on_the_probe() -> None:
    assert EXEC_ONLY_PROBES == {"read_proc_environ"}
    assert OWN_SESSION_PROBES == {"read_env", "read_proc_environ", "daemon"}
    assert PROBES["write_file"].contained == ("path",)
    assert PROBES["tcp_send"].sink == ("host", "port", "{tcp_port}")


def test_every_probe_in_the_registry_has_its_program() -> None:
    from sandboxcheck.resources import probes_dir

    programs = {p.stem for p in probes_dir().glob("*.py") if not p.stem.startswith("_")}
    assert set(PROBES) <= programs


def test_every_driver_names_an_agent_target_class() -> None:
    from importlib import import_module

    from sandboxcheck.targets.agents.base import AgentTarget

    assert set(DRIVERS) >= {"claude-code", "codex"}
    for driver in DRIVERS.values():
        module, _, cls = driver.target.partition(":")
        assert issubclass(getattr(import_module(module), cls), AgentTarget)
        assert set(driver.keys) <= set(driver.options) | {"settings", "user_settings", "allowed_tools", "config"}


def test_codex_is_not_a_claude() -> None:
    from sandboxcheck.targets.agents.claude import ClaudeCodeTarget
    from sandboxcheck.targets.agents.codex import CodexTarget

    assert not issubclass(CodexTarget, ClaudeCodeTarget)


def _imports(path: Path) -> set[str]:
    """Absolute names of the sandboxcheck modules ``path`` imports (relative imports resolved)."""
    rel = path.relative_to(PKG.parent).with_suffix("").parts
    package = list(rel[:-1])
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                out.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module and node.module.startswith("sandboxcheck"):
                out.add(node.module)
    return out


@pytest.mark.parametrize("lower, upper", [("targets", "run"), ("targets", "evidence"), ("targets", "report"),
                                          ("matrix", "run"), ("evidence", "run"), ("run", "report"),
                                          ("targets", "cli"), ("run", "cli")])
def test_no_upward_import(lower: str, upper: str) -> None:
    offenders = [str(f.relative_to(PKG)) for f in (PKG / lower).rglob("*.py")
                 if any(m.startswith(f"sandboxcheck.{upper}") for m in _imports(f))]
    assert offenders == [], f"{lower}/ imports {upper}/"


def test_target_options_go_to_the_targets_that_take_them() -> None:
    loaded = dict(load_targets(["codex-agent", "bwrap-strict"], {"flags": "-c x=1"}))
    assert loaded["codex-agent"].option_names() >= {"flags", "config"}
    assert loaded["bwrap-strict"].option_names() == frozenset()
    with pytest.raises(TargetError, match="--target-opt nope: none of the targets takes this option"):
        load_targets(["codex-agent", "bwrap-strict"], {"nope": "1"})
    assert load_target("srt-settings").option_names() == {"settings"}


def test_the_shipped_schema_parses() -> None:
    json.loads(schema_path("matrix").read_text())


def test_a_target_kind_from_another_package_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types
    from importlib import metadata

    from sandboxcheck.targets import registry
    from sandboxcheck.targets.command import CommandTarget
    from sandboxcheck.targets.registry import parse_target

    def build(data, source, options, strict, pin):  # noqa: ANN001, ANN202
        # A kind that turns a short mapping into a command target.
        return CommandTarget(parse_target({"name": data["name"], "command": ["/usr/bin/env", "{cmd}"]}, source))

    module = types.ModuleType("sc_third_party_kind")
    module.build = build
    monkeypatch.setitem(sys.modules, "sc_third_party_kind", module)
    ep = metadata.EntryPoint(name="envwrap", value="sc_third_party_kind:build", group="sandboxcheck.targets")
    real = metadata.entry_points
    monkeypatch.setattr(metadata, "entry_points",
                        lambda **kw: [ep] if kw.get("group") == "sandboxcheck.targets" else real(**kw))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setattr(registry, "TARGET_KINDS", dict(registry.TARGET_KINDS))
    target = registry._build_target({"kind": "envwrap", "name": "mine"}, "mine.yaml", None, True)
    assert target.name == "mine" and target.argv({}, ["true"])[:1] == ["/usr/bin/env"]
    with pytest.raises(TargetError, match="kind: 'nope' is not a kind of target .known: agent, envwrap"):
        registry._build_target({"kind": "nope", "name": "x"}, "x.yaml", None, True)


def test_every_evidence_kind_has_its_observer() -> None:
    from sandboxcheck.evidence.base import Observer, observers

    found = observers()
    assert set(found) == set(EVIDENCE_KINDS)
    assert all(isinstance(o, Observer) and o.kind == kind for kind, o in found.items())
