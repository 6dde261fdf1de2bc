"""Skip marks for tests that need a real sandbox on this machine."""
from __future__ import annotations

import shutil

import pytest

from sandboxcheck.targets.tools import landlock_abi

requires_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None,
                                    reason="bwrap not installed: apt-get install bubblewrap")
requires_landlock = pytest.mark.skipif(landlock_abi() < 1, reason="kernel without Landlock")
