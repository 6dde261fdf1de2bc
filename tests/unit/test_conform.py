"""conform: settings files become rules with expectations, checks the matrix loader accepts, and verdicts."""
from __future__ import annotations

import json

import pytest

from sandboxcheck.conform import (PolicyError, Rule, derive, domain_expectation, judge_rules, matrix_text,
                                  parse_settings, path_template, read_expectation, run_settings,
                                  seeded_file, write_expectation)
from sandboxcheck.matrix.load import parse_matrix
from sandboxcheck.model import Observed, Result, RunReport, Status

SRT = {"network": {"allowedDomains": ["api.sandboxcheck.test", "*.cdn.sandboxcheck.test", "github.com"],
                   "deniedDomains": ["blocked.cdn.sandboxcheck.test"]},
       "filesystem": {"denyRead": ["~/.ssh", "/etc/shadow", "~/.config/**"], "allowRead": ["~/.ssh/known_hosts"],
                      "allowWrite": [".", "{home}/cache"], "denyWrite": ["./secrets"]}}


def test_paths_map_into_the_throwaway_root_or_are_refused() -> None:
    assert path_template("~/.ssh") == "{home}/.ssh"
    assert path_template("~") == "{home}"
    assert path_template(".") == "{workspace}"
    assert path_template("./a/b/") == "{workspace}/a/b"
    assert path_template("src") == "{workspace}/src"
    assert path_template("{home}/.aws") == "{home}/.aws"
    assert path_template("~/.config/**") == "{home}/.config"
    assert path_template("/etc/shadow") is None
    assert path_template("~/*.pem") is None
    assert path_template("../escape") is None


def test_srt_rules_follow_srts_defaults() -> None:
    p = parse_settings(json.dumps(SRT), "srt.json")
    assert p.source == "srt" and [d.where for d in p.deny_read][0] == "filesystem.denyRead[0]"
    assert read_expectation(p, "{home}/.ssh/id") == "denied"
    assert read_expectation(p, "{home}/.ssh/known_hosts") == "allowed"  # allowRead re-allows inside a denyRead
    assert read_expectation(p, "{outside}") == "allowed"  # reads are open by default
    assert write_expectation(p, "{workspace}/x") == "allowed"
    assert write_expectation(p, "{workspace}/secrets/x") == "denied"
    assert write_expectation(p, "{home}/cachex") == "denied"  # a prefix is not a parent folder
    assert write_expectation(p, "{outside}") == "denied"  # writes are closed by default
    assert domain_expectation(p, "api.sandboxcheck.test") == "allowed"
    assert domain_expectation(p, "API.sandboxcheck.test.") == "allowed"
    assert domain_expectation(p, "x.cdn.sandboxcheck.test") == "allowed"
    assert domain_expectation(p, "evilcdn.sandboxcheck.test") == "denied"
    assert domain_expectation(p, "cdn.sandboxcheck.test") == "denied"  # *.x does not cover x itself
    assert domain_expectation(p, "blocked.cdn.sandboxcheck.test") == "denied"


def test_an_empty_allowlist_denies_every_domain() -> None:
    p = parse_settings('{"network": {"allowedDomains": []}}')
    assert domain_expectation(p, "anything.sandboxcheck.test") == "denied"
    # The harness adds its sink addresses only to a non-empty list: an empty one stays empty.
    assert run_settings(p)["network"]["allowedDomains"] == []  # type: ignore[index]
    full = run_settings(parse_settings(json.dumps(SRT)))
    assert full["network"]["allowedDomains"][-2:] == ["{net_allowed_ip}", "{net_other_ip}"]  # type: ignore[index]


