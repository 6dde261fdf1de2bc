"""Shared fixtures: bundled matrices and target availability."""
from __future__ import annotations

import pytest

from sandboxcheck.matrix.load import load_matrix
from sandboxcheck.model import Matrix
from sandboxcheck.resources import resolve_matrix


pytest_plugins = ["pytester"]  # the plugin tests in tests/plugin run pytest inside pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: runs real sandboxes on this machine")


#: Folders whose tests run real sandboxes, agents or whole CLI runs: the slow tier.
#: ``python3 -m pytest -m "not integration"`` runs the rest (the fast tier).
_INTEGRATION = ("integration", "hostile")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.parent.name in _INTEGRATION:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def baseline() -> Matrix:
    return load_matrix(resolve_matrix("baseline"))



@pytest.fixture(scope="session")
def sarif_schema() -> dict:
    """The official SARIF 2.1.0 schema shipped by @microsoft/jest-sarif (installed by .ci/run).

    Looked up in the checkout's .tools, then next to $SANDBOXCHECK_TOOLS; missing
    fails in CI and skips elsewhere.
    """
    import json
    import os
    from pathlib import Path

    rel = Path("@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json")
    places = [Path(__file__).resolve().parents[1] / ".tools/npm/node_modules" / rel]
    if os.environ.get("SANDBOXCHECK_TOOLS"):
        places.append(Path(os.environ["SANDBOXCHECK_TOOLS"]).parent / rel)
    found = next((p for p in places if p.is_file()), None)
    if found is None:
        why = (f"SARIF schema not found in {', '.join(map(str, places))}: run .ci/run "
               "(npm install --prefix .tools/npm @microsoft/jest-sarif)")
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return json.loads(found.read_text())


@pytest.fixture(scope="session")
def baseline_subset(baseline: Matrix):  # type: ignore[no-untyped-def]
    """A function: the text of a matrix named ``name`` holding the baseline checks ``ids`` as written."""
    from pathlib import Path

    lines = Path(baseline.path).read_text().splitlines()

    def subset(name: str, *ids: str) -> str:
        keep = [c for c in baseline.checks if c.id in ids]
        assert len(keep) == len(ids), f"not all of {ids} are in the baseline matrix"
        body = "\n".join("\n".join(lines[c.line - 1:c.end_line]) for c in keep)
        return f"version: 1\nname: {name}\ndefaults:\n  severity: high\nchecks:\n{body}\n"

    return subset
