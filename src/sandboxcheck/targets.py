"""Targets: how to run a command inside the sandbox under test.

A target is a YAML file (or a bundled preset, or an inline command string
containing ``{cmd}``) with an argv template. Presets live in ``presets/``.
"""
from __future__ import annotations

import ctypes
import dataclasses
import difflib
import json
import os
import re
import secrets
import shlex
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import placeholders, safefs, safeyaml
from .pinning import Installed, InstallSpec, PinError, parse_install, planned_node, prepare, resolve, split_ref
from .resources import presets_dir

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
#: Folders (os.pathsep-separated) searched for a target's requirements before PATH.
TOOLS_ENV = "SANDBOXCHECK_TOOLS"
#: Where ``.ci/run`` installs the npm sandboxes, relative to the project folder.
NPM_BIN = Path(".tools") / "npm" / "node_modules" / ".bin"
#: Options whose value names a file the caller provides (it must exist).
_FILE_OPTIONS = frozenset({"settings"})


class TargetError(Exception):
    """A target file or reference is invalid (bad input: exit code 2)."""


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


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """A target as declared in YAML."""

    name: str
    command: tuple[str, ...]
    description: str = ""
    requires: tuple[Requirement, ...] = ()
    kernel: tuple[str, ...] = ()
    python: str | None = None
    env: tuple[tuple[str, str], ...] = ()
    pass_env: tuple[str, ...] = ()
    source: str = ""
    options: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[str, str], ...] = ()
    install: InstallSpec | None = None
    bin_dirs: tuple[Path, ...] = ()  # searched first for requirements (a pinned install)
    version: str | None = None
    pin: Installed | None = None  # the pinned release and the node that runs it


class Target(ABC):
    """Something that can run a probe argv inside a sandbox."""

    name: str
    description: str
    #: Seconds added to a check's own timeout (unless --timeout is given) for the
    #: target's start-up: an agent target starts a CLI that talks to a model.
    extra_timeout: float = 0.0
    #: The pinned release this target runs (``--target NAME@VERSION``), else None.
    pin: Installed | None = None

    def tool_argv(self, name: str) -> list[str]:
        """The argv prefix that starts executable ``name``: the pinned release's (with the
        node it needs) when there is one, else the one found on the tool path."""
        launch = self.pin.launcher(name) if self.pin is not None else None
        return launch or [find_tool(name) or name]

    def missing_tool(self, name: str) -> bool:
        """Whether executable ``name`` is neither in the pinned release nor on the tool path."""
        return (self.pin is None or self.pin.launcher(name) is None) and not find_tool(name)

    @abstractmethod
    def unavailable(self) -> str | None:
        """None when the target can run here, else why not (with the fix)."""

    @abstractmethod
    def argv(self, values: Mapping[str, str], cmd: Sequence[str]) -> list[str]:
        """The full argv that runs ``cmd`` inside the sandbox."""

    @abstractmethod
    def environment(self, base: Mapping[str, str], caller: Mapping[str, str]) -> dict[str, str]:
        """The environment the target process starts with."""

    def python(self) -> str:
        """Interpreter path probes use inside the sandbox."""
        return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3") or "python3"

    def describe(self) -> dict[str, Any]:
        """JSON-ready summary for reports."""
        return {"name": self.name, "description": self.description}

    def start(self, values: dict[str, str], cmd: Sequence[str], check: Any = None) -> Any:
        """Set up per-execution state before launch (e.g. a scripted model server).

        May add entries to ``values`` for ``argv`` and ``environment`` to use.
        ``check`` is the Check being run (an agent target reads its ``agent``
        script). The default has no state.
        """
        return None

    def supports(self, check: Any) -> str | None:
        """None when this target can run ``check``, else why not (an agent check needs an agent)."""
        if getattr(check, "agent", None) is not None:
            return "this check scripts an agent (agent:); run it against an agent target such as claude-code"
        return None

    def finish(self, state: Any) -> list[tuple[str, str]]:
        """Tear down ``start``'s state; return extra outputs seen outside as
        (where, text) pairs, e.g. ("agent transcript", ...). Default: none."""
        return []

    def session_reason(self, check: Any) -> str | None:
        """None when ``check`` can run in a long-lived session shared with other
        checks (see ``open_session``), else why it needs a process of its own."""
        return "the target starts one process per check"

    def open_session(self, values: dict[str, str]) -> TargetSession:
        """Set up a long-lived session in the root ``values`` describe (only when
        ``session_reason`` can return None)."""
        raise TargetError(f"target {self.name!r} has no long-lived sessions")