def test_derive_gives_each_declared_rule_a_check_or_a_reason() -> None:
    p = parse_settings(json.dumps(SRT))
    rules = {r.subject + " " + r.kind: r for r in derive(p)}
    shadow = rules["/etc/shadow deny-read"]
    assert shadow.check is None and "outside the throwaway root" in (shadow.untestable or "")
    github = rules["github.com allow-domain"]
    assert github.check is None and "never addresses a name it does not own" in (github.untestable or "")
    ssh = rules["~/.ssh deny-read"]
    assert ssh.expect == "denied" and ssh.check["args"] == {"path": "{home}/.ssh/conform-read.txt"}  # type: ignore[index]
    wild = rules["*.cdn.sandboxcheck.test allow-domain"]
    assert wild.check["args"]["url"] == "http://conform.cdn.sandboxcheck.test:{net_port}/{token}"  # type: ignore[index]
    assert rules["unlisted.conform.sandboxcheck.test unlisted-domain"].expect == "denied"
    assert rules["{workspace}/.git/config protected"].expect == "denied"
    assert len({r.id for r in derive(p)}) == len(derive(p))


def test_the_derived_matrix_passes_the_matrix_loader() -> None:
    p = parse_settings(json.dumps(SRT))
    rules = derive(p)
    m = parse_matrix(matrix_text(p, rules, "srt.json"), "<conform>")
    assert {c.id for c in m.checks} == {r.id for r in rules if r.check is not None}
    assert all(c.expect == r.expect for c in m.checks for r in rules if r.id == c.id)


def test_claude_code_permissions_become_sandbox_rules() -> None:
    p = parse_settings(json.dumps({
        "sandbox": {"enabled": True, "network": {"allowedDomains": ["a.sandboxcheck.test"]},
                    "filesystem": {"denyRead": ["~/.aws"]}},
        "permissions": {"allow": ["WebFetch(domain:b.sandboxcheck.test)", "Edit(~/notes)", "Bash(ls)"],
                        "deny": ["Read(~/.ssh)", "WebFetch(domain:c.sandboxcheck.test)", "Edit(./vendor)"]}}))
    assert p.source == "claude-code"
    assert {d.value for d in p.allowed_domains} == {"a.sandboxcheck.test", "b.sandboxcheck.test"}
    assert {d.value for d in p.denied_domains} == {"c.sandboxcheck.test"}
    assert {d.value for d in p.deny_read} == {"~/.aws", "~/.ssh"}
    assert write_expectation(p, "{workspace}/x") == "allowed"  # the working folder, always
    assert write_expectation(p, "{home}/notes/x") == "allowed"
    assert write_expectation(p, "{workspace}/vendor/x") == "denied"
    assert p.srt_settings["filesystem"]["denyRead"] == ["~/.aws", "~/.ssh"]  # type: ignore[index]
    assert "sandbox.enabled" not in " ".join(p.notes)
    off = parse_settings('{"permissions": {"deny": ["Read(~/.ssh)"]}}')
    assert any("unsandboxed" in n for n in off.notes)


def test_codex_modes() -> None:
    ro = parse_settings('sandbox_mode = "read-only"\n', "config.toml")
    assert ro.network == "none" and write_expectation(ro, "{workspace}/x") == "denied"
    assert ro.srt_settings is None
    ww = parse_settings('sandbox_mode = "workspace-write"\n[sandbox_workspace_write]\n'
                        'writable_roots = ["~/extra"]\nnetwork_access = true\n', "config.toml")
    assert write_expectation(ww, "{workspace}/x") == "allowed" and write_expectation(ww, "{home}/extra/y") == "allowed"
    assert domain_expectation(ww, "unlisted.conform.sandboxcheck.test") == "allowed"
    assert not any(r.kind == "protected" for r in derive(ww))
    # /tmp stays writable (the throwaway root lies there) unless both exclusions are set.
    assert write_expectation(ww, "{outside}") == "allowed"
    shut = parse_settings('sandbox_mode = "workspace-write"\n[sandbox_workspace_write]\n'
                          'exclude_slash_tmp = true\nexclude_tmpdir_env_var = true\n', "config.toml")
    assert write_expectation(shut, "{outside}") == "denied"
    m = parse_matrix(matrix_text(ww, derive(ww), "config.toml"), "<conform>")
    assert any(c.args == (("path", "{root}/conform-write.txt"), ("content", "conform {token}")) for c in m.checks)
    with pytest.raises(PolicyError, match="sandbox_mode"):
        parse_settings('sandbox_mode = "open"\n', "config.toml")


