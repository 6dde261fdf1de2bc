"""Plugin tests run pytest inside pytest with ``pytester`` (loaded in tests/conftest.py;
helpers: plugin_helpers.py)."""
