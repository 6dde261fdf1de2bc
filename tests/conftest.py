"""Shared fixtures: bundled matrices and target availability."""
from __future__ import annotations

import pytest

from sandboxcheck.matrix import load_matrix
from sandboxcheck.model import Matrix
from sandboxcheck.resources import resolve_matrix


pytest_plugins = ["pytester"]  # the plugin tests in tests/plugin run pytest inside pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: runs real sandboxes on this machine")


@pytest.fixture(scope="session")
def baseline() -> Matrix:
    return load_matrix(resolve_matrix("baseline"))

