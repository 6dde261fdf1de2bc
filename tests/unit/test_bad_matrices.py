"""Every invalid matrix in tests/bad_matrices/ is rejected with exactly the messages it declares.

Each file starts with one or more ``# error: <line>`` comments: the full
``str(problem)`` lines the loader must report, with the file's path written as
``{file}``. The set must match exactly, so a missing, extra or reworded
message fails the test.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from sandboxcheck.matrix import load as matrix_mod
from sandboxcheck.matrix.load import MatrixError, Problem, load_matrix, parse_matrix
from sandboxcheck.safeyaml import format_path
from sandboxcheck.model import CATEGORIES, EXPECTS, SEVERITIES
from sandboxcheck.probes import PROBES
from sandboxcheck.resources import matrices_dir, schema_path

BAD_DIR = Path(__file__).resolve().parents[1] / "bad_matrices"
BAD_FILES = sorted(BAD_DIR.glob("*.yaml"))
ERROR_PREFIX = "# error: "


def expected_lines(path: Path) -> list[str]:
    """The ``# error:`` lines at the top of ``path``, with {file} substituted."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith(ERROR_PREFIX):
            break
        out.append(line[len(ERROR_PREFIX):].replace("{file}", str(path)))
    return out


def test_bad_matrix_folder_is_populated() -> None:
    # Guards against the parametrized test silently running over nothing.
    assert len(BAD_FILES) >= 15
    for path in BAD_FILES:
        assert expected_lines(path), f"{path.name} declares no '# error:' line"


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_matrix_reports_exactly_its_declared_problems(path: Path) -> None:
    expected = expected_lines(path)
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    got = [str(p) for p in info.value.problems]
    assert set(got) == set(expected)
    # No duplicates hiding behind the set comparison.
    assert len(got) == len(expected)
    # The exception text is every problem, one a line.
    assert str(info.value).splitlines() == got
    for p in info.value.problems:
        assert p.file == str(path)


def test_several_problems_are_reported_together_in_line_order() -> None:
    path = BAD_DIR / "several_problems.yaml"
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    problems = info.value.problems
    assert len(problems) >= 5
    assert [p.line for p in problems] == sorted(p.line for p in problems)
    # Schema problems and semantic problems arrive in one error.
    messages = " | ".join(p.message for p in problems)
    assert "is not one of: allowed, denied" in messages
    assert "duplicate id" in messages
    assert "unknown placeholder {outsde}" in messages


# --- loader edge cases not worth a file of their own ------------------------

def test_truly_empty_text_is_the_empty_matrix() -> None:
    for text in ("", "\n\n", "# only a comment\n"):
        with pytest.raises(MatrixError) as info:
            parse_matrix(text, "m.yaml")
        assert [str(p) for p in info.value.problems] == ["m.yaml: the matrix is empty"]


