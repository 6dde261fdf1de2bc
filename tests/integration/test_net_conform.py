"""conform against real sandboxes: srt honours its own settings; a loose bwrap violates them, rule by rule."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandboxcheck.conform import conform
from sandboxcheck.run.options import RunOptions

from marks import requires_bwrap

pytestmark = pytest.mark.integration
SETTINGS = {"network": {"allowedDomains": ["api.sandboxcheck.test", "*.cdn.sandboxcheck.test", "github.com"],
                        "deniedDomains": ["blocked.cdn.sandboxcheck.test"]},
            "filesystem": {"denyRead": ["~/.ssh", "{home}/.aws", "/etc/shadow"], "allowRead": [],
                           "allowWrite": [".", "~/cache"], "denyWrite": ["./secrets"]}}
UNTESTABLE = {"conform.deny-read.etc-shadow", "conform.allow-domain.github-com"}


@pytest.fixture()
def settings(tmp_path: Path) -> str:
    path = tmp_path / "srt-settings.json"
    path.write_text(json.dumps(SETTINGS))
    return str(path)


def verdicts(report) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    out: dict[str, set[str]] = {}
    for r in report.results:
        out.setdefault(r.verdict, set()).add(r.rule.id)
    return out


def test_srt_honours_every_rule_it_declares(settings: str) -> None:
    report = conform(settings, "srt", RunOptions(jobs=2))
    if any("target unavailable" in n for n in report.notes):
        pytest.skip(report.notes[-1])
    got = verdicts(report)
    assert got.get("violated", set()) == set()
    assert got["could not test"] == UNTESTABLE
    assert len(got["honoured"]) == 14
    assert report.exit_code() == 0


@requires_bwrap
def test_a_loose_bwrap_violates_exactly_what_it_does_not_enforce(settings: str) -> None:
    report = conform(settings, "bwrap-loose", RunOptions(jobs=2))
    got = verdicts(report)
    assert got["violated"] == {
        "conform.deny-read.home-ssh", "conform.deny-read.home-aws", "conform.deny-write.workspace-secrets",
        "conform.allow-write.home-cache",  # the fake home is read-only there
        "conform.protected.workspace-git-config", "conform.protected.workspace-git-hooks-pre-commit",
        "conform.protected.workspace-bashrc", "conform.deny-domain.blocked-cdn-sandboxcheck-test",
        "conform.unlisted-domain.unlisted-conform-sandboxcheck-test"}
    assert any("runs with its own configuration" in n for n in report.notes)
    assert report.exit_code() == 1


def test_claude_code_settings_run_through_srt(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"sandbox": {"enabled": True, "network": {"allowedDomains": ["api.sandboxcheck.test"]}},
                                "permissions": {"deny": ["Read(~/.ssh)", "WebFetch(domain:no.sandboxcheck.test)"]}}))
    report = conform(str(path), "srt", RunOptions(jobs=2))
    if any("target unavailable" in n for n in report.notes):
        pytest.skip(report.notes[-1])
    got = verdicts(report)
    assert got.get("violated", set()) == set() and got.get("could not test", set()) == set()
    assert {"conform.deny-read.home-ssh", "conform.allow-domain.api-sandboxcheck-test",
            "conform.deny-domain.no-sandboxcheck-test"} <= got["honoured"]


def test_cli_exit_codes(settings: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[]")
    proc = subprocess.run([sys.executable, "-m", "sandboxcheck", "conform", str(bad), "--target", "srt"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "must be a JSON object" in proc.stderr
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "sandboxcheck", "conform", settings, "--target", "srt",
                           "-f", "json", "-o", str(out), "-j", "2"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["counts"] == {"honoured": 14, "violated": 0, "could not test": 2}


def _agent_report(path: Path, target: str):  # type: ignore[no-untyped-def]
    report = conform(str(path), target, RunOptions(jobs=2))
    if any("target unavailable" in n for n in report.notes):
        pytest.skip(report.notes[-1])
    assert any("runs with the settings file as its" in n for n in report.notes)
    return report


def test_claude_code_applies_its_settings_through_its_own_sandbox(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({
        "sandbox": {"enabled": True, "autoAllowBashIfSandboxed": True,
                    "network": {"allowedDomains": ["api.sandboxcheck.test"]}, "filesystem": {"denyRead": ["~/.aws"]}},
        "permissions": {"deny": ["Read(~/.ssh)", "WebFetch(domain:no.sandboxcheck.test)"]}}))
    report = _agent_report(path, "claude-code-sandbox")
    got = verdicts(report)
    assert got.get("violated", set()) == set() and got.get("could not test", set()) == set()
    results = {r.rule.id: r for r in report.results}
    # The allowed name went through Claude Code's own proxy (its process), to the sink the name resolves to.
    assert "connected from a 'claude' process" in results["conform.allow-domain.api-sandboxcheck-test"].detail


def test_codex_honours_its_tmp_exclusions(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('sandbox_mode = "workspace-write"\n[sandbox_workspace_write]\nnetwork_access = false\n'
                    'exclude_slash_tmp = true\nexclude_tmpdir_env_var = true\n')
    got = verdicts(_agent_report(path, "codex-agent"))
    assert got == {"honoured": {"conform.allow-write.workspace", "conform.default-read.outside",
                                "conform.default-write.outside", "conform.unlisted-domain.unlisted-conform-sandboxcheck-test"}}
    path.write_text('sandbox_mode = "workspace-write"\n')
    got = verdicts(_agent_report(path, "codex-agent"))
    # Without them /tmp is writable as documented, and the throwaway root lies there: the outside write is allowed.
    assert got.get("violated", set()) == set()
    assert "conform.allow-write.root" in got["honoured"]
