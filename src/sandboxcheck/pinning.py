"""Version-pinned targets: install a given release of the tool a target wraps.

``--target srt@0.0.50`` installs that release once into a cache folder
(``$SANDBOXCHECK_CACHE`` or ``$XDG_CACHE_HOME/sandboxcheck``, never the user's
global prefix) and runs it from there. A target declares how with

    install:
      npm: "@anthropic-ai/sandbox-runtime@{version}"
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .redact import caller_environ

_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$")


class PinError(Exception):
    """A pinned version cannot be installed (bad input or no registry)."""


@dataclass(frozen=True, slots=True)
class InstallSpec:
    """How to install one version of a target's tool."""

    npm: str  # package spec with {version}

    def package(self, version: str) -> str:
        """The package spec for ``version``."""
        return self.npm.replace("{version}", version)


def cache_dir() -> Path:
    """Root of the install cache."""
    explicit = os.environ.get("SANDBOXCHECK_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sandboxcheck"


def split_ref(ref: str) -> tuple[str, str | None]:
    """``srt@0.0.50`` -> ("srt", "0.0.50"); a ref without a version -> (ref, None)."""
    name, sep, version = ref.rpartition("@")
    if not sep or not name or "/" in version or not version:
        return ref, None
    if not _VERSION.match(version):
        raise PinError(f"{ref!r}: {version!r} is not a version")
    return name, version


def install(spec: InstallSpec, version: str, timeout: float = 600) -> Path:
    """Install ``version`` once; return the folder holding its executables."""
    if not _VERSION.match(version):
        raise PinError(f"{version!r} is not a version")
    package = spec.package(version)
    safe = re.sub(r"[^A-Za-z0-9.+_@-]", "_", package)
    prefix = cache_dir() / "npm" / safe
    bin_dir = prefix / "node_modules" / ".bin"
    marker = prefix / ".installed"
    if marker.exists():
        return bin_dir
    npm = shutil.which("npm")
    if npm is None:
        raise PinError(f"npm not found on PATH: it is needed to install {package} (apt-get install npm)")
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / f"{safe}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install per version, even across processes
        if marker.exists():
            return bin_dir
        proc = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-save", "--no-audit",
                               "--no-fund", "--loglevel=error", package],
                              capture_output=True, text=True, timeout=timeout,
                              env=dict(caller_environ()))  # the caller's own tool: their proxies, registry
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise PinError(f"npm could not install {package}: {' '.join(tail)}")
        marker.write_text(package + "\n")
    return bin_dir
