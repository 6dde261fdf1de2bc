"""Hostile or broken input never crashes (exit 4) or hangs the command line.

Every case builds its inputs in a temp folder (garbage bytes, other encodings,
deep nesting, alias bombs and loops, FIFOs, devices, /proc files, odd tags,
non-finite numbers, unusable output paths, incomplete target files) and runs
the CLI on them in a forked child, so a case that hangs is killed after
``HANG_GUARD`` seconds and fails instead of stalling the suite. Each must
exit 2 with a message naming the problem. A few well-formed neighbours of
the bad cases (merge keys, a UTF-8 BOM, CRLF) must still be accepted.
"""
from __future__ import annotations

import codecs
import json
import os
import random
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: Seconds a case may take before it counts as a hang (a generous bound, not a timing assertion).
HANG_GUARD = 20.0

#: One valid check in block style (cases add lines to it), one key a line.
GOOD_CHECK = "  - " + "\n    ".join(f"{key}: {value}" for key, value in {
    "id": "fs.read.absolute", "category": "fs-read", "title": "Read outside", "probe": "read_file",
    "args": '{path: "{outside}/secret.txt"}', "expect": "denied"}.items()) + "\n"
GOOD = "checks:\n" + GOOD_CHECK
REPORT = json.dumps({"schema_version": 1, "results": []})


def check_with(extra: str) -> str:
    """A matrix with one valid check plus ``extra`` lines inside the check."""
    return GOOD + "".join(f"    {line}\n" for line in extra.splitlines())


def garbage(seed: int, n: int = 4096) -> bytes:
    """Deterministic random bytes that are not UTF-8 (0xff never is)."""
    rnd = random.Random(seed)
    return b"\xff" + bytes(rnd.randrange(256) for _ in range(n))


def laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\nchecks: *l%d\n" % (levels - 1)


#: Special files a case may ask for instead of content.
FIFO, SOCKET, FOLDER, LOOP, DANGLING = "<fifo>", "<socket>", "<folder>", "<loop>", "<dangling>"


@dataclass(frozen=True)
class Case:
    """One command line: ``args`` may use ``{d}`` (the case's folder); ``files`` are created in it."""

    id: str
    args: tuple[str, ...]
    expect: str
    files: dict[str, bytes | str | Callable[[], bytes]] = field(default_factory=dict)
    code: int = 2