@pytest.mark.parametrize("text", ["[]", "{}", "not json", '{"network": []}'])
def test_unreadable_settings_are_errors(text: str) -> None:
    with pytest.raises(PolicyError):
        parse_settings(text, "x.json")


def _result(rid: str, status: Status) -> Result:
    return Result(id=rid, category="network", title="t", expect="denied", observed=Observed.DENIED,
                  status=status, errno=None, evidence=(), reason=f"reason {status.value}", duration_s=0.0)


def test_verdicts_come_from_the_run_and_untestable_rules_keep_their_reason() -> None:
    rules = [Rule("conform.a.x", "deny-read", "x", "d", "denied", {"probe": "read_file"}),
             Rule("conform.b.x", "deny-read", "x", "d", "denied", {"probe": "read_file"}),
             Rule("conform.c.x", "deny-read", "x", "d", "denied", {"probe": "read_file"}),
             Rule("conform.d.x", "deny-read", "/etc", "d", "denied", None, "outside"),
             Rule("conform.e.x", "deny-read", "x", "d", "denied", {"probe": "read_file"})]
    matrix = None  # judge_rules reads the results alone
    report = RunReport(matrix=matrix, target={"name": "t"}, started="", duration_s=0.0,  # type: ignore[arg-type]
                       results=[_result("conform.a.x", Status.PASS), _result("conform.b.x", Status.FAIL),
                                _result("conform.c.x", Status.INCONCLUSIVE)])
    got = [(r.verdict, r.detail) for r in judge_rules(rules, report)]
    assert got == [("honoured", "reason pass"), ("violated", "reason fail"),
                   ("could not test", "reason inconclusive"), ("could not test", "outside"),
                   ("could not test", "not run")]


def test_a_rule_naming_a_file_the_root_holds_is_tested_on_that_file() -> None:
    # ~/.bashrc and ./.env are files of every throwaway root: a check writing
    # ~/.bashrc/conform-write.txt would end ENOTDIR and prove nothing.
    p = parse_settings(json.dumps({"filesystem": {"allowWrite": ["."], "denyWrite": ["~/.bashrc", "./.env", "./cache"],
                                                  "denyRead": ["~/.netrc"]}}))
    rules = {r.subject + " " + r.kind: r for r in derive(p)}
    bashrc = rules["~/.bashrc deny-write"].check
    assert bashrc is not None and bashrc["args"]["path"] == "{home}/.bashrc"
    assert bashrc["evidence"] == {"kind": "file", "path": "{home}/.bashrc", "contains": "{token}"}
    assert bashrc["setup"] == [{"file": "{home}/.bashrc", "content": "# sandboxcheck\n"}]
    env = rules["./.env deny-write"]
    assert env.expect == "denied" and env.check["args"]["path"] == "{workspace}/.env"  # type: ignore[index]
    # A folder no root holds stays a folder: the check writes a file inside it.
    assert rules["./cache deny-write"].check["args"]["path"] == "{workspace}/cache/conform-write.txt"  # type: ignore[index]
    netrc = rules["~/.netrc deny-read"].check
    assert netrc is not None and netrc["args"] == {"path": "{home}/.netrc"}
    assert netrc["setup"] == [{"file": "{home}/.netrc", "content": "SCNRY-{token}-conform\n"}]
    assert seeded_file("{home}/.bashrc") and not seeded_file("{home}/.bashrc2") and not seeded_file("{root}/x")
    m = parse_matrix(matrix_text(p, list(rules.values()), "srt.json"), "<conform>")
    assert {c.id for c in m.checks} == {r.id for r in rules.values() if r.check is not None}
