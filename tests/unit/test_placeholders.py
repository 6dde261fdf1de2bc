"""Placeholder expansion: ``{name}`` values, ``{{name}}`` escapes, unknown names."""
from __future__ import annotations

import pytest

from sandboxcheck.targets.agents.spec import STEP_PLACEHOLDERS
from sandboxcheck.placeholders import (
    MATRIX_PLACEHOLDERS,
    TARGET_PLACEHOLDERS,
    PlaceholderError,
    expand,
    names,
)
from sandboxcheck.resources import matrices_dir, presets_dir

VALUES = {"workspace": "/w", "outside": "/o", "token": "T0K", "tcp_port": "4242"}


@pytest.mark.parametrize("template, expected", [
    ("{workspace}", "/w"),
    ("{outside}/secret.txt", "/o/secret.txt"),
    ("{workspace}/{token}-{token}", "/w/T0K-T0K"),
    ("port={tcp_port}", "port=4242"),
    ("no placeholders at all", "no placeholders at all"),
    ("", ""),
])
def test_expand_known_names(template: str, expected: str) -> None:
    assert expand(template, VALUES) == expected


def test_expand_converts_values_with_str() -> None:
    assert expand("{tcp_port}", {"tcp_port": 8080}) == "8080"  # type: ignore[dict-item]


def test_unknown_name_raises_with_the_name() -> None:
    with pytest.raises(PlaceholderError, match=r"^unknown placeholder \{nope\}$"):
        expand("{workspace}/{nope}", VALUES)


def test_placeholder_error_is_a_value_error() -> None:
    assert issubclass(PlaceholderError, ValueError)


def test_a_known_name_with_no_value_is_unknown_to_expand() -> None:
    # MATRIX_PLACEHOLDERS says what may be written; expand only knows what it is given.
    assert "home" in MATRIX_PLACEHOLDERS
    with pytest.raises(PlaceholderError, match=r"\{home\}"):
        expand("{home}", VALUES)


@pytest.mark.parametrize("template, expected", [
    ("{{", "{{"),                              # only {{name}} is an escape
    ("}}", "}}"),
    ("{{workspace}}", "{workspace}"),          # escaped: not expanded
    ('{"k": "{token}"}', '{"k": "T0K"}'),     # JSON in a template needs no escaping
    ("a {{ b }} c", "a {{ b }} c"),
])
def test_double_braces_are_escapes(template: str, expected: str) -> None:
    assert expand(template, VALUES) == expected


def test_escaped_name_is_not_checked_as_unknown() -> None:
    assert expand("{{nope}}", {}) == "{nope}"


@pytest.mark.parametrize("template", [
    "{", "}", "{}", "a { b", '{"sandbox": {"enabled": false}, "x": 1}', "{Outside}", "{tcp-port}", "{x1}",
])
def test_text_that_is_not_a_placeholder_is_left_alone(template: str) -> None:
    # Only {lowercase_name} is a placeholder; lone braces and JSON pass through untouched.
    assert expand(template, {}) == template
    assert names(template) == set()


def test_nested_json_is_left_intact() -> None:
    assert expand('{"a": {"b": 1}}', {}) == '{"a": {"b": 1}}'
    assert expand('{"a": {"b": "{token}"}}', VALUES) == '{"a": {"b": "T0K"}}'


def test_expansion_is_a_single_pass() -> None:
    # A value containing braces is not expanded again.
    assert expand("{token}", {"token": "{workspace}", "workspace": "/w"}) == "{workspace}"


def test_names() -> None:
    assert names("{workspace}/{token}/{token}") == {"workspace", "token"}
    assert names("{{workspace}} {outside}") == {"outside"}
    assert names("plain") == set()
    assert names('{"note": "{token}"}') == {"token"}


def test_target_placeholders_include_the_command_slots() -> None:
    assert {"cmd", "cmd_shell"} <= TARGET_PLACEHOLDERS
    assert "token" not in TARGET_PLACEHOLDERS  # the canary never reaches a target's command line
    assert "cmd" not in MATRIX_PLACEHOLDERS


def test_bundled_files_use_only_declared_placeholders() -> None:
    for path in matrices_dir().glob("*.yaml"):
        used = names(path.read_text())
        assert used, path
        # {cmd} only appears in agent steps (the matrix loader checks where).
        assert used <= MATRIX_PLACEHOLDERS | STEP_PLACEHOLDERS, (path, used - MATRIX_PLACEHOLDERS)
    for path in presets_dir().glob("*.yaml"):
        used = names(path.read_text())
        assert used <= TARGET_PLACEHOLDERS, (path, used - TARGET_PLACEHOLDERS)