def _matrix_cases() -> list[Case]:
    def v(id: str, content: bytes | str | Callable[[], bytes], expect: str) -> Case:
        return Case(f"matrix-{id}", ("validate", "{d}/m.yaml"), expect, {"m.yaml": content})

    deep_block = "checks:\n" + "".join(" " * i + "-\n" for i in range(1, 1000))
    alias_depth = "".join(f"a{i}: &a{i} [*a{i - 1}]\n" if i else "a0: &a0 [x]\n" for i in range(150))
    return [
        v("binary-garbage", garbage(1), "not UTF-8 text (byte 0xff)"),
        v("binary-garbage-2", garbage(2, 100_000), "not UTF-8 text"),
        v("elf-header", b"\x7fELF\x02\x01\x01" + bytes(200), "NUL bytes"),
        v("utf16-bom", GOOD.encode("utf-16"), "is UTF-16 text: save it as UTF-8"),
        v("utf16-be-bom", codecs.BOM_UTF16_BE + GOOD.encode("utf-16-be"), "is UTF-16 text"),
        v("utf16-no-bom", GOOD.encode("utf-16-le"), "NUL bytes"),
        v("utf32-bom", GOOD.encode("utf-32"), "is UTF-32 text"),
        v("latin1", "checks:\n  - title: caf\xe9\n".encode("latin-1"), "m.yaml:2: not UTF-8 text (byte 0xe9)"),
        v("surrogate-bytes", b"checks:\n  - title: \xed\xa0\x80\n", "m.yaml:2: not UTF-8 text"),
        v("nul-inside", GOOD.replace("Read outside", "Read\0outside"), "m.yaml:4: contains NUL bytes"),
        v("control-char", GOOD.replace("Read outside", "Read\x07outside"), "m.yaml:4: invalid YAML"),
        v("deep-flow-5000", "checks: " + "[" * 5000 + "]" * 5000, "m.yaml:1: nested deeper than 100 levels"),
        v("deep-flow-map-5000", "checks: " + "{a: " * 5000 + "1" + "}" * 5000, "nested deeper than 100 levels"),
        v("deep-block-1000", deep_block, "nested deeper than 100 levels"),
        v("deep-in-args", check_with("argv: " + "[" * 3000 + "]" * 3000), "nested deeper than 100 levels"),
        v("deep-by-aliases", alias_depth, "nested deeper than 100 levels"),
        v("billion-laughs", laughs(), "alias bomb"),
        v("billion-laughs-maps", "a: &a {x: 1, y: 2, z: 3}\n" + "".join(
            f"b{i}: &b{i} {{p: *{'a' if i == 0 else f'b{i - 1}'}, q: *{'a' if i == 0 else f'b{i - 1}'}}}\n"
            for i in range(40)), "alias bomb"),
        v("alias-loop-seq", "a: &a [*a]\n", "m.yaml:1: alias *a refers to a value that contains it (a loop)"),
        v("alias-loop-map", "a: &a {b: *a}\n", "(a loop)"),
        v("alias-loop-checks", "checks: &c [*c]\n", "(a loop)"),
        v("alias-loop-indirect", "a: &a [&b [*a]]\n", "(a loop)"),
        v("alias-loop-merge", "a: &a {<<: *a}\n", "(a loop)"),
        v("undefined-alias", "checks: *nope\n", "m.yaml:1: alias *nope names no anchor before it"),
        v("merge-scalar", "checks:\n  - <<: 3\n    id: a.b\n",
          "'<<' merges a mapping or a list of mappings (got a scalar)"),
        v("merge-undefined", "checks:\n  - <<: *nope\n", "names no anchor"),
        v("merge-list-of-scalars", "x: &x [1, 2]\nchecks:\n  - <<: *x\n", "'<<' merges a mapping"),
        v("many-values", "checks: [" + ",".join(["1"] * 150_000) + "]\n", "holds more than 100000 values"),
        v("too-large", lambda: b"# filler\n" * 500_000, "is larger than 4 MiB"),
        v("timeout-nan", check_with("timeout: .nan"), "m.yaml:8: checks[0].timeout: .nan is not a finite number"),
        v("timeout-NaN", check_with("timeout: .NaN"), ".NaN is not a finite number"),
        v("timeout-inf", check_with("timeout: .inf"), ".inf is not a finite number"),
        v("timeout-minus-inf", check_with("timeout: -.inf"), "-.inf is not a finite number"),
        v("timeout-1e999", check_with("timeout: 1.0e+999"), "1.0e+999 is not a finite number"),
        v("timeout-1e999-no-dot", check_with("timeout: 1e999"), "'1e999' is not a number"),
        v("timeout-float-tag-nan", check_with("timeout: !!float nan"), "is not a finite number"),
        v("defaults-timeout-nan", "defaults: {timeout: .nan}\n" + GOOD, "defaults.timeout: .nan is not a finite"),
        v("timeout-huge-int", check_with("timeout: 1" + "0" * 4000), "is out of range"),
        v("timeout-5000-digits", check_with("timeout: 1" + "0" * 5000), "is not a number"),
        v("agent-settings-nan", check_with("agent: {settings: {x: .nan}}"), "is not a finite number"),
        v("python-object-apply", check_with('title: !!python/object/apply:os.system ["true"]'),
          "unsupported YAML tag !!python/object/apply:os.system"),
        v("python-name", check_with("title: !!python/name:os.system"), "unsupported YAML tag !!python/name"),
        v("python-object-map", "checks:\n  - !!python/object:os.Foo {a: 1}\n", "unsupported YAML tag !!python/object"),
        v("custom-tag", check_with("description: !shout hello"), "unsupported YAML tag !shout"),
        v("binary-tag", check_with("description: !!binary aGVsbG8="), "unsupported YAML tag !!binary"),
        v("set-tag", check_with("tags: !!set {a, b}"), "unsupported YAML tag !!set"),
        v("omap-tag", check_with("args: !!omap [path: x]"), "unsupported YAML tag !!omap"),
        v("key-is-list", "? [a, b]\n: 1\n" + GOOD, "a key must be plain text, not a list"),
        v("key-is-map", "? {a: 1}\n: 1\n" + GOOD, "a key must be plain text, not a mapping"),
        v("key-null", "~: 1\n" + GOOD, "unknown key"),
        v("key-int", check_with("1: x"), "checks[0].1: unknown key"),
        v("key-nan", ".nan: 1\n" + GOOD, "unknown key"),
        v("key-huge", "k" * 1_000_000 + ": 1\n" + GOOD, "m.yaml:1: invalid YAML"),
        v("key-huge-quoted", '? "' + "k" * 1_000_000 + '"\n: 1\n' + GOOD, "unknown key"),
        v("duplicate-via-alias-key", "checks:\n  - &k id: a.b\n    *k : c.d\n", "duplicate key 'id'"),
        v("two-documents", GOOD + "---\n" + GOOD, "more than one YAML document"),
        v("only-marker", "---\n", "a matrix is a mapping"),
        v("top-list", "- a\n- b\n", "a matrix is a mapping"),
        v("top-scalar", "hello\n", "a matrix is a mapping"),
        v("checks-scalar", "checks: 3\n", "checks: 3 is not a list"),
        v("checks-nulls", "checks: [~, ~]\n", "checks[0]: an empty value is not a mapping"),
        v("args-list", GOOD.replace('args: {path: "{outside}/secret.txt"}', "args: [a]"), "is not a mapping"),
        v("argv-map", check_with("argv: {a: 1}"), "is not a list"),
        v("evidence-list", check_with("evidence: [leak]"), "checks[0].evidence"),
        v("tab-indent", "checks:\n\t- id: x\n", "invalid YAML"),
        v("unterminated-quote", 'checks:\n  - title: "abc\n', "invalid YAML"),
        v("unterminated-flow", "checks: [\n", "invalid YAML"),
        v("cr-only-lines", GOOD.replace("\n", "\r") + "bogus: 1\r", "unknown key"),
        v("long-line", "description: " + "x" * 3_000_000 + "\nchecks: []\n", "the matrix has no checks"),
        v("int-id", GOOD.replace("id: fs.read.absolute", "id: 123"), "123 is not a string"),
        v("emoji-id", GOOD.replace("id: fs.read.absolute", "id: fs.read.\U0001f4a5"), "is not a valid check id"),
        v("expires-huge-year", GOOD + "waivers:\n  - {id: fs.read.absolute, reason: r, expires: 99999-01-01}\n",
          "is not a date"),
        v("duplicate-anchor-missing-checks", "a: &x 1\nb: &x 2\nc: *x\n", "missing required key 'checks'"),
        Case("matrix-fifo", ("validate", "{d}/m.yaml"), "a FIFO, not a matrix", {"m.yaml": FIFO}),
        Case("matrix-socket", ("validate", "{d}/m.yaml"), "cannot read", {"m.yaml": SOCKET}),
        Case("matrix-folder", ("validate", "{d}/m.yaml"), "a folder, not a matrix", {"m.yaml": FOLDER}),
        Case("matrix-symlink-loop", ("validate", "{d}/m.yaml"), "cannot read", {"m.yaml": LOOP}),
        Case("matrix-dangling-symlink", ("validate", "{d}/m.yaml"), "cannot read", {"m.yaml": DANGLING}),
        Case("matrix-dev-zero", ("validate", "/dev/zero"), "a character device, not a matrix"),
        Case("matrix-dev-urandom", ("validate", "/dev/urandom"), "a character device"),
        Case("matrix-dev-null", ("validate", "/dev/null"), "a character device"),
        Case("matrix-proc-self-status", ("validate", "/proc/self/status"), "/proc/self/status"),
        Case("matrix-empty-ref", ("validate", ""), "empty matrix reference"),
        Case("matrix-blank-ref", ("validate", "  "), "empty matrix reference"),
        Case("matrix-missing", ("validate", "{d}/absent.yaml"), "No such file or directory"),
        Case("matrix-one-bad-of-two", ("validate", "baseline", "{d}/m.yaml"), "a FIFO", {"m.yaml": FIFO}),
        # The same inputs through `run`: refused before anything runs.
        Case("run-matrix-fifo", ("run", "{d}/m.yaml", "--target", "none"), "a FIFO", {"m.yaml": FIFO}),
        Case("run-matrix-dev-zero", ("run", "/dev/zero", "--target", "none"), "a character device"),
        Case("run-matrix-timeout-nan", ("run", "{d}/m.yaml", "--target", "none"),
             "checks[0].timeout: .nan is not a finite number", {"m.yaml": check_with("timeout: .nan")}),
        Case("run-matrix-laughs", ("run", "{d}/m.yaml", "--target", "none"), "alias bomb", {"m.yaml": laughs()}),
        Case("run-matrix-loop", ("run", "{d}/m.yaml", "--target", "none"), "(a loop)", {"m.yaml": "a: &a [*a]\n"}),
        Case("run-matrix-empty-ref", ("run", "", "--target", "none"), "empty matrix reference"),
        Case("survey-matrix-empty-ref", ("survey", "", "--target", "none"), "empty matrix reference"),
        Case("compare-matrix-fifo", ("compare", "{d}/m.yaml", "--before", "none", "--after", "none"),
             "a FIFO", {"m.yaml": FIFO}),
    ]


