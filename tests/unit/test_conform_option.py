"""The matrix key ``conform: FILE``: checks derived from a settings file, located at the key's line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandboxcheck.conform import derive, load_settings
from sandboxcheck.matrix.conform_option import conform_target, conformed_targets, settings_file
from sandboxcheck.matrix.load import MatrixError, load_matrix

SETTINGS = {"network": {"allowedDomains": ["allowed.sandboxcheck.test"], "deniedDomains": ["denied.sandboxcheck.test"]},
            "filesystem": {"denyRead": ["~/.ssh"], "allowWrite": ["."], "denyWrite": [], "allowRead": []}}
OWN_CHECK = """  - id: fs.read.absolute
    category: fs-read
    title: Read a canary file outside the workspace
    probe: read_file
    args: {path: "{outside}/secret.txt"}
    expect: denied
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "srt.json").write_text(json.dumps(SETTINGS))
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return path


def test_conform_alone_derives_one_check_per_testable_rule(tmp_path: Path) -> None:
    m = load_matrix(write(tmp_path, "name: mine\n\nconform: policy/srt.json\n"))
    rules = [r for r in derive(load_settings(tmp_path / "policy" / "srt.json")) if r.check]
    assert [c.id for c in m.checks] == [r.id for r in rules]
    by_id = {c.id: c for c in m.checks}
    assert by_id["conform.allow-domain.allowed-sandboxcheck-test"].expect == "allowed"
    assert by_id["conform.deny-domain.denied-sandboxcheck-test"].expect == "denied"
    assert by_id["conform.deny-read.home-ssh"].expect == "denied"
    # Reports point at the key that derived them.
    assert {(c.source, c.line) for c in m.checks} == {(str(tmp_path / "m.yaml"), 3)}
    assert m.conform == str(tmp_path / "policy" / "srt.json")


def test_own_checks_come_first_and_derived_follow(tmp_path: Path) -> None:
    m = load_matrix(write(tmp_path, "conform: policy/srt.json\nchecks:\n" + OWN_CHECK))
    assert m.checks[0].id == "fs.read.absolute" and m.checks[0].line == 3
    assert all(c.id.startswith("conform.") for c in m.checks[1:]) and len(m.checks) > 5


def test_an_own_check_with_a_derived_id_is_a_problem_at_the_key(tmp_path: Path) -> None:
    clash = OWN_CHECK.replace("fs.read.absolute", "conform.default-read.outside")
    path = write(tmp_path, "conform: policy/srt.json\nchecks:\n" + clash)
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:1: conform: derived check ids conform.default-read.outside are also ids of the matrix's own "
        "checks: rename those"]


def test_a_relative_path_is_read_from_the_matrix_folder(tmp_path: Path) -> None:
    assert settings_file("policy/srt.json", str(tmp_path / "m.yaml")) == tmp_path / "policy" / "srt.json"
    assert settings_file("/etc/x.json", str(tmp_path / "m.yaml")) == Path("/etc/x.json")


def test_only_an_srt_target_without_settings_of_its_own_gets_the_declared_settings(tmp_path: Path) -> None:
    m = load_matrix(write(tmp_path, "conform: policy/srt.json\n"))
    target, note = conform_target(m, "bwrap-strict", False)
    assert target is None and "runs with its own configuration" in note
    target, note = conform_target(m, "srt", True)
    assert target is None and "--target-opt settings" in note
    target, note = conform_target(m, "srt-net", False)
    assert target is not None and target.name == "srt-net-conform"
    assert "runs with the settings of" in note and "sink addresses" in note


def test_a_port_scoped_entry_allows_its_port_only() -> None:
    from sandboxcheck.conform import domain_expectation, parse_settings, split_port

    assert split_port("api.sandboxcheck.test:443") == ("api.sandboxcheck.test", "443")
    assert split_port("api.sandboxcheck.test:{net_port}") == ("api.sandboxcheck.test", "{net_port}")
    assert split_port("api.sandboxcheck.test") == ("api.sandboxcheck.test", None)
    assert split_port("::1") == ("::1", None)
    p = parse_settings(json.dumps({"network": {"allowedDomains": ["api.sandboxcheck.test:{net_port}",
                                                                  "*.cdn.sandboxcheck.test:443"]}}))
    assert domain_expectation(p, "api.sandboxcheck.test", "{net_port}") == "allowed"
    assert domain_expectation(p, "api.sandboxcheck.test", "{net_alt_port}") == "denied"
    assert domain_expectation(p, "x.cdn.sandboxcheck.test", "443") == "allowed"
    assert domain_expectation(p, "x.cdn.sandboxcheck.test", "{net_port}") == "denied"


def test_port_scoped_entries_derive_an_other_port_rule() -> None:
    from sandboxcheck.conform import parse_settings

    rules = {r.id: r for r in derive(parse_settings(json.dumps({"network": {"allowedDomains": [
        "api.sandboxcheck.test:{net_port}", "web.sandboxcheck.test:443", "any.sandboxcheck.test"]}})))}
    api = rules["conform.allow-domain.api-sandboxcheck-test-net-port"]
    assert api.expect == "allowed" and api.check["args"]["url"] == "http://api.sandboxcheck.test:{net_port}/{token}"
    other = rules["conform.other-port.api-sandboxcheck-test-net-alt-port"]
    assert other.expect == "denied" and other.check["args"]["url"].endswith(":{net_alt_port}/{token}")
    # A port the sinks do not listen on cannot be tested; the host's other ports still can.
    web = rules["conform.allow-domain.web-sandboxcheck-test-443"]
    assert web.check is None and "port 443" in (web.untestable or "")
    assert rules["conform.other-port.web-sandboxcheck-test-net-alt-port"].expect == "denied"
    # An entry without a port opens every port: no other-port rule.
    assert not any(i.startswith("conform.other-port.any-") for i in rules)


def test_the_plugin_swaps_srt_presets_as_run_does(tmp_path: Path) -> None:
    from sandboxcheck.targets.registry import load_target

    m = load_matrix(write(tmp_path, "name: mine\nconform: policy/srt.json\n"))
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps(SETTINGS))
    given = [load_target("srt-net"), load_target("srt-settings", {"settings": str(mine)}), load_target("bwrap-loose")]
    swapped, kept_settings, loose = conformed_targets(m, given)
    assert swapped.name == "srt-net-conform"
    settings = dict(swapped.spec.files)["{root}/conform-settings.json"]  # type: ignore[attr-defined]
    assert json.loads(settings)["filesystem"]["denyRead"] == ["~/.ssh"]
    # A settings file of the caller's, and a target that is not srt, run as given.
    assert kept_settings is given[1] and loose is given[2]
    plain = load_matrix(write_plain(tmp_path))
    assert conformed_targets(plain, given) == given


def write_plain(tmp_path: Path) -> Path:
    path = tmp_path / "plain.yaml"
    path.write_text("name: plain\nchecks:\n" + OWN_CHECK)
    return path