class TargetSession(ABC):
    """One long-lived target process that runs many checks one after another.

    The harness starts ``argv`` (with ``env`` added to the target's environment
    and ``stdin`` written to it) in a root of its own. Before each check it
    reseeds that root with the check's token, keeping the paths in ``keep``,
    and calls ``restore``; then ``run`` hands the check to the process and
    returns what came back. ``tainted`` says when a check changed the session
    itself (its settings), after which the harness retires it.
    """

    argv: list[str]
    env: dict[str, str]
    stdin: bytes = b""
    #: Paths relative to the root that survive reseeding (the session's own state).
    keep: frozenset[str] = frozenset()

    def restore(self) -> None:
        """Put back the session's own files after the root was reseeded."""

    def tainted(self) -> str | None:
        """None while the session is as it started, else what changed."""
        return None

    @abstractmethod
    def run(self, check: Any, values: Mapping[str, str], cmd: Sequence[str], timeout: float,
            alive: Callable[[], bool]) -> tuple[bool, list[tuple[str, str]]]:
        """Run one check's steps; (answered in time, outputs seen outside as (where, text))."""

    @abstractmethod
    def finish(self) -> None:
        """Tell the process there is nothing more to do (it should exit soon after)."""

    @abstractmethod
    def close(self) -> None:
        """Stop the session's helpers (the process has exited or was killed)."""


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
    root = Path(__file__).resolve().parent.parent.parent
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


@lru_cache(maxsize=None)
def installed_version(binary: str, first: Sequence[Path] = ()) -> str | None:
    """``'<binary> <version>'`` of an executable, or None when it is not installed.

    Tools print their version differently (``firejail version 0.9.72``,
    ``codex-cli 0.169.0``, a bare ``0.0.78`` from srt, ``bubblewrap 0.8.0``)
    and socat only knows ``-V`` (its number on the second line), so this tries
    ``--version`` then ``-V`` and takes the first dotted number printed by one
    that succeeds; without one, the first line as printed.
    """
    import subprocess

    path = find_tool(binary, first)
    if not path:
        return None
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


def requirement_versions(target: Target) -> list[str]:
    """``'<tool> <version>'`` of each installed requirement of ``target`` (empty for none)."""
    spec = getattr(target, "spec", None)
    if not isinstance(spec, TargetSpec):
        return []
    found = []
    pin = spec.pin
    for r in spec.requires:
        if pin is not None and (pin.bin_dir / r.name).exists():
            found.append(f"{r.name} {pin.describe()}")  # the pinned release (NAME@VERSION) and its node
        elif pin is not None and r.name == "node" and pin.node is not None:
            continue  # the pinned release names the node it runs under
        elif (version := installed_version(r.name, spec.bin_dirs)):
            found.append(version)
    if "landlock" in spec.kernel and landlock_abi() > 0:
        found.append(f"Landlock ABI {landlock_abi()}")
    return found