def _target_cases() -> list[Case]:
    def t(id: str, content: bytes | str | Callable[[], bytes] | None, expect: str, ref: str = "{d}/t.yaml",
          extra: tuple[str, ...] = ()) -> Case:
        files = {"t.yaml": content} if content is not None else {}
        return Case(f"target-{id}", ("run", "baseline", "--target", ref, *extra), expect, files)

    cmd = "name: x\ncommand: [sh, -c, '\"$@\"', sh, '{cmd}']\n"
    return [
        t("empty-ref", None, "empty target reference", ref=""),
        t("blank-ref", None, "empty target reference", ref="  "),
        t("folder", None, "a folder, not a target file", ref="{d}"),
        t("dev-zero", None, "a character device, not a target file", ref="/dev/zero"),
        t("fifo", FIFO, "a FIFO, not a target file"),
        t("binary-garbage", garbage(3), "not UTF-8 text"),
        t("utf16", cmd.encode("utf-16"), "is UTF-16 text"),
        t("deep", "name: " + "[" * 5000 + "]" * 5000, "nested deeper than 100 levels"),
        t("laughs", laughs(), "alias bomb"),
        t("alias-loop", "name: x\nenv: &e {A: *e}\n", "(a loop)"),
        t("too-large", lambda: b"# x\n" * 1_200_000, "is larger than 4 MiB"),
        t("two-documents", cmd + "---\n" + cmd, "more than one YAML document"),
        t("invalid-yaml", "name: x\ncommand: [env\n", "cannot load target"),
        t("agent-only-name", "kind: agent\nname: a\n", "'requires' must name the program agent: claude-code"),
        t("agent-codex-only-name", "kind: agent\nname: a\nagent: codex\n", "'requires' must name the program agent: codex"),
        t("agent-requires-int", "kind: agent\nname: a\nrequires: 3\n", "'requires' must be a list"),
        t("agent-flags-unbalanced", "kind: agent\nname: a\nrequires: [claude]\nflags: \"--x 'oops\"\n",
          "flags: cannot split"),
        t("agent-settings-nan", "kind: agent\nname: a\nrequires: [claude]\nsettings: {x: .inf}\n",
          "is not a finite number"),
        t("agent-unknown-driver", "kind: agent\nname: a\nagent: gemini\n", "is not a known agent"),
        t("kind-unknown", "kind: container\nname: a\n", "kind: 'container' is not a kind of target"),
        t("kind-list", "kind: [agent]\nname: a\n", "is not a kind of target"),
        t("top-list", "- a\n", "a target is a mapping"),
        t("empty-file", "", "a target is a mapping"),
        t("python-object", "!!python/object/apply:os.system [true]\n", "unsupported YAML tag"),
        t("env-nested", cmd + "env: {A: {b: 1}}\n", "env: A: the value must be text"),
        t("options-nan", cmd + "options: {x: .nan}\n", "is not a finite number"),
        t("int-keys", "1: x\n" + cmd, "unknown key '1'"),
        t("command-ints", "name: x\ncommand: [1, 2]\n", "'command' must be a non-empty list of strings"),
        t("name-list", "name: [a]\ncommand: ['{cmd}']\n", "'name' must be a non-empty string"),
        t("requires-bad", cmd + "requires: [{name: 3}]\n", "is neither a name nor"),
        t("files-int", cmd + "files: {'{root}/x': 3}\n", "'files' must map paths"),
        t("install-int", cmd + "install: {npm: 3}\n", "'install' must be"),
        t("merge-bad", "<<: 1\n" + cmd, "'<<' merges a mapping"),
        t("symlink-loop", LOOP, "unknown target", ref="{d}/t.yaml"),
        t("inline-unbalanced-quote", None, "cannot split", ref="sh -c '{cmd_shell}"),
        t("inline-partial", None, "{cmd}", ref="echo {cmd"),
        t("pinned-empty-version", None, "", ref="none@"),
        t("pinned-unknown", None, "unknown target", ref="no-such-target@1.0"),
        t("opt-no-equals", None, "expected KEY=VALUE", ref="none", extra=("--target-opt", "oops")),
        t("opt-settings-dev-zero", None, "no such file", ref="srt-settings",
          extra=("--target-opt", "settings=/dev/zero")),
        t("opt-settings-fifo", FIFO, "no such file", ref="srt-settings",
          extra=("--target-opt", "settings={d}/t.yaml")),
        t("agent-opt-settings-fifo", FIFO, "--target-opt settings=", ref="claude-code",
          extra=("--target-opt", "settings={d}/t.yaml")),
        t("agent-opt-settings-dev-zero", None, "a character device", ref="claude-code",
          extra=("--target-opt", "settings=/dev/zero")),
        t("agent-opt-user-settings-folder", None, "a folder", ref="claude-code",
          extra=("--target-opt", "user_settings={d}")),
        t("agent-opt-config-fifo", FIFO, "--target-opt config=", ref="codex-agent",
          extra=("--target-opt", "config={d}/t.yaml")),
        t("agent-requires-list-of-ints", "kind: agent\nname: a\nrequires: [1]\n", "is neither a name nor"),
        t("opt-unknown", None, "takes no option", ref="none", extra=("--target-opt", "zzz=1")),
    ]


