"""Deliberately leaky variants of bwrap-strict, each opening one hole.

The harness must name exactly that hole: the set of failing checks is
asserted in full, so a variant that leaks more (or less) than its one hole
fails the test.
"""
from __future__ import annotations

import dataclasses
import os

import pytest

from sandboxcheck.model import Matrix, Status
from sandboxcheck.run.options import RunOptions
from sandboxcheck.run.schedule import run_matrix
from sandboxcheck.targets.command import CommandTarget
from sandboxcheck.targets.registry import load_target

from marks import requires_bwrap

pytestmark = [pytest.mark.integration, requires_bwrap]


def variant(name: str, drop: list[list[str]] = (), add: list[str] = (),  # type: ignore[assignment]
            replace: dict[str, list[str]] | None = None) -> CommandTarget:
    """bwrap-strict with argument runs removed, added before '--', or replaced."""
    spec = load_target("bwrap-strict").spec  # type: ignore[attr-defined]
    cmd = list(spec.command)
    for run in drop:
        for i in range(len(cmd) - len(run) + 1):
            if cmd[i:i + len(run)] == run:
                del cmd[i:i + len(run)]
                break
        else:
            raise AssertionError(f"{run} not in bwrap-strict")
    for old, new in (replace or {}).items():
        i = cmd.index(old)
        cmd[i:i + 1] = new
    sep = cmd.index("--")
    cmd[sep:sep] = list(add)
    return CommandTarget(dataclasses.replace(spec, name=f"bwrap-strict+{name}", command=tuple(cmd)))


CREDENTIALS = {"credentials.ssh-key", "credentials.aws", "credentials.gcloud", "credentials.kube",
               "credentials.netrc", "credentials.docker", "credentials.git", "credentials.npmrc",
               "credentials.pypirc"}

VARIANTS = {
    "home-visible": (variant("home-visible", add=["--ro-bind", "{home}", "{home}"]), CREDENTIALS),
    # bwrap-strict binds no /etc: with the host's network shared, names still do not
    # resolve (network.http and network.https pass with EAI_AGAIN), addresses are reached.
    "network-shared": (variant("network-shared", add=["--share-net"]),
                       {"network.tcp", "network.udp", "network.dns", "network.http-direct"}),
    "pid1-keeps-env": (variant("pid1-keeps-env", drop=[["env", "-i"]]),
                       {"env.proc-1", "env.proc-ppid"}),
    "env-kept": (variant("env-kept", drop=[["env", "-i"], ["--clearenv"]]),
                 {"env.own", "env.proc-1", "env.proc-ppid"}),
    "shell-unmasked": (variant("shell-unmasked", drop=[["--ro-bind", "/dev/null", "/usr/bin/dash"]]),
                       {"exec.shell"}),
    "git-writable": (variant("git-writable", drop=[["--ro-bind", "{workspace}/.git", "{workspace}/.git"]]),
                     {"tamper.git-hook", "tamper.git-config"}),
    "agent-socket": (variant("agent-socket", add=["--bind", "{run}", "{run}", "--setenv", "SSH_AUTH_SOCK",
                                                   "{run}/ssh-agent.sock"]),
                     {"ipc.ssh-agent", "ipc.docker-sock"}),
    "outside-writable": (variant("outside-writable", add=["--bind", "{outside}", "{outside}"]),
                         {"fs.read.absolute", "fs.read.relative", "fs.read.symlink", "fs.read.proc-root",
                          "fs.read.list-outside", "credentials.dotenv-outside", "fs.write.outside",
                          "fs.write.symlink", "fs.write.tar-traversal"}),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_names_exactly_its_hole(name: str, baseline: Matrix) -> None:
    target, holes = VARIANTS[name]
    report = run_matrix(baseline, target, RunOptions(jobs=os.cpu_count() or 2))
    failing = {r.id for r in report.results if r.status is Status.FAIL}
    assert failing == holes, {r.id: r.reason for r in report.results if r.id in failing ^ holes}
    assert not [(r.id, r.reason) for r in report.results if r.status is Status.INCONCLUSIVE]
