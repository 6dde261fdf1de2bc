"""Skip marks for tests that need a real sandbox on this machine."""
from __future__ import annotations

import shutil

import pytest

from sandboxcheck.targets.tools import landlock_abi

requires_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                    reason="bwrap not installed: apt-get install bubblewrap")
requires_landlock = pytest.mark.skipif(landlock_abi() < 1, reason="kernel without Landlock")


def eventually(condition, timeout: float = 10.0, every: float = 0.02) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; its last answer.

    Tests wait for a state (a process gone, a file written) this way instead of
    sleeping a fixed time: fast when the machine is idle, patient when it is loaded.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return bool(condition())
        time.sleep(every)
