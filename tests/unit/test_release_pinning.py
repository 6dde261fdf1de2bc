"""Pinning without the registry: version ranges, per-release variants, refusals, node choice, bisect search."""
from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from sandboxcheck import bisect as bs
from sandboxcheck.targets.pinning import Installed, PinError, node_major_for, node_script, parse_install, satisfies, split_ref, valid_range, version_key
from sandboxcheck.targets.base import TargetError
from sandboxcheck.targets.registry import load_target, pin_spec, release_data


@pytest.mark.parametrize("version,spec,expected", [
    ("0.0.15", "<0.0.21", True), ("0.0.21", "<0.0.21", False), ("0.0.10", ">=0.0.10", True),
    ("0.0.8", ">=0.0.10", False), ("20.20.2", ">=20.11.0", True), ("20.20.2", ">=22.12.0", False),
    ("22.12.0", "^20.19.0 || >=22.12.0", True), ("21.0.0", "^20.19.0 || >=22.12.0", False),
    ("18.3.0", ">=18", True), ("0.171.0-linux-x64", ">=0.45.0", False), ("2.1.197", ">=2.1.197", True),
    ("0.134.0", ">=0.45.0 <0.134.0", False), ("0.133.0", ">=0.45.0 <0.134.0", True),
    ("1.4.0", "~1.4", True), ("1.5.0", "~1.4", False),
])
def test_ranges(version: str, spec: str, expected: bool) -> None:
    assert satisfies(version, spec) is expected


def test_semver_order_puts_prereleases_before_their_release() -> None:
    found = sorted(["0.0.10", "0.0.9", "1.0.0", "1.0.0-rc.1", "0.0.100"], key=version_key)
    assert found == ["0.0.9", "0.0.10", "0.0.100", "1.0.0-rc.1", "1.0.0"]


def test_bad_ranges_are_problems() -> None:
    assert not valid_range("banana") and not valid_range("")
    spec, problems = parse_install({"npm": "p@{version}", "supported": "soon"}, [{"range": "<1", "flavour": 1}])
    assert spec is None
    assert problems == ["install: supported: 'soon' is not a version range (e.g. \">=0.0.10\")",
                        "versions[0]: 'flavour' cannot change per release (can: allowed_tools, command, config, "
                        "env, files, flags, options, requires, settings, user_settings)"]
    assert parse_install(None, [])[1] == ["'versions' needs 'install' (how to install a release)"]


def test_split_ref_rejects_shell_words() -> None:
    assert split_ref("srt@latest") == ("srt", "latest")
    with pytest.raises(PinError):
        split_ref("srt@0.0.50;rm")


def test_old_srt_takes_the_command_as_one_argument_new_srt_takes_dash_c() -> None:
    install, data, _ = pin_spec("srt")
    assert release_data(install, data, "0.0.15", "srt@0.0.15")["command"] == ["srt", "--", "{cmd_shell}"]
    assert release_data(install, data, "0.0.20", "srt@0.0.20")["command"] == ["srt", "--", "{cmd_shell}"]
    assert release_data(install, data, "0.0.21", "srt@0.0.21")["command"] == ["srt", "-c", "{cmd_shell}"]


def test_codex_sandbox_lost_its_platform_word_in_0_134() -> None:
    install, data, _ = pin_spec("codex-workspace-write")
    assert "linux" in release_data(install, data, "0.133.0", "x")["command"]
    assert "linux" not in release_data(install, data, "0.134.0", "x")["command"]


@pytest.mark.parametrize("ref,supported", [("srt@0.0.5", ">=0.0.10"), ("srt-settings@0.0.8", ">=0.0.10"),
                                           ("codex-read-only@0.40.0", ">=0.45.0"),
                                           ("codex-agent@0.95.0", ">=0.96.0"),
                                           ("claude-code@1.0.100", ">=2.0.0"),
                                           ("claude-code-sandbox@2.0.30", ">=2.1.0")])