def _option_cases() -> list[Case]:
    run = ("run", "baseline", "--target", "none")
    report = {"a.json": REPORT, "b.json": REPORT}
    cases = [Case(f"timeout-{name}-{cmd}", (*argv, "--timeout", value), expect)
             for cmd, argv in (("run", run), ("survey", ("survey", "baseline", "--target", "none")),
                               ("compare", ("compare", "baseline", "--before", "none", "--after", "none")))
             for name, value, expect in (("nan", "nan", "is not a finite number"),
                                         ("NaN", "NaN", "is not a finite number"),
                                         ("minus-nan", "-nan", "is not a finite number"),
                                         ("inf", "inf", "0.1<=x<=600"),
                                         ("1e999", "1e999", "0.1<=x<=600"),
                                         ("text", "soon", "'soon' is not a valid number of seconds"))]
    cases += [
        Case("output-proc-version", (*run, "--output", "/proc/version"), "kernel or device file"),
        Case("output-proc-new", (*run, "--output", "/proc/sandboxcheck.json"), "cannot write"),
        Case("output-sys", (*run, "--output", "/sys/kernel/profiling"), "cannot write"),
        Case("output-dev-zero", (*run, "--output", "/dev/zero"), "a device, not a regular file"),
        Case("output-fifo", (*run, "--output", "{d}/out"), "a FIFO, not a regular file", {"out": FIFO}),
        Case("output-socket", (*run, "--output", "{d}/out"), "a socket", {"out": SOCKET}),
        Case("output-folder", (*run, "--output", "{d}"), "is a directory"),
        Case("output-missing-folder", (*run, "--output", "{d}/no/such/out.json"), "does not exist"),
        Case("output-empty", (*run, "--output", ""), "empty file name"),
        Case("output-dangling-into-proc", (*run, "--output", "{d}/out"), "cannot write", {"out": DANGLING}),
        Case("report-proc-version", (*run, "--report", "json:/proc/version"), "kernel or device file"),
        Case("report-fifo", (*run, "--report", "junit:{d}/out"), "a FIFO", {"out": FIFO}),
        Case("report-folder", (*run, "--report", "json:{d}"), "it is a folder"),
        Case("report-no-file", (*run, "--report", "json:"), "expected FORMAT:FILE"),
        Case("report-bad-format", (*run, "--report", "pdf:x.pdf"), "expected FORMAT:FILE"),
        Case("survey-output-proc", ("survey", "baseline", "--target", "none", "--output", "/proc/version"),
             "kernel or device file"),
        Case("survey-output-fifo", ("survey", "baseline", "--target", "none", "--output", "{d}/out"),
             "a FIFO", {"out": FIFO}),
        Case("compare-output-proc", ("compare", "baseline", "--before", "none", "--after", "none",
                                     "--output", "/proc/version"), "kernel or device file"),
        Case("compare-report-proc", ("compare", "baseline", "--before", "none", "--after", "none",
                                     "--report", "before:/proc/version"), "kernel or device file"),
        Case("diff-output-proc", ("diff", "{d}/a.json", "{d}/b.json", "--output", "/proc/version"),
             "kernel or device file", report),
        Case("diff-output-fifo", ("diff", "{d}/a.json", "{d}/b.json", "--output", "{d}/out"), "a FIFO",
             {**report, "out": FIFO}),
        Case("diff-before-dev-zero", ("diff", "/dev/zero", "{d}/b.json"), "a character device", report),
        Case("diff-before-fifo", ("diff", "{d}/f", "{d}/b.json"), "a FIFO", {**report, "f": FIFO}),
        Case("diff-before-garbage", ("diff", "{d}/g", "{d}/b.json"), "not UTF-8", {**report, "g": garbage(4)}),
        Case("diff-before-deep-json", ("diff", "{d}/g", "{d}/b.json"), "not a JSON report: nested too deeply",
             {**report, "g": "[" * 100_000 + "]" * 100_000}),
        Case("diff-before-not-report", ("diff", "{d}/g", "{d}/b.json"), "no 'results'", {**report, "g": "[]"}),
        Case("diff-before-nan-json", ("diff", "{d}/g", "{d}/b.json"), "no 'results'", {**report, "g": "NaN"}),
        Case("baseline-dev-zero", (*run, "--baseline", "/dev/zero"), "a character device"),
        Case("baseline-fifo", (*run, "--baseline", "{d}/f"), "a FIFO", {"f": FIFO}),
        Case("baseline-utf16", (*run, "--baseline", "{d}/f"), "UTF-16", {"f": REPORT.encode("utf-16")}),
        Case("jobs-zero", (*run, "--jobs", "0"), "1<=x<=64"),
        Case("format-bogus", (*run, "--format", "pdf"), "'pdf' is not one of"),
        Case("fail-on-bogus", ("diff", "{d}/a.json", "{d}/b.json", "--fail-on", "nope"), "unknown change kind",
             report),
    ]
    return cases