def test_missing_file_reports_cannot_read(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(MatrixError) as info:
        load_matrix(missing)
    assert [str(p) for p in info.value.problems] == [
        f"{missing}: cannot read: No such file or directory"]


def test_problem_str_formats() -> None:
    assert str(Problem("f.yaml", 3, "checks[0].id", "bad")) == "f.yaml:3: checks[0].id: bad"
    assert str(Problem("f.yaml", 3, "", "bad")) == "f.yaml:3: bad"
    assert str(Problem("f.yaml", 0, "", "bad")) == "f.yaml: bad"
    assert str(Problem("f.yaml", 0, "checks", "bad")) == "f.yaml: checks: bad"


def test_format_path() -> None:
    assert format_path(("checks", 3, "expect")) == "checks[3].expect"
    assert format_path(("checks",)) == "checks"
    assert format_path(("checks", 0, "args", "path")) == "checks[0].args.path"
    assert format_path(()) == ""


GOOD = """\
name: tiny
defaults:
  timeout: 4
  severity: low
  tags: [base]
checks:
  - id: fs.read.absolute
    category: fs-read
    title: Read outside
    probe: read_file
    args: {path: "{outside}/secret.txt"}
    expect: denied
    tags: [extra, base]

  - id: exec.shell
    category: exec
    title: Spawn a shell
    probe: spawn
    argv: [/bin/sh, -c, "printf '%s-%s' RAN {token}"]
    evidence: {kind: marker, marker: "RAN-{token}"}
    expect: allowed
    severity: high
    timeout: 2.5
    no_control: nothing to compare with
"""


def test_good_matrix_builds_checks_with_defaults_lines_and_argv() -> None:
    m = parse_matrix(GOOD, "good.yaml")
    assert m.name == "tiny"
    a, b = m.checks
    assert (a.id, a.severity, a.timeout, a.tags) == ("fs.read.absolute", "low", 4.0, ("base", "extra"))
    assert dict(a.args) == {"path": "{outside}/secret.txt"}
    assert a.evidence.kind == "leak"
    assert (a.control, a.control_reason) == (True, None)
    assert (a.source, a.line) == ("good.yaml", 7)
    assert (b.severity, b.timeout) == ("high", 2.5)
    assert dict(b.args) == {"--": ("/bin/sh", "-c", "printf '%s-%s' RAN {token}")}
    assert b.evidence.kind == "marker" and b.evidence.marker == "RAN-{token}"
    assert (b.control, b.control_reason) == (False, "nothing to compare with")
    assert (b.line, b.end_line) == (15, 24)  # the last check ends on its last line


def test_check_line_ranges_do_not_overlap() -> None:
    a, b = parse_matrix(GOOD, "good.yaml").checks
    assert a.end_line < b.line
    assert a.end_line in (13, 14)  # last content line, or the blank line after it


def test_matrix_name_defaults_to_file_stem() -> None:
    text = GOOD.replace("name: tiny\n", "")
    assert parse_matrix(text, "dir/my-matrix.yaml").name == "my-matrix"


def test_evidence_string_keeps_probe_default_sink_only_for_same_kind() -> None:
    text = """\
checks:
  - id: network.tcp
    category: network
    title: tcp
    probe: tcp_send
    args: {port: "{tcp_port}", payload: "x {token}"}
    evidence: sink
    expect: denied
"""
    (c,) = parse_matrix(text, "m").checks
    assert (c.evidence.kind, c.evidence.sink) == ("sink", "tcp")


@pytest.mark.parametrize("value", ["[read_file]", "{name: read_file}"])
def test_non_string_probe_is_a_problem_not_a_crash(value: str) -> None:
    text = f"""\
checks:
  - id: fs.read.absolute
    category: fs-read
    title: Read outside
    probe: {value}
    args: {{path: "{{outside}}/secret.txt"}}
    expect: denied
"""
    with pytest.raises(MatrixError) as info:
        parse_matrix(text, "m")
    assert [p.where for p in info.value.problems] == ["checks[0].probe"]


# --- bundled matrices and the published schema ------------------------------

BUNDLED = sorted(matrices_dir().glob("*.yaml"))


def test_there_is_a_bundled_baseline() -> None:
    assert "baseline" in [p.stem for p in BUNDLED]


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_matrix_loads_cleanly_with_unique_ids(path: Path) -> None:
    m = load_matrix(path)  # raises MatrixError listing problems otherwise
    ids = [c.id for c in m.checks]
    assert ids, "a bundled matrix with no checks"
    assert len(ids) == len(set(ids))
    for c in m.checks:
        assert c.category in CATEGORIES
        assert c.probe in PROBES
        assert c.expect in EXPECTS
        assert c.severity in SEVERITIES
        assert c.line > 0 and c.end_line >= c.line


def _schema() -> dict:
    return json.loads(schema_path("matrix").read_text(encoding="utf-8"))


def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)  # raises SchemaError when invalid


def test_schema_is_the_one_the_loader_uses() -> None:
    assert matrix_mod._validator().schema == _schema()


def test_schema_probes_match_the_probe_catalogue() -> None:
    probes = _schema()["$defs"]["check"]["properties"]["probe"]["enum"]
    assert len(probes) == len(set(probes))
    assert set(probes) == set(PROBES)


def test_schema_categories_match_the_model() -> None:
    cats = _schema()["$defs"]["check"]["properties"]["category"]["enum"]
    assert len(cats) == len(set(cats))
    assert set(cats) == set(CATEGORIES)


def test_schema_expects_and_severities_match_the_model() -> None:
    schema = _schema()
    check = schema["$defs"]["check"]["properties"]
    assert set(check["expect"]["enum"]) == set(EXPECTS)
    assert set(check["severity"]["enum"]) == set(SEVERITIES)
    assert set(schema["properties"]["defaults"]["properties"]["severity"]["enum"]) == set(SEVERITIES)


def test_probe_default_evidence_is_allowed_by_the_schema() -> None:
    evidence = _schema()["$defs"]["check"]["properties"]["evidence"]["oneOf"]
    kinds = set(evidence[0]["enum"])
    assert set(evidence[1]["properties"]["kind"]["enum"]) == kinds
    sinks = set(evidence[1]["properties"]["sink"]["enum"])
    for spec in PROBES.values():
        assert spec.evidence.kind in kinds, spec.name
        if spec.evidence.sink:
            assert spec.evidence.sink in sinks, spec.name