def test_unsupported_release_is_refused_before_any_install(ref: str, supported: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDBOXCHECK_CACHE", str(tmp_path))
    with pytest.raises(TargetError) as exc:
        load_target(ref)
    assert str(exc.value) == (f"{ref}: release {ref.split('@')[1]} is not supported (supported: {supported}); "
                              "pick a release in that range")
    assert list(tmp_path.iterdir()) == []  # nothing installed


def test_every_vendor_preset_is_pinnable() -> None:
    for name in ("srt", "srt-settings", "codex-read-only", "codex-workspace-write", "codex-workspace-write-no-tmp",
                 "codex-agent", "codex-agent-no-tmp", "codex-agent-read-only", "claude-code", "claude-code-sandbox",
                 "gemini-cli", "gemini-cli-yolo", "gemini-cli-auto-edit", "gemini-cli-plan", "gemini-cli-tool-sandbox"):
        install, _, _ = pin_spec(name)
        assert install.supported
    with pytest.raises(TargetError, match="pinnable presets: claude-code, claude-code-sandbox"):
        pin_spec("bwrap-strict")


def _fake_release(tmp_path: Path, body: bytes) -> Installed:
    bin_dir = tmp_path / "node_modules" / ".bin"
    bin_dir.mkdir(parents=True)
    tool = tmp_path / "node_modules" / "tool.js"
    tool.write_bytes(body)
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    os.symlink("../tool.js", bin_dir / "tool")
    return Installed("1.0.0", bin_dir, tmp_path / "node22" / "node", "22.0.0", ">=22", cached_node=True)


def test_a_node_script_runs_under_the_pinned_node_a_native_binary_alone(tmp_path: Path) -> None:
    script = _fake_release(tmp_path / "a", b"#!/usr/bin/env node\nconsole.log(1)\n")
    assert script.launcher("tool") == [str(tmp_path / "a" / "node22" / "node"),
                                       str(tmp_path / "a" / "node_modules" / "tool.js")]
    native = _fake_release(tmp_path / "b", b"\x7fELF\x02\x01\x01")
    assert native.launcher("tool") == [str(tmp_path / "b" / "node_modules" / "tool.js")]
    assert script.describe() == "1.0.0 (node 22.0.0, from the cache)"
    assert native.launcher("absent") is None
    assert node_script(tmp_path / "a" / "node_modules" / "tool.js")


def test_node_major_for_engines() -> None:
    assert node_major_for(">=22.12.0") == 22
    assert node_major_for(">=20.11.0") == 20
    assert node_major_for("^20.19.0 || >=22.12.0") == 20
    with pytest.raises(PinError):
        node_major_for(">=99")


def test_pinned_command_target_launches_the_release_with_its_node(tmp_path: Path) -> None:
    import dataclasses

    from sandboxcheck.targets.command import CommandTarget
    from sandboxcheck.targets.registry import parse_target

    pin = _fake_release(tmp_path, b"#!/usr/bin/env node\n")
    (pin.bin_dir / "srt").symlink_to("../tool.js")
    spec = parse_target({"name": "x", "requires": ["srt"], "command": ["srt", "-c", "{cmd_shell}"]}, "t")
    target = CommandTarget(dataclasses.replace(spec, pin=pin))
    argv = target.argv({"workspace": "/w", "root": "/r"}, ["/usr/bin/true", "a b"])
    assert argv == [str(tmp_path / "node22" / "node"), str(tmp_path / "node_modules" / "tool.js"), "-c",
                    "/usr/bin/true 'a b'"]
    assert target.unavailable() is None


# -- bisect search, with a fake evaluator -------------------------------------------------

def _report(observed: str, status: str) -> dict[str, object]:
    return {"results": [{"id": "env.proc-1", "observed": observed, "status": status, "expect": "denied"}]}


def _evaluator(leaks_until: str, skip: set[str], calls: list[str]):
    def evaluate(version: str) -> bs.Outcome:
        calls.append(version)
        if version in skip:
            return bs.Outcome(version, skipped="apply-seccomp: write /proc/self/uid_map")
        leaking = version_key(version) <= version_key(leaks_until)
        return bs.Outcome(version, _report("allowed" if leaking else "denied", "fail" if leaking else "pass"))
    return evaluate


VERSIONS = [f"0.0.{n}" for n in range(50, 79)] + ["0.0.79-beta.1", "0.1.0-rc.1"]


def test_bisect_finds_the_pair_and_skips_releases_that_cannot_run() -> None:
    calls: list[str] = []
    skip = {f"0.0.{n}" for n in range(66, 76)}
    result = bs.bisect("srt", "baseline", ["env.proc-1"], "0.0.50", "0.0.78",
                       _evaluator("0.0.65", skip, calls), versions=VERSIONS)
    assert (result.old_side.version, result.new_side.version) == ("0.0.65", "0.0.76")
    assert result.skipped_between == tuple(f"0.0.{n}" for n in range(66, 76))
    assert [c.id for c in result.changes if c.moved] == ["env.proc-1"]
    statuses = {t.version: t.status for t in result.tried}
    assert statuses["0.0.50"] == "old" and statuses["0.0.78"] == "new" and statuses["0.0.65"] == "old"
    assert all(statuses[v] == "skipped" for v in statuses if v in skip)
    assert len(calls) == len(set(calls))  # no release run twice
    data = result.to_dict()
    assert data["old_side"]["version"] == "0.0.65" and data["new_side"]["version"] == "0.0.76"
    assert data["changes"][0]["id"] == "env.proc-1" and data["changes"][0]["change"] == "tightened"
    assert {"version", "status"} <= set(data["tried"][0])
    out = io.StringIO()
    bs.render(result, "table", out)
    assert "last as before: srt@0.0.65" in out.getvalue() and "first changed:  srt@0.0.76" in out.getvalue()


def test_bisect_costs_about_log2_of_the_range() -> None:
    calls: list[str] = []
    result = bs.bisect("srt", "m", ["env.proc-1"], "0.0.50", "0.0.78", _evaluator("0.0.61", set(), calls),
                       versions=VERSIONS)
    assert (result.old_side.version, result.new_side.version) == ("0.0.61", "0.0.62")
    assert len(calls) <= 2 + 5  # both ends, then log2(29) rounded up


def test_prereleases_only_when_an_end_is_one() -> None:
    assert "0.0.79-beta.1" not in bs.releases_between(VERSIONS, "0.0.50", "0.1.0-rc.1")
    assert bs.releases_between(VERSIONS, "0.0.77", "0.0.79-beta.1") == ["0.0.77", "0.0.78", "0.0.79-beta.1"]
    with pytest.raises(bs.BisectError, match="0.0.99 is not a published release"):
        bs.releases_between(VERSIONS, "0.0.50", "0.0.99")
    with pytest.raises(bs.BisectError, match="swap them"):
        bs.releases_between(VERSIONS, "0.0.78", "0.0.50")


def test_no_change_and_unrunnable_ends() -> None:
    same = bs.bisect("srt", "m", [], "0.0.50", "0.0.60", _evaluator("0.0.99", set(), []), versions=VERSIONS)
    assert not same.found and len(same.tried) == 2
    assert json.loads(json.dumps(same.to_dict()))["changes"] == []
    with pytest.raises(bs.BisectError, match="the old end 0.0.66 cannot be judged here"):
        bs.bisect("srt", "m", [], "0.0.66", "0.0.78", _evaluator("0.0.65", {"0.0.66"}, []), versions=VERSIONS)


def test_reports_name_the_pinned_release_and_its_node_not_paths_tools(tmp_path: Path) -> None:
    from sandboxcheck.targets.pinning import Installed
    from sandboxcheck.targets.command import CommandTarget
    from sandboxcheck.targets.base import TargetSpec, requirement_versions
    from sandboxcheck.targets.tools import Requirement

    (tmp_path / "srt").write_text("#!/usr/bin/env node\n")
    pin = Installed(version="9.9.9", bin_dir=tmp_path, node=Path("/cache/node-22/bin/node"),
                    node_version="22.1.0", cached_node=True)
    spec = TargetSpec(name="srt@9.9.9", command=("srt", "-c", "{cmd_shell}"),
                      requires=(Requirement("srt"), Requirement("node")), bin_dirs=(tmp_path,),
                      version="9.9.9", pin=pin)
    assert requirement_versions(CommandTarget(spec)) == ["srt 9.9.9 (node 22.1.0, from the cache)"]


def test_a_path_argument_is_never_taken_for_one_of_the_releases_executables(tmp_path) -> None:
    from sandboxcheck.targets.pinning import Installed

    (tmp_path / "srt").write_text("#!/bin/sh\n")
    pin = Installed(version="1.0.0", bin_dir=tmp_path)
    assert pin.launcher("srt") == [str((tmp_path / "srt").resolve())]
    # bin_dir / "/lib" is "/lib", which exists: before, it came back resolved (/usr/lib)
    assert pin.launcher("/lib") is None and pin.launcher(str(tmp_path / "srt")) is None
    assert pin.launcher("..") is None and pin.launcher("") is None
