"""Every environment variable an option of the command line reads survives the clean re-exec.

The console entry re-executes the harness with only the variables ``_entry.kept``
allows; an option's ``envvar=`` missing there is silently ignored (it was, for
SANDBOXCHECK_SHARD and SANDBOXCHECK_ANONYMISE_HOST).
"""
from __future__ import annotations

import click

from sandboxcheck import _entry, cli


def _declared() -> dict[str, list[str]]:
    """Each envvar= of the group and its commands, with the options that read it."""
    found: dict[str, list[str]] = {}
    commands: list[tuple[str, click.Command]] = [("sandboxcheck", cli.main),
                                                 *((f"sandboxcheck {n}", c) for n, c in cli.main.commands.items())]
    for where, command in commands:
        for param in command.params:
            names = param.envvar if isinstance(param.envvar, (list, tuple)) else [param.envvar]
            for name in names:
                if name:
                    found.setdefault(name, []).append(f"{where} {param.opts[0]}")
    return found


def test_every_option_envvar_is_kept_by_the_clean_reexec() -> None:
    declared = _declared()
    # The ones this test was written for are among those the walk finds: it walks the real options.
    assert {"SANDBOXCHECK_SHARD", "SANDBOXCHECK_ANONYMISE_HOST", "SANDBOXCHECK_JOBS"} <= set(declared)
    dropped = {name: where for name, where in declared.items() if not _entry.kept(name)}
    assert dropped == {}, f"add these to _entry.KEEP_OWN (flags and paths only, never a secret): {dropped}"


def test_the_bisect_command_reads_shard_and_anonymise_host_from_the_environment() -> None:
    params = {p.name: p for p in cli.main.commands["bisect"].params}
    assert params["shard_spec"].envvar == "SANDBOXCHECK_SHARD"
    assert params["anonymise_host"].envvar == "SANDBOXCHECK_ANONYMISE_HOST"


def test_a_variable_that_could_hold_a_secret_is_still_dropped() -> None:
    for name in ("SANDBOXCHECK_SECRET", "SANDBOXCHECK_HOST_SALT", "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY",
                 "HTTPS_PROXY"):
        assert not _entry.kept(name), name
