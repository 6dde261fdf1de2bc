"""A matrix that validated clean is not validated again by another process; a bad one always is."""
from __future__ import annotations

from pathlib import Path

import pytest

from sandboxcheck.matrix import lines, load
from sandboxcheck.matrix.lines import MatrixError

GOOD = """\
checks:
  - id: fs.read.cached
    category: fs-read
    title: Read a file outside
    probe: read_file
    args: {path: "{outside}/secret.txt"}
    expect: denied
"""


@pytest.fixture()
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "schema-checked"
    monkeypatch.setattr(lines, "_valid_folder", lambda: folder)
    return folder


def test_a_clean_matrix_skips_the_validator_the_second_time(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load.parse_matrix(GOOD, "m.yaml").checks[0].id == "fs.read.cached"
    assert (state / "valid.json").is_file()

    def no_validator():  # noqa: ANN202
        raise AssertionError("validated again")

    monkeypatch.setattr(load, "_validator", no_validator)
    assert load.parse_matrix(GOOD, "m.yaml").checks[0].id == "fs.read.cached"
    # Any change to the document is validated afresh.
    with pytest.raises(AssertionError, match="validated again"):
        load.parse_matrix(GOOD.replace("denied", "allowed"), "m.yaml")


def test_a_bad_matrix_is_reported_every_time(state: Path) -> None:
    bad = GOOD.replace("expect: denied", "expect: maybe")
    for _ in range(2):
        with pytest.raises(MatrixError, match="expect"):
            load.parse_matrix(bad, "m.yaml")
    assert not (state / "valid.json").exists()