class CommandTarget(Target):
    """A target defined by an argv template.

    ``options`` overrides the target's option defaults (``--target-opt``);
    an option the target does not take is a TargetError, or ignored when
    ``strict`` is false (a survey hands every target the same options).
    """

    def __init__(self, spec: TargetSpec, options: Mapping[str, str] | None = None,
                 strict: bool = True) -> None:
        self.spec = spec
        self.name = spec.name
        self.description = spec.description
        self._options = _option_values(spec, dict(options or {}), strict)
        self.pin = spec.pin
        self._uses: frozenset[str] | None = None
        self._resolved: dict[str, str | None] | None = None  # requirement -> its path, once found

    def uses(self) -> set[str]:
        """Placeholder names the command, the files and the option defaults use."""
        if self._uses is None:
            texts = [*self.spec.command, *(t for pair in self.spec.files for t in pair),
                     *(v for _, v in self.spec.options)]
            self._uses = frozenset().union(*(placeholders.names(t) for t in texts)) if texts else frozenset()
        return set(self._uses)

    def option_values(self) -> dict[str, str]:
        """Each option the target takes and its value (an override, else the default template)."""
        return dict(self._options)

    def unavailable(self) -> str | None:
        missing = [r.hint(self.spec.bin_dirs) for r in self.spec.requires
                   if not find_tool(r.name, self.spec.bin_dirs) and self.missing_tool(r.name)]
        if "landlock" in self.spec.kernel and landlock_abi() < 1:
            missing.append("the kernel does not offer Landlock (needs Linux >= 5.13 with lsm=landlock)")
        if "state" in self.uses() and state_dir(self.name, create=False) is None:
            missing.append("no folder outside the temp folder for the tool's state: "
                           "set XDG_CACHE_HOME to one")
        return "; ".join(missing) or None

    def python(self) -> str:
        return self.spec.python or super().python()

    def start(self, values: dict[str, str], cmd: Sequence[str], check: Any = None) -> Any:
        """Write the target's ``files`` (a settings file naming the workspace, say) into this launch's root."""
        values.setdefault("launch_id", "sandboxcheck-" + secrets.token_hex(8))
        self._write_files(self._values(values, cmd))
        return None

    def _values(self, values: Mapping[str, str], cmd: Sequence[str]) -> dict[str, str]:
        vals = dict(values)
        vals["cmd_shell"] = shlex.join(cmd)
        vals["cmd_json"] = json.dumps(list(cmd))
        vals.setdefault("python", self.python())
        vals["version"] = self.spec.version or ""  # set by --target NAME@VERSION
        if "state" in self.uses() and "state" not in vals:
            vals["state"] = str(state_dir(self.name))
        for name, value in self._options.items():
            vals[name] = placeholders.expand(value, vals)
        return vals

    def argv(self, values: Mapping[str, str], cmd: Sequence[str]) -> list[str]:
        vals = self._values(values, cmd)
        resolved = self._resolved
        if resolved is None or not all(resolved.values()):
            resolved = self._resolved = {r.name: find_tool(r.name, self.spec.bin_dirs) for r in self.spec.requires}
        out: list[str] = []
        for part in self.spec.command:
            launch = self.pin.launcher(part) if self.pin is not None else None
            if part == "{cmd}":
                out.extend(cmd)
            elif launch:
                out.extend(launch)  # the pinned release, under the node it needs
            elif part in resolved and resolved[part]:
                out.append(resolved[part])  # type: ignore[arg-type]
            else:
                out.append(placeholders.expand(part, vals))
        return out

    def _write_files(self, vals: Mapping[str, str]) -> None:
        if not self.spec.files:
            return
        root = Path(vals["root"]).resolve() if "root" in vals else None
        for path_t, content_t in self.spec.files:
            path = Path(placeholders.expand(path_t, vals))
            # parse_target only accepts paths under {root}; hold that after expansion too.
            if root is None or root not in path.resolve().parents:
                raise TargetError(f"{self.spec.source}: files: {path} is not inside the throwaway root")
            # Through descriptors: the root is the target's to change between checks.
            safefs.write_beneath(vals["root"], str(path), placeholders.expand(content_t, vals).encode())

    def environment(self, base: Mapping[str, str], caller: Mapping[str, str]) -> dict[str, str]:
        env = dict(base)
        for name in self.spec.pass_env:
            if name in caller:
                env[name] = caller[name]
        env.update(dict(self.spec.env))
        return env

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "command": list(self.spec.command), "source": self.spec.source}


_TARGET_KEYS = {"name", "description", "requires", "kernel", "command", "python", "env", "pass_env", "install",
                "versions", "options", "files"}
#: Keys of any target file that say how to pin it (see ``pinning``).
PIN_KEYS = ("install", "versions")


def _option_values(spec: TargetSpec, overrides: dict[str, str], strict: bool = True) -> dict[str, str]:
    """Option name -> value for a target: ``overrides`` over the spec's defaults; TargetError if unusable."""
    texts = [*spec.command, *(t for pair in spec.files for t in pair)]
    used = set().union(*(placeholders.names(t) for t in texts)) if texts else set()
    takes = sorted((used & placeholders.TARGET_OPTIONS) | {k for k, _ in spec.options})
    values = dict(spec.options)
    for key, value in overrides.items():
        if key not in takes and not strict:
            continue
        if key not in takes:
            close = difflib.get_close_matches(key, takes, n=1)
            raise TargetError(f"target {spec.name!r} takes no option {key!r}"
                              + (f" (did you mean {close[0]!r}?)" if close else "")
                              + f"; its options: {', '.join(takes) or 'none'}")
        if key in _FILE_OPTIONS and not placeholders.names(value):
            path = Path(value).expanduser()
            if not path.is_file():
                raise TargetError(f"--target-opt {key}={value}: no such file")
            value = str(path.resolve())
        values[key] = value
    for key in takes:
        if key not in values:
            raise TargetError(f"target {spec.name!r} needs --target-opt {key}=VALUE "
                              f"(it has no default {key})")
    return values


