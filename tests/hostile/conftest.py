"""Fixtures of the hostile-target suite: a scratch world per test, cleaned up whatever happened.

Each test gets a ``Scene`` (see ``hostile_kit``): a TMPDIR of its own (mode
1777) for the harness, decoy "host files" the attacks aim at, a folder where
attacks write what they found, and a marker string carried in the argv of
every attack process. Cleanup kills leftover processes carrying that marker
(by pid, nothing else), unmounts bind mounts under the scratch folder, clears
immutable flags and removes the scratch folder.
"""
from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hostile_kit import Scene


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here + os.sep):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def scene() -> Iterator[Scene]:
    if os.geteuid() != 0:
        pytest.skip("the hostile suite attacks a root-run harness: run it as root (CI does)")
    s = Scene()
    try:
        yield s
    finally:
        notes = s.cleanup()
        if notes:
            print("hostile cleanup:", "; ".join(notes))
