"""Targets that write an OCI bundle: {cmd_json}, {launch_id}, and the kernel the preflight sees."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandboxcheck.run.preflight import GVISOR_UNAME_VERSION, judge_preflight, kernel_layer
from sandboxcheck.targets.command import CommandTarget
from sandboxcheck.targets.base import TargetError
from sandboxcheck.targets.registry import load_target, parse_target

BUNDLE = {"name": "b", "command": ["runtime", "run", "--bundle", "{root}/oci", "{launch_id}"],
          "files": {"{root}/oci/config.json": '{"process": {"args": {cmd_json}, "cwd": "{workspace}"}}'}}


def test_the_probe_argv_lands_in_the_bundle_as_json(tmp_path: Path) -> None:
    target = CommandTarget(parse_target(BUNDLE, "b.yaml"))
    values = {"root": str(tmp_path), "workspace": "/w"}
    cmd = ["/usr/bin/python3", "-c", 'print("a b", \'c\')', "$HOME"]
    target.start(values, cmd)
    config = json.loads((tmp_path / "oci" / "config.json").read_text())
    assert config["process"] == {"args": cmd, "cwd": "/w"}
    argv = target.argv(values, cmd)
    assert argv[:4] == ["runtime", "run", "--bundle", f"{tmp_path}/oci"]
    first = argv[4]
    assert first.startswith("sandboxcheck-") and len(first) > len("sandboxcheck-") + 8
    # Each launch gets its own container id; argv and the files of one launch agree.
    assert target.argv(values, cmd)[4] == first
    again = {"root": str(tmp_path), "workspace": "/w"}
    target.start(again, cmd)
    assert target.argv(again, cmd)[4] != first


def test_a_command_needs_the_probe_somewhere() -> None:
    with pytest.raises(TargetError, match=r"must contain \{cmd\}.*or a file must hold \{cmd_json\}"):
        parse_target({"name": "b", "command": ["runtime", "run"], "files": {"{root}/x": "no argv"}}, "b.yaml")
    parse_target(BUNDLE, "b.yaml")  # {cmd_json} in a file is enough


def test_gvisor_presets_parse_and_name_runsc() -> None:
    for name in ("gvisor", "gvisor-strict"):
        target = load_target(name)
        assert isinstance(target, CommandTarget)
        assert [r.name for r in target.spec.requires] == ["runsc"]
        assert "--network=none" in target.spec.command
        # runsc's state lives in the throwaway root, never in /var/run/runsc.
        assert target.spec.command[target.spec.command.index("--root") + 1] == "{root}/runsc"


HOST = {"namespaces": {"pid": "pid:[1]"}, "status": {}, "processes": 80,
        "kernel": {"release": "6.1.0-18-amd64", "version": "#1 SMP PREEMPT_DYNAMIC Debian"}}


def test_the_preflight_names_a_user_space_kernel() -> None:
    gvisor = {"release": "4.4.0", "version": GVISOR_UNAME_VERSION}
    assert kernel_layer({"kernel": gvisor}, HOST) == \
        "user-space kernel (gVisor, reports Linux 4.4.0; host 6.1.0-18-amd64)"
    other = {"release": "5.10.0", "version": "#1 SMP"}
    assert kernel_layer({"kernel": other}, HOST) == "another kernel (reports Linux 5.10.0; host 6.1.0-18-amd64)"
    assert kernel_layer({"kernel": dict(HOST["kernel"])}, HOST) is None
    assert kernel_layer({}, HOST) is None  # an older probe that does not report its kernel
    inside = {"namespaces": {"pid": "pid:[1]"}, "status": {}, "processes": 80, "kernel": gvisor}
    pre = judge_preflight(inside, HOST)
    assert pre.isolated and pre.layers == ("user-space kernel (gVisor, reports Linux 4.4.0; host 6.1.0-18-amd64)",)