def parse_target(data: Any, source: str) -> TargetSpec:
    """Validate a target mapping; raises TargetError naming every problem."""
    problems: list[str] = []
    if not isinstance(data, dict):
        raise TargetError(f"{source}: a target is a mapping with 'name' and 'command'")
    for key in sorted(set(data) - _TARGET_KEYS):
        close = difflib.get_close_matches(key, sorted(_TARGET_KEYS), n=1)
        problems.append(f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    name = data.get("name")
    if not isinstance(name, str) or not name:
        problems.append("'name' must be a non-empty string")
    command = data.get("command")
    if isinstance(command, str):
        try:
            command = shlex.split(command)
        except ValueError as exc:
            problems.append(f"command: cannot split {command!r} like a shell: {exc}")
            command = []
    if not isinstance(command, list) or not command or not all(isinstance(c, str) for c in command):
        problems.append("'command' must be a non-empty list of strings (an argv template)")
        command = []
    used = set().union(*(placeholders.names(c) for c in command)) if command else set()
    for bad in sorted(used - placeholders.TARGET_PLACEHOLDERS):
        problems.append(f"command: unknown placeholder {{{bad}}}")
    files = data.get("files") or {}
    file_texts = [t for pair in files.items() for t in pair] if isinstance(files, dict) else []
    if command and not any("{cmd}" in c or "{cmd_shell}" in c for c in command) \
            and not any("{cmd_json}" in str(t) for t in file_texts):
        problems.append("command: must contain {cmd} (as its own element) or {cmd_shell}, "
                        "or a file must hold {cmd_json}")
    if any("{cmd}" in c and c != "{cmd}" for c in command):
        problems.append("command: {cmd} must be an element of its own; use {cmd_shell} inside a string")
    reqs: list[Requirement] = []
    raw_reqs = data.get("requires") or []
    if not isinstance(raw_reqs, list):
        problems.append("'requires' must be a list of executable names or {name, install} mappings")
        raw_reqs = []
    for item in raw_reqs:
        if isinstance(item, str):
            reqs.append(Requirement(item))
        elif isinstance(item, dict) and isinstance(item.get("name"), str) and set(item) <= {"name", "install"}:
            reqs.append(Requirement(item["name"], str(item.get("install", ""))))
        else:
            problems.append(f"requires: {item!r} is neither a name nor {{name, install}}")
    kernel = data.get("kernel") or []
    if not isinstance(kernel, list):
        problems.append("'kernel' must be a list of kernel features (known: landlock)")
        kernel = []
    for k in kernel:
        if k != "landlock":
            problems.append(f"kernel: unknown feature {k!r} (known: landlock)")
    env = data.get("env") or {}
    if not isinstance(env, dict):
        problems.append("'env' must be a mapping")
        env = {}
    for key, value in env.items():
        if not isinstance(value, (str, int, float, bool)):
            problems.append(f"env: {key}: the value must be text, not {type(value).__name__}")
    pass_env = data.get("pass_env") or []
    if not isinstance(pass_env, list) or not all(isinstance(n, str) for n in pass_env):
        problems.append("'pass_env' must be a list of variable names")
        pass_env = []
    python = data.get("python")
    if python is not None and not (isinstance(python, str) and python.startswith("/")):
        problems.append("'python' must be an absolute path to an interpreter")
    options = data.get("options") or {}
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        problems.append("'options' must map option names to default values (strings)")
        options = {}
    for key in sorted(set(options) - placeholders.TARGET_OPTIONS):
        problems.append(f"options: unknown option {key!r} "
                        f"(known: {', '.join(sorted(placeholders.TARGET_OPTIONS))})")
    files = data.get("files") or {}
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in files.items()):
        problems.append("'files' must map paths under {root} to their content (strings)")
        files = {}
    for path in files:
        if not path.startswith("{root}/") or ".." in path.split("/"):
            problems.append(f"files: {path!r} must be a path under {{root}}/ (the throwaway root)")
    slots = placeholders.TARGET_PLACEHOLDERS - {"cmd", "cmd_shell"}
    # A file is written per check, so it may carry the check's token (a canary in a settings file).
    for texts, known in ((options.values(), slots), ([*files, *files.values()], slots | {"token"})):
        for bad in sorted(set().union(set(), *(placeholders.names(t) for t in texts)) - known):
            problems.append(f"options/files: unknown placeholder {{{bad}}}")
    install, pin_problems = parse_install(data.get("install"), data.get("versions"))
    problems += pin_problems
    if problems:
        raise TargetError("\n".join(f"{source}: {p}" for p in problems))
    return TargetSpec(install=install,
                      name=name, command=tuple(command), description=str(data.get("description", "")),
                      requires=tuple(reqs), kernel=tuple(kernel), python=data.get("python"),
                      env=tuple((str(k), str(v)) for k, v in env.items()),
                      pass_env=tuple(pass_env), source=source,
                      options=tuple((str(k), v) for k, v in options.items()),
                      files=tuple(files.items()))


