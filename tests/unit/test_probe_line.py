"""parse_probe_line: finding the probe's JSON report in a target's stdout."""
from __future__ import annotations

import json

import pytest

from sandboxcheck.model import ProbeReport
from sandboxcheck.probes import PROBE_PREFIX, parse_probe_line

GOOD = {"probe": "read_file", "action": "open", "attempted": True, "ok": False,
        "errno": "EACCES", "message": "Permission denied", "path": "/o/secret.txt", "bytes": 0}


def line(rec: object) -> str:
    return PROBE_PREFIX + json.dumps(rec)


def test_prefix_is_the_documented_one() -> None:
    assert PROBE_PREFIX == "SANDBOXCHECK-PROBE "


def test_good_line_is_parsed_with_extra_fields_in_data() -> None:
    r = parse_probe_line("some output\n" + line(GOOD) + "\nmore output\n")
    assert r == ProbeReport(probe="read_file", action="open", attempted=True, ok=False,
                            errno="EACCES", message="Permission denied",
                            data={"path": "/o/secret.txt", "bytes": 0})


def test_successful_report() -> None:
    r = parse_probe_line(line({"probe": "hello", "action": "print", "attempted": True,
                               "ok": True, "errno": None, "message": ""}))
    assert r is not None
    assert (r.probe, r.action, r.attempted, r.ok, r.errno, r.data) == (
        "hello", "print", True, True, None, {})


@pytest.mark.parametrize("stdout", [
    "",
    "\n\n",
    "hello\nworld\n",
    "SANDBOXCHECK-PROBE",                      # prefix without its space and JSON
    "SANDBOXCHECK-PROBE not json at all",
    "SANDBOXCHECK-PROBE {\"probe\": \"read_file\"",   # truncated JSON
    "SANDBOXCHECK-PROBE [1, 2, 3]",            # JSON, but not an object
    "SANDBOXCHECK-PROBE \"a string\"",
    "SANDBOXCHECK-PROBE null",
    "sandboxcheck-probe " + json.dumps(GOOD),  # the prefix is case-sensitive
    "SANDBOXCHECK-PROBE" + json.dumps(GOOD),   # prefix needs its trailing space
])
def test_missing_or_garbage_gives_none(stdout: str) -> None:
    assert parse_probe_line(stdout) is None


def test_garbage_line_is_skipped_for_a_later_good_one() -> None:
    stdout = "SANDBOXCHECK-PROBE {broken\n" + PROBE_PREFIX + "[1]\n" + line(GOOD) + "\n"
    r = parse_probe_line(stdout)
    assert r is not None and r.errno == "EACCES" and r.action == "open"


def test_first_good_line_wins() -> None:
    second = dict(GOOD, action="second", errno="EPERM")
    r = parse_probe_line(line(GOOD) + "\n" + line(second) + "\n")
    assert r is not None and (r.action, r.errno) == ("open", "EACCES")


def test_prefix_in_the_middle_of_a_line_is_found() -> None:
    # Output without a trailing newline runs into the report's line.
    r = parse_probe_line("partial output without newline" + line(GOOD) + "\n")
    assert r is not None
    assert (r.probe, r.errno) == ("read_file", "EACCES")


def test_crlf_and_trailing_spaces_are_tolerated() -> None:
    r = parse_probe_line("x\r\n" + line(GOOD) + "   \r\n")
    assert r is not None and r.errno == "EACCES"


def test_missing_fields_get_safe_defaults() -> None:
    r = parse_probe_line(PROBE_PREFIX + "{}")
    assert r == ProbeReport(probe="", action="", attempted=False, ok=False, errno=None,
                            message="", data={})


def test_known_fields_never_land_in_data() -> None:
    r = parse_probe_line(line(GOOD))
    assert r is not None
    assert set(r.data) == {"path", "bytes"}


def test_errno_number_and_precondition_are_parsed_and_bounded() -> None:
    r = parse_probe_line(line({"probe": "read_file", "action": "read x", "attempted": False, "ok": False,
                               "errno": "EROFS", "errno_number": 30, "message": "",
                               "precondition": "symlink " + "l" * 1000}))
    assert r is not None and (r.errno_number, r.attempted, r.data) == (30, False, {})
    assert r.precondition is not None and len(r.precondition) == 300 and r.precondition.startswith("symlink l")
    # A forged report cannot pass a non-number as the errno's number.
    for bad in ("13", True, 1.5, None):
        forged = parse_probe_line(line(dict(GOOD, errno_number=bad)))
        assert forged is not None and forged.errno_number is None
