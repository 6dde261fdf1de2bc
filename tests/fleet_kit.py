"""Run sandboxcheck as the examples do: a ``sandboxcheck`` command on PATH that runs this checkout."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import sandboxcheck

SOURCE = Path(sandboxcheck.__file__).resolve().parents[1]


def shim_env(tmp: Path, **extra: str) -> dict[str, str]:
    """An environment whose PATH starts with a ``sandboxcheck`` script running this checkout's code."""
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "sandboxcheck"
    shim.write_text(f'#!/bin/sh\nPYTHONPATH="{SOURCE}" exec "{sys.executable}" -m sandboxcheck "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOXCHECK_") or k == "SANDBOXCHECK_TOOLS"}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", **extra)
    return env