def preset_names() -> list[str]:
    """Names of the bundled presets."""
    return sorted(p.stem for p in presets_dir().glob("*.yaml"))


def load_target(ref: str, options: Mapping[str, str] | None = None, strict: bool = True) -> Target:
    """A target from a preset name, a target file path, or an inline command with {cmd}.

    ``options`` sets target options (``--target-opt KEY=VALUE``); a key the
    target does not take is a TargetError unless ``strict`` is false.
    ``NAME@VERSION`` (or ``NAME@latest``) runs that release of a pinnable target.
    """
    if not ref.strip():
        raise TargetError(f"empty target reference {ref!r}: give a preset ({', '.join(preset_names())}), "
                          "a target file, or an inline command containing {cmd}")
    preset = presets_dir() / f"{ref}.yaml"
    if "@" in ref and not preset.exists() and not Path(ref).exists() and "{cmd" not in ref:
        return _load_pinned(ref, options, strict)
    if "{cmd" in ref and not Path(ref).exists():
        return CommandTarget(parse_target({"name": "inline", "description": "inline command",
                                           "command": ref}, "--target"), options, strict)
    data, source = _read_target(ref)
    return _build_target(data, source, options, strict)


def _read_target(ref: str) -> tuple[dict[str, Any], str]:
    """The mapping of a preset or target file, and where it came from."""
    preset = presets_dir() / f"{ref}.yaml"
    path = preset if preset.exists() else Path(ref)
    if not path.exists():
        close = difflib.get_close_matches(ref, preset_names(), n=1)
        raise TargetError(f"unknown target {ref!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                          + f": not a preset ({', '.join(preset_names())}), "
                          "not a file, and not an inline command containing {cmd}")
    try:
        data, _ = safeyaml.load(path, "target file")
    except safeyaml.InputError as exc:
        where = f"{exc.file}:{exc.line}" if exc.line else exc.file
        raise TargetError(f"{where}: cannot load target: {exc.message}") from None
    if not isinstance(data, dict):
        raise TargetError(f"{path}: a target is a mapping with 'name' and 'command'")
    return data, str(path)


def _build_target(data: dict[str, Any], source: str, options: Mapping[str, str] | None, strict: bool,
                  pin: Installed | None = None) -> Target:
    kind = data.get("kind")
    if kind is not None and kind != "agent":
        raise TargetError(f"{source}: kind: {kind!r} is not a kind of target (known: agent; "
                          "leave 'kind' out for a command target)")
    if kind == "agent":
        from .agent import load_agent_target  # agent targets are a package of their own
        from .agent.spec import DRIVER_OPTIONS, option_file_problems

        _, problems = parse_install(data.get("install"), data.get("versions"))
        if problems:
            raise TargetError("\n".join(f"{source}: {p}" for p in problems))
        # Only the options this driver takes: an unknown one is reported as such below.
        driver = data.get("agent", "claude-code")
        taken = DRIVER_OPTIONS.get(driver, ()) if isinstance(driver, str) else ()
        unreadable = option_file_problems({k: v for k, v in (options or {}).items() if k in taken})
        if unreadable:
            raise TargetError("\n".join(unreadable))
        target = load_agent_target({k: v for k, v in data.items() if k not in PIN_KEYS}, source, options, strict)
        target.pin = pin
        view = getattr(target, "spec", None)
        if pin is not None and isinstance(view, TargetSpec):  # reports name the pinned release, not PATH's
            target.spec = dataclasses.replace(view, version=pin.version, pin=pin)  # type: ignore[attr-defined]
        return target
    spec = parse_target(data, source)
    if pin is not None:
        spec = dataclasses.replace(spec, pin=pin, bin_dirs=(pin.bin_dir,), version=pin.version)
    return CommandTarget(spec, options, strict)