CASES = _matrix_cases() + _target_cases() + _option_cases()

#: Well-formed neighbours of the bad cases: accepted (validate exits 0).
GOOD_CASES = [
    Case("merge-key", ("validate", "{d}/m.yaml"), "ok (2 checks)", {"m.yaml": (
        "checks:\n"
        "  - &read {id: fs.read.a, category: fs-read, title: A, probe: read_file,\n"
        "           args: {path: \"{outside}/secret.txt\"}, expect: denied}\n"
        "  - <<: *read\n    id: fs.read.b\n    title: B\n")}, code=0),
    Case("merge-list", ("validate", "{d}/m.yaml"), "ok (1 checks)", {"m.yaml": (
        "defaults: {severity: low}\nchecks:\n"
        "  - <<: [{id: fs.read.a, title: A}, {id: ignored.first.wins, category: fs-read}]\n"
        "    probe: read_file\n    args: {path: \"{outside}/secret.txt\"}\n    expect: denied\n")}, code=0),
    Case("utf8-bom", ("validate", "{d}/m.yaml"), "ok (1 checks)", {"m.yaml": codecs.BOM_UTF8 + GOOD.encode()},
         code=0),
    Case("crlf", ("validate", "{d}/m.yaml"), "ok (1 checks)", {"m.yaml": GOOD.replace("\n", "\r\n")}, code=0),
    Case("anchors-and-aliases", ("validate", "{d}/m.yaml"), "ok (2 checks)",
         {"m.yaml": GOOD.replace('args: {path: "{outside}/secret.txt"}', 'args: &a {path: "{outside}/secret.txt"}')
          + GOOD_CHECK.replace("absolute", "again").replace('{path: "{outside}/secret.txt"}', "*a")}, code=0),
]


