"""Survey column names: a target's own name, or an inline command named by the command."""
from __future__ import annotations

from pathlib import Path

from sandboxcheck.survey import INLINE_NAME_MAX, _unique, column_name
from sandboxcheck.targets.registry import load_target


def name(ref: str) -> str:
    return column_name(ref, load_target(ref, strict=False))


def test_presets_and_target_files_keep_their_name(tmp_path: Path) -> None:
    assert name("landlock") == "landlock"
    target = tmp_path / "mine.yaml"
    target.write_text("name: my-jail\ndescription: a jail\ncommand: [firejail, --quiet, --, '{cmd}']\n")
    assert name(str(target)) == "my-jail"


def test_inline_commands_are_named_by_the_command() -> None:
    assert name("firejail --quiet --noprofile -- {cmd}") == "firejail --quiet --noprofile"
    assert name("/nonexistent/sandbox {cmd}") == "/nonexistent/sandbox"
    long = "bwrap --ro-bind / / --dev /dev --proc /proc --unshare-all --die-with-parent -- {cmd}"
    short = name(long)
    assert len(short) <= INLINE_NAME_MAX and short.endswith("…") and long.startswith(short[:-1])


def test_same_names_stay_apart() -> None:
    refs = ["firejail -- {cmd}", "firejail -- {cmd}", "landlock"]
    assert _unique([name(r) for r in refs]) == ["firejail", "firejail#2", "landlock"]