def test_sink_hint_in_message_lists_the_schema_sinks() -> None:
    text = """\
checks:
  - id: ipc.sock
    category: ipc
    title: unix socket
    probe: unix_send
    args: {path: "{run}/x.sock", payload: "x"}
    evidence: {kind: sink}
    expect: denied
"""
    with pytest.raises(MatrixError) as info:
        parse_matrix(text, "m")
    (problem,) = info.value.problems
    sinks = _schema()["$defs"]["check"]["properties"]["evidence"]["oneOf"][1]["properties"]["sink"]["enum"]
    assert problem.message == f"sink evidence needs 'sink' ({', '.join(sinks)})"


# --- evidence labels: the ones a root really carries ------------------------

def _seeded_labels(root_path: Path) -> set[str]:
    """Every canary label found in a freshly seeded root: file names, file contents, environment."""
    from sandboxcheck.run.workspace import seed

    token = "0123456789abcdef"
    root = seed(root_path, token)
    try:
        pattern = re.compile(rf"SCNRY-{token}-([a-z0-9_-]+)")
        found = set()
        for path in root_path.rglob("*"):
            found.update(pattern.findall(path.name))
            if path.is_file() and not path.is_symlink():
                found.update(pattern.findall(path.read_bytes().decode("utf-8", "replace")))
        for value in root.env_canaries.values():
            found.update(pattern.findall(value))
        return found
    finally:
        root.close()


def test_labels_are_exactly_what_a_seeded_root_carries_plus_the_witness(tmp_path: Path) -> None:
    from sandboxcheck.labels import LABELS

    seeded = _seeded_labels(tmp_path)
    assert {"outside-file", "ssh-key", "tar", "listing", "env-github_token"} <= seeded
    assert "bashrc" not in seeded and "gitconfig" not in seeded  # seeded files without a canary
    assert set(LABELS) == seeded | {"witness"}  # the witness's canary is the runner's, per check


def test_labels_match_what_the_runner_names_in_evidence() -> None:
    from sandboxcheck.evidence import leak as runner
    from sandboxcheck.labels import LABELS

    non_env = {label for label in LABELS if not label.startswith("env-")}
    assert non_env <= set(runner._LABELS)
    for label in non_env:
        if label in runner._LABELS and runner._LABELS[label].startswith("~/"):
            assert LABELS[label] == runner._LABELS[label]


def test_every_label_of_the_bundled_matrices_is_known() -> None:
    from sandboxcheck.labels import LABELS

    used = {label for path in BUNDLED for c in load_matrix(path).checks for label in c.evidence.labels}
    assert used and used <= set(LABELS)


@pytest.mark.parametrize("word, close", [
    ("outside-secret", "outside-file"),  # named after the file (outside/secret.txt)
    ("secret", "outside-file"),
    ("id_ed25519", "ssh-key"),
    ("ssh", "ssh-key"),
    ("env-GITHUB_TOKEN", "env-github_token"),
    ("witnes", "witness"),
    ("bashrc", None),  # ~/.bashrc carries no canary
    ("zzzz", None),
])
def test_label_suggestion(word: str, close: str | None) -> None:
    from sandboxcheck.labels import suggest

    assert suggest(word) == close


def test_an_unknown_label_without_a_close_one_lists_the_known_ones() -> None:
    from sandboxcheck.labels import LABELS

    text = """\
checks:
  - id: fs.read.x
    category: fs-read
    title: read
    probe: read_file
    args: {path: "{outside}/secret.txt"}
    evidence: {kind: leak, labels: [zzzz]}
    expect: denied
"""
    with pytest.raises(MatrixError) as info:
        parse_matrix(text, "m")
    (problem,) = info.value.problems
    assert str(problem) == ("m:7: checks[0].evidence.labels[0]: 'zzzz' is not a label the workspace seeds; "
                            f"known: {', '.join(LABELS)}")


def test_readme_label_table_lists_every_label() -> None:
    from sandboxcheck.labels import LABELS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme.split("| label | the dummy secret that carries it |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9_-]+)` \| (.+?) \|$", table, re.M)
    assert [label for label, _ in rows] == list(LABELS)


def test_schema_evidence_kinds_match_the_model() -> None:
    from sandboxcheck.model import EVIDENCE_KINDS

    evidence = _schema()["$defs"]["check"]["properties"]["evidence"]["oneOf"]
    assert list(evidence[0]["enum"]) == list(EVIDENCE_KINDS)
