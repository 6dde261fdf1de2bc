"""Finding the tools targets run (PATH, the project's and the user's npm folders) and their versions."""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from dataclasses import dataclass

#: Folders (os.pathsep-separated) searched for a target's requirements before PATH.
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
TOOLS_ENV = "SANDBOXCHECK_TOOLS"
#: Where ``.ci/run`` installs the npm sandboxes, relative to the project folder.
NPM_BIN = Path(".tools") / "npm" / "node_modules" / ".bin"


@lru_cache(maxsize=1)
def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        v = libc.syscall(444, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
        return int(v) if v > 0 else 0
    except (OSError, AttributeError):
        return 0


def project_dir() -> Path | None:
    """The project folder of a source checkout or editable install, else None."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() else None


def user_tools_dir() -> Path:
    """The caller's own tool folder: ``$XDG_CACHE_HOME/sandboxcheck`` or ``~/.cache/sandboxcheck``.

    ``npm install --prefix`` this folder to make the npm sandboxes visible from
    any working directory.
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sandboxcheck" / "npm"


def _local_tool_dirs() -> list[Path]:
    """The npm bin folders searched after PATH, without duplicates.

    The checkout's (a source tree or an editable install), the working
    directory's (``npm install --prefix .tools/npm`` run where sandboxcheck
    runs: an installed copy has no checkout of its own), then the caller's
    tool folder.
    """
    project = project_dir()
    try:
        here: Path | None = Path.cwd() / NPM_BIN
    except OSError:  # the working directory was removed
        here = None
    bases = [project / NPM_BIN if project is not None else None, here,
             user_tools_dir() / NPM_BIN.relative_to(Path(".tools") / "npm")]
    out: list[Path] = []
    for folder in bases:
        if folder is not None and folder not in out:
            out.append(folder)
    return out


def tool_dirs() -> list[Path]:
    """Folders searched for requirements besides PATH: $SANDBOXCHECK_TOOLS, then the npm bins."""
    return [*(Path(d) for d in os.environ.get(TOOLS_ENV, "").split(os.pathsep) if d),
            *_local_tool_dirs()]


def find_tool(name: str, first: Sequence[Path] = ()) -> str | None:
    """Absolute path of an executable: $SANDBOXCHECK_TOOLS first, then PATH, then the npm bins.

    The explicit variable wins over PATH so a pinned build can be tested next
    to a system one; the npm folders (``.tools/npm`` of the checkout and of the
    working directory, where ``.ci/run`` and the install hints put srt, codex
    and claude, then the caller's tool folder) are the last resort.
    """
    local = _local_tool_dirs()
    explicit = [*first, *(d for d in tool_dirs() if d not in local)]
    for folder in [*explicit, None, *local]:
        hit = shutil.which(name) if folder is None else shutil.which(name, path=str(folder))
        if hit:
            return os.path.abspath(hit)
    return None


#: A dotted version, with a Debian snapshot suffix if it has one (runsc: ``0.0~20221219.0``).
_VERSION = re.compile(r"\d+(?:\.\d+)+(?:~\d+(?:\.\d+)*)?")


#: Versions remembered across processes: a tool's version is asked once per installed file
#: (a node CLI costs about half a second of CPU to answer ``--version``; every process of a
#: sharded survey would otherwise ask every tool again).
_VERSIONS_FILE = "versions.json"
_VERSIONS_KEPT = 256


def _version_key(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{os.path.realpath(path)}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}"


def _remembered_versions() -> tuple[Path | None, dict[str, str]]:
    import json

    folder = state_dir("versions", create=False)
    if folder is None:
        return None, {}
    try:
        data = json.loads((folder / _VERSIONS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    return folder, {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} \
        if isinstance(data, dict) else {}


def _remember_version(key: str, version: str) -> None:
    import json

    folder, known = _remembered_versions()
    folder = folder or state_dir("versions")
    if folder is None:
        return
    known[key] = version
    kept = dict(list(known.items())[-_VERSIONS_KEPT:])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{_VERSIONS_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(kept), encoding="utf-8")
        os.replace(tmp, folder / _VERSIONS_FILE)
    except OSError:
        pass


@lru_cache(maxsize=None)
def installed_version(binary: str, first: Sequence[Path] = ()) -> str | None:
    """``'<binary> <version>'`` of an executable, or None when it is not installed.

    Tools print their version differently (``firejail version 0.9.72``,
    ``codex-cli 0.169.0``, a bare ``0.0.78`` from srt, ``bubblewrap 0.8.0``)
    and socat only knows ``-V`` (its number on the second line), so this tries
    ``--version`` then ``-V`` and takes the first dotted number printed by one
    that succeeds; without one, the first line as printed. Remembered across
    processes per installed file (path, inode, size, modification time).
    """
    path = find_tool(binary, first)
    if not path:
        return None
    key = _version_key(path)
    if key is not None:
        known = _remembered_versions()[1].get(key)
        if known is not None:
            return known
    found_version = _ask_version(binary, path)
    if found_version is not None and key is not None:
        _remember_version(key, found_version)
    return found_version


def _ask_version(binary: str, path: str) -> str | None:
    import subprocess

    first_line: str | None = None
    for flag in ("--version", "-V"):
        try:
            out = subprocess.run([path, flag], capture_output=True, text=True, timeout=10,
                                 env={"PATH": DEFAULT_PATH}, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            continue
        if out.returncode != 0:
            continue
        text = f"{out.stdout}\n{out.stderr}"
        found = _VERSION.search(text)
        if found:
            return f"{binary} {found.group(0)}"
        lines = text.strip().splitlines()
        first_line = first_line or (lines[0] if lines else None)
    return first_line


def state_dir(name: str, create: bool = True) -> Path | None:
    """A stable folder of target ``name``'s own, outside the temp folder, or None if none fits.

    Some tools refuse a home under the temp folder (codex will not create its
    helper binaries there), and a folder there would also be writable by
    sandboxes that open /tmp. Tried in order: ``<project>/.tools/state``,
    ``$XDG_CACHE_HOME/sandboxcheck``, ``~/.cache/sandboxcheck`` (the caller's
    real home: never the fake one a check sees, never ``~/.codex``).
    """
    temps = {Path(tempfile.gettempdir()).resolve(), Path("/tmp").resolve()}
    bases: list[Path] = []
    project = project_dir()
    if project is not None:
        bases.append(project / ".tools" / "state")
    if os.environ.get("XDG_CACHE_HOME"):
        bases.append(Path(os.environ["XDG_CACHE_HOME"]) / "sandboxcheck")
    bases.append(Path.home() / ".cache" / "sandboxcheck")
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", name) or "target"
    for base in bases:
        path = base.resolve() / safe
        if any(path == t or t in path.parents for t in temps):
            continue
        if create:
            path.mkdir(parents=True, exist_ok=True)
        return path
    return None


@dataclass(frozen=True, slots=True)
class Requirement:
    """An executable a target needs, and how to get it."""

    name: str
    install: str = ""

    def hint(self, first: Sequence[Path] = ()) -> str:
        """Human message for a missing requirement: every place searched, then the install command.

        ``first`` are the folders searched before the usual ones (a pinned
        install's), as given to ``find_tool``.
        """
        where = ", ".join(str(d) for d in [*first, *tool_dirs()])
        unset = "" if os.environ.get(TOOLS_ENV) else f"; ${TOOLS_ENV} unset"
        return (f"{self.name} not found on PATH" + (f": {self.install}" if self.install else "")
                + f" [also searched: {where}{unset}]")
