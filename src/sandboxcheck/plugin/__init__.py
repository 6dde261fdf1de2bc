"""The pytest plugin's parts; ``pytest_plugin.py`` holds only its hooks and fixture.

``options``: each option once, as ``--sandboxcheck-NAME`` and ini ``sandboxcheck_NAME``, layered;
``runs``: the session's runs, batched per matrix node and cached; ``items``: matrix nodes,
check items and how they report; ``fixture``: the ``sandboxcheck`` fixture's object.
"""