def materialize(case: Case, folder: Path) -> list[str]:
    """Create the case's files in ``folder``; the argv with ``{d}`` filled in."""
    for name, content in case.files.items():
        path = folder / name
        if content == FIFO:
            os.mkfifo(path)
        elif content == SOCKET:
            sock = socket.socket(socket.AF_UNIX)
            sock.bind(str(path))
            sock.close()  # the socket file stays; nobody listens
        elif content == FOLDER:
            path.mkdir()
        elif content == LOOP:
            path.symlink_to(path.name)
        elif content == DANGLING:
            path.symlink_to("/proc/no-such-entry/x")
        else:
            data = content() if callable(content) else content
            path.write_bytes(data.encode() if isinstance(data, str) else data)
    return [a.replace("{d}", str(folder)) for a in case.args]


def run_cli(argv: list[str], cwd: Path, timeout: float = HANG_GUARD) -> tuple[int | None, str]:
    """Exit code (None: killed as a hang) and stdout+stderr of ``sandboxcheck ARGV`` in a forked child.

    Forking the already-imported CLI costs milliseconds where a new
    interpreter costs half a second, and the child can still be killed.
    """
    from sandboxcheck.cli import entry

    out = tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 99
        try:
            os.setpgid(0, 0)
            os.chdir(cwd)
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.dup2(out.fileno(), 1)
            os.dup2(out.fileno(), 2)
            sys.stdin = open(0, closefd=False)
            sys.stdout = sys.stderr = open(1, "w", closefd=False)
            sys.argv = ["sandboxcheck", *argv]
            os.environ.pop("SANDBOXCHECK_DEBUG", None)
            try:
                entry()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            except BaseException as exc:  # noqa: BLE001 - reported through the exit code
                print(f"escaped: {type(exc).__name__}: {exc}")
                code = 98
            sys.stdout.flush()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    code: int | None = None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.01)
    out.seek(0)
    return code, out.read().decode("utf-8", "replace")


