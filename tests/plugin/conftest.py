"""Plugin tests run pytest inside pytest with ``pytester`` (helpers: plugin_helpers.py)."""
from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # `pytest_plugins = ["pytester"]` is refused in a conftest below the rootdir
    # ("non-top-level conftest": collecting the whole suite would error);
    # registering the plugin from this hook gives these tests the same fixture.
    if not (config.pluginmanager.has_plugin("pytester")
            or config.pluginmanager.has_plugin("_pytest.pytester")):
        config.pluginmanager.import_plugin("pytester")

