"""Host facts and the matrix digest."""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from sandboxcheck import hostfacts
from sandboxcheck.hostfacts import anonymised, anonymous_id, host_facts, host_key, matrix_digest, os_release
from sandboxcheck.model import Matrix
from sandboxcheck.targets.tools import landlock_abi
from sandboxcheck.targets.registry import load_target


def test_digest_ignores_where_the_matrix_lies(baseline: Matrix) -> None:
    moved = dataclasses.replace(baseline, path="/elsewhere/baseline.yaml",
                                checks=tuple(dataclasses.replace(c, source="x.yaml", line=c.line + 5, end_line=0)
                                             for c in baseline.checks))
    assert matrix_digest(moved) == matrix_digest(baseline)
    assert matrix_digest(baseline).startswith("sha256:") and len(matrix_digest(baseline)) == 7 + 64


def test_digest_changes_with_content(baseline: Matrix) -> None:
    first = baseline.checks[0]
    other = dataclasses.replace(baseline, checks=(dataclasses.replace(first, expect="allowed"), *baseline.checks[1:]))
    fewer = dataclasses.replace(baseline, checks=baseline.checks[1:])
    renamed = dataclasses.replace(baseline, name="other")
    digests = {matrix_digest(m) for m in (baseline, other, fewer, renamed)}
    assert len(digests) == 4


def test_os_release_reads_the_three_fields(tmp_path: Path) -> None:
    f = tmp_path / "os-release"
    f.write_text('NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
                 'VERSION_ID="12"\n# comment\nHOME_URL="https://www.debian.org/"\n')
    assert os_release(str(f)) == {"pretty_name": "Debian GNU/Linux 12 (bookworm)", "id": "debian",
                                  "version_id": "12"}
    assert os_release(str(tmp_path / "missing")) == {}


def test_anonymous_id_is_stable_salted_and_hides_the_name() -> None:
    a = anonymous_id("build-07.example.org", salt="s1")
    assert a == anonymous_id("build-07.example.org", salt="s1")
    assert a != anonymous_id("build-07.example.org", salt="s2")
    assert a != anonymous_id("build-08.example.org", salt="s1")
    assert "build" not in a and a.startswith("host-")


def test_host_facts_describe_this_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(hostfacts.LABEL_ENV, raising=False)
    facts = host_facts([load_target("landlock")])
    uname = os.uname()
    assert facts["name"] == uname.nodename and facts["kernel"] == uname.release
    assert facts["machine"] == uname.machine and facts["root"] == (os.geteuid() == 0)
    assert facts["landlock_abi"] == landlock_abi()
    assert isinstance(facts["user_namespaces"]["available"], bool)
    if landlock_abi():
        assert f"Landlock ABI {landlock_abi()}" in facts["tools"]
    assert host_key(facts) == uname.nodename
    json.dumps(facts)  # JSON-ready


def test_anonymised_facts_never_hold_the_name() -> None:
    facts = host_facts(anonymise=True)
    assert "name" not in facts and facts["anonymised"] is True
    assert os.uname().nodename not in json.dumps(facts)
    again = anonymised(host_facts())
    assert again["id"] == facts["id"] and "name" not in again


def test_label_names_the_host_in_a_fleet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hostfacts.LABEL_ENV, "ubuntu-24.04")
    facts = host_facts(anonymise=True)
    assert facts["label"] == "ubuntu-24.04" and host_key(facts) == "ubuntu-24.04"