@pytest.fixture()
def case_dir() -> Path:
    # Short and private: unix socket paths are limited to 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="scbad-", dir="/tmp"))
    yield folder
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


def test_cases_have_unique_ids() -> None:
    ids = [c.id for c in CASES + GOOD_CASES]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 117  # at least as many as the issue tried


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_a_message(case: Case, case_dir: Path) -> None:
    code, output = run_cli(materialize(case, case_dir), case_dir)
    assert code is not None, f"hung for {HANG_GUARD}s: {output[-2000:]}"
    assert "Traceback" not in output and "internal error" not in output, output[-2000:]
    assert code == case.code, output[-2000:]
    assert case.expect in output, output[-2000:]


@pytest.mark.parametrize("case", GOOD_CASES, ids=[c.id for c in GOOD_CASES])
def test_well_formed_neighbours_are_accepted(case: Case, case_dir: Path) -> None:
    code, output = run_cli(materialize(case, case_dir), case_dir)
    assert (code, case.expect in output) == (case.code, True), output[-2000:]


# --- suites (read by the pytest plugin) and a little fuzzing, in process -------------

SUITE_CASES = [
    ("alias-loop", "matrices: &m [*m]\n", "(a loop)"),
    ("deep", "matrices: " + "[" * 5000 + "]" * 5000 + "\n", "nested deeper than 100 levels"),
    ("laughs", laughs(), "alias bomb"),
    ("timeout-nan", "matrices: [baseline]\ntargets: [none]\noptions: {timeout: .nan}\n",
     "s.sandboxcheck.yaml:3: options.timeout: .nan is not a finite number"),
    ("utf16", "matrices: [baseline]\n".encode("utf-16"), "is UTF-16 text"),
    ("python-tag", "matrices: !!python/object/apply:os.system [true]\n", "unsupported YAML tag"),
    ("fifo", FIFO, "a FIFO, not a suite"),
    ("target-fifo", "matrices: [baseline]\ntargets: [t.yaml]\n", "a FIFO, not a target file"),
]


