"""Every report format says where it was made and of what (issue 12): host facts and matrix digest.

Real runs through the CLI (``landlock`` for a run, ``none`` and ``landlock`` for a
survey, two checks each), every format written, each checked against what this
host is (uname, euid, Landlock ABI, a user namespace made by unshare(1)) and the
digest of the selected matrix. With ``--anonymise-host`` the host name is in none
of the outputs and the same salted id is in all of them.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from jsonschema.validators import validator_for

from marks import requires_landlock
from sandboxcheck import __version__
from sandboxcheck.hostfacts import anonymous_id, host_line
from sandboxcheck.matrix.select import select
from sandboxcheck.model import Matrix, matrix_digest
from sandboxcheck.targets.tools import landlock_abi

pytestmark = [pytest.mark.integration, requires_landlock]

ONLY = ("fs.read.absolute", "env.own")
SALT = "report-host-facts-test"
HOST = os.uname().nodename
#: The host name as a whole word: a short name ("vm") must not match inside other words.
HOST_WORD = re.compile(rf"(?<![\w.-]){re.escape(HOST)}(?![\w-])")
RUN_FILES = {"json": "r.json", "junit": "r.xml", "sarif": "r.sarif", "markdown": "r.md"}
SURVEY_FORMATS = ("json", "table", "markdown", "html")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOXCHECK_") or k == "SANDBOXCHECK_TOOLS"}
    env.update(SANDBOXCHECK_HOST_SALT=SALT, COLUMNS="100")
    return env


def _sc(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    only = [a for cid in ONLY for a in ("--only", cid)]
    proc = subprocess.run([sys.executable, "-m", "sandboxcheck.cli", *args, *only], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr  # env.own fails through both targets: a real verdict
    return proc


def _run(folder: Path, anonymise: bool) -> dict[str, str]:
    folder.mkdir()
    reports = [a for fmt, name in RUN_FILES.items() for a in ("--report", f"{fmt}:{name}")]
    proc = _sc(folder, "run", "baseline", "--target", "landlock", "--format", "table", *reports,
               *(["--anonymise-host"] if anonymise else []))
    return {"table": proc.stdout, **{fmt: (folder / name).read_text() for fmt, name in RUN_FILES.items()}}


def _survey(folder: Path, anonymise: bool) -> dict[str, str]:
    folder.mkdir()
    out = {}
    for fmt in SURVEY_FORMATS:
        _sc(folder, "survey", "baseline", "-t", "none", "-t", "landlock", "-f", fmt, "-o", f"s.{fmt}",
            *(["--anonymise-host"] if anonymise else []))
        out[fmt] = (folder / f"s.{fmt}").read_text()
    return out


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], dict[str, str]]:
    """(kind, anonymised) -> format -> the text written."""
    tmp = tmp_path_factory.mktemp("facts")
    return {(kind, anon): make(tmp / f"{kind}-{anon}", anon)
            for kind, make in (("run", _run), ("survey", _survey)) for anon in (False, True)}


@pytest.fixture(scope="module")
def digest(baseline: Matrix) -> str:
    return matrix_digest(select(baseline, ONLY))


def _userns_here() -> bool | None:
    """Whether unshare(1) can make a user namespace here (None without unshare(1))."""
    tool = shutil.which("unshare")
    if tool is None:
        return None
    return subprocess.run([tool, "--user", "true"], capture_output=True, timeout=30).returncode == 0


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_json_facts_are_this_host(outputs: dict, digest: str) -> None:
    for kind in ("run", "survey"):
        data = json.loads(outputs[(kind, False)]["json"])
        host = data["host"]
        assert host["name"] == HOST and host["anonymised"] is False
        assert (host["kernel"], host["machine"]) == (os.uname().release, os.uname().machine)
        assert host["landlock_abi"] == landlock_abi() and host["root"] is (os.geteuid() == 0)
        assert host["sandboxcheck"] == __version__
        userns = _userns_here()
        if userns is not None:
            assert host["user_namespaces"]["available"] is userns
        assert data["matrix"]["digest"] == digest


def test_junit_properties_on_every_suite(outputs: dict, digest: str) -> None:
    root = ET.fromstring(outputs[("run", False)]["junit"])
    host = json.loads(outputs[("run", False)]["json"])["host"]
    suites = root.findall("testsuite")
    assert len(suites) == 2  # fs-read and env
    for suite in suites:
        assert [child.tag for child in suite][0] == "properties"  # before the testcases
        props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
        assert props["host.name"] == HOST and props["host.anonymised"] == "false"
        assert props["host.kernel"] == os.uname().release and props["host.machine"] == os.uname().machine
        assert props["host.os.id"] == host["os"]["id"]
        assert props["host.landlock_abi"] == str(landlock_abi())
        assert props["host.user_namespaces.available"] == str(host["user_namespaces"]["available"]).lower()
        assert props["host.root"] == ("true" if os.geteuid() == 0 else "false")
        assert props["host.sandboxcheck"] == __version__
        assert props["host.tools"] == ", ".join(host["tools"]) and "Landlock ABI" in props["host.tools"]
        assert props["matrix.digest"] == digest
        assert props["target"] == "landlock" and props["preflight.ran"] == "true"


def test_sarif_carries_the_facts_and_stays_valid(outputs: dict, digest: str, sarif_schema: dict) -> None:
    doc = json.loads(outputs[("run", False)]["sarif"])
    errors = list(validator_for(sarif_schema)(sarif_schema).iter_errors(doc))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors[:5]]
    props = doc["runs"][0]["invocations"][0]["properties"]
    assert props["host"] == json.loads(outputs[("run", False)]["json"])["host"]
    assert props["matrix"] == {"name": "baseline", "digest": digest}
    assert props["preflight"]["ran"] is True and props["target"]["name"] == "landlock"


@pytest.mark.parametrize("kind, formats", [("run", ("table", "markdown")), ("survey", SURVEY_FORMATS[1:])])
def test_people_formats_show_one_host_line(outputs: dict, digest: str, kind: str, formats: tuple) -> None:
    host = json.loads(outputs[(kind, False)]["json"])["host"]
    line = host_line(host, digest)
    short = digest.split(":")[1][:12]
    assert line.startswith(f"host {HOST}: ") and line.endswith(f"; matrix sha256:{short}")
    for part in (f"kernel {os.uname().release}", os.uname().machine, f"Landlock ABI {landlock_abi()}",
                 "userns " + ("yes" if host["user_namespaces"]["available"] else "no"),
                 "root" if os.geteuid() == 0 else "not root", f"sandboxcheck {__version__}"):
        assert part in line
    for fmt in formats:
        text = outputs[(kind, False)][fmt]
        # markdown escapes its markup characters; the table wraps to its width
        shown = _flat(text.replace("\\", ""))
        assert _flat(line) in shown, (fmt, line)
        assert shown.count(f"sha256:{short}") == 1, fmt  # one line, not repeated


@pytest.mark.parametrize("kind", ["run", "survey"])
def test_anonymised_outputs_never_name_the_host(outputs: dict, kind: str) -> None:
    named, anon = outputs[(kind, False)], outputs[(kind, True)]
    hid = anonymous_id(HOST, salt=SALT)
    assert all(HOST_WORD.search(text) for text in named.values())  # the search finds the name when it is there
    for fmt, text in anon.items():
        assert not HOST_WORD.search(text), (fmt, HOST_WORD.search(text))
        assert hid in text, fmt
    host: Any = json.loads(anon["json"])["host"]
    assert host["id"] == hid and host["anonymised"] is True and "name" not in host


def test_a_label_with_markup_stays_text(tmp_path: Path) -> None:
    """A fleet label with XML and markdown characters: JUnit still parses, markdown shows it as text."""
    label = 'ci <7> & "x" *y*\x01'
    env = {**_env(), "SANDBOXCHECK_HOST_LABEL": label}
    proc = subprocess.run([sys.executable, "-m", "sandboxcheck.cli", "run", "baseline", "--target", "landlock",
                           "--only", "fs.read.absolute", "--format", "markdown", "--report", "junit:r.xml"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    props = {p.get("name"): p.get("value") for p in ET.parse(tmp_path / "r.xml").iter("property")}
    assert props["host.label"] == label.replace("\x01", "") and props["host.name"] == HOST
    assert r'host ci \<7\> &amp; "x" \*y\*' in proc.stdout