def pin_spec(name: str) -> tuple[InstallSpec, dict[str, Any], str]:
    """How target ``name`` (a preset or file) is pinned: its install spec, mapping and source.

    TargetError when it cannot be pinned.
    """
    data, source = _read_target(name)
    install, problems = parse_install(data.get("install"), data.get("versions"))
    if problems:
        raise TargetError("\n".join(f"{source}: {p}" for p in problems))
    if install is None:
        raise TargetError(f"target {name!r} cannot be pinned to a version: it has no 'install' "
                          "(e.g. install: {npm: \"package@{version}\"}); pinnable presets: "
                          + ", ".join(pinnable_presets()))
    return install, data, source


def pinnable_presets() -> list[str]:
    """The bundled presets that can run a chosen release (they say how to install one)."""
    return [n for n in preset_names() if "install" in _read_target(n)[0]]


def pinned_tool(data: Mapping[str, Any]) -> str:
    """The executable a pinnable target runs: an agent's CLI, else its first requirement."""
    if data.get("kind") == "agent":
        from .agent.spec import DRIVER_EXECUTABLES

        return DRIVER_EXECUTABLES.get(str(data.get("agent", "claude-code")), "claude")
    reqs = data.get("requires") or []
    first = reqs[0] if reqs else None
    return str(first.get("name") if isinstance(first, dict) else first or "")


def release_data(install: InstallSpec, data: Mapping[str, Any], version: str, ref: str) -> dict[str, Any]:
    """The target mapping that drives release ``version``: its ``versions`` entry applied.

    TargetError (before anything is installed) when the target does not support the release.
    """
    why = install.unsupported(version)
    if why:
        raise TargetError(f"{ref}: {why}; pick a release in that range")
    variant = install.variant(version)
    out = {k: v for k, v in data.items() if k != "versions"}
    if variant is not None:
        out.update(variant.keys)
    return out


def pin_details(ref: str) -> list[str]:
    """Lines saying how target ``ref`` (NAME, NAME@VERSION or NAME@latest) is pinned, and the
    release and node it would run (the newest release when no version is given)."""
    name, version = split_ref(ref)
    install, data, source = pin_spec(name)
    lines = [f"{name} ({source})", f"  package:   {install.name}",
             f"  supported: {install.supported or 'every release'}",
             f"  command:   {' '.join(map(str, data.get('command') or [pinned_tool(data)]))}"]
    for variant in install.variants:
        keys = "; ".join(f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in variant.keys.items())
        lines.append(f"  releases {variant.range}: {keys}")
    release = resolve(install, version or "latest")
    why = install.unsupported(release)
    lines.append(f"  {name}@{release}: " + (why if why else planned_node(install, release, pinned_tool(data))))
    return lines


def _load_pinned(ref: str, options: Mapping[str, str] | None, strict: bool) -> Target:
    """``name@version``: the target ``name`` running that release, installed into the cache."""
    try:
        name, version = split_ref(ref)
    except PinError as exc:
        raise TargetError(str(exc)) from None
    if version is None:
        raise TargetError(f"unknown target {ref!r}")
    install, data, source = pin_spec(name)
    try:
        version = resolve(install, version)
        data = release_data(install, data, version, ref)
        pin = prepare(install, version, pinned_tool(data))
    except PinError as exc:
        raise TargetError(f"{ref}: {exc}") from None
    data = {**data, "name": f"{name}@{version}",
            "description": f"{data.get('description', '')} (pinned to {pin.describe()})".strip()}
    return _build_target(data, source, options, strict, pin)


def parse_target_opts(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (``--target-opt``) as a dict; TargetError for a malformed one."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[a-z_]+", key):
            raise TargetError(f"--target-opt {pair!r}: expected KEY=VALUE with a lowercase KEY")
        out[key] = value
    return out