@pytest.mark.parametrize("name,content,expect", SUITE_CASES, ids=[c[0] for c in SUITE_CASES])
def test_bad_suite_is_a_suite_error(name: str, content: bytes | str, expect: str, case_dir: Path) -> None:
    from sandboxcheck.matrix.suite import SuiteError, load_suite

    files = {"s.sandboxcheck.yaml": content}
    if name == "target-fifo":
        files["t.yaml"] = FIFO
    materialize(Case(name, (), "", files), case_dir)
    with pytest.raises(SuiteError) as info:
        load_suite(case_dir / "s.sandboxcheck.yaml")
    assert expect in str(info.value)


#: Characters that steer YAML: a mutation made of them reaches the odd corners of the loader.
_YAML_BITS = ["*", "&a ", "*a", "!!python/object ", "<<: ", "{", "}", "[", "]", ": ", "- ", "? ", "|", ">",
              "'", '"', "\t", "\n", "---\n", ".nan", "~", "%YAML 1.1\n", "!", "#", "\0", "\x85", "\ufeff"]


@pytest.mark.parametrize("seed", range(20))
def test_fuzzed_matrix_is_a_matrix_error_or_a_matrix(seed: int) -> None:
    from sandboxcheck.matrix.load import MatrixError, parse_matrix
    from sandboxcheck.resources import matrices_dir

    text = (matrices_dir() / "baseline.yaml").read_text(encoding="utf-8")
    rnd = random.Random(seed)
    for _ in range(25):
        for _ in range(rnd.randrange(1, 4)):
            at = rnd.randrange(len(text))
            cut = rnd.randrange(0, 3)
            text = text[:at] + rnd.choice(_YAML_BITS) + text[at + cut:]
        try:
            parse_matrix(text, "fuzz.yaml")
        except MatrixError as exc:
            assert exc.problems and all(p.file == "fuzz.yaml" for p in exc.problems)
