"""Targets: how to run a command inside the sandbox under test.

A target is a YAML file (or a bundled preset, or an inline command string
containing ``{cmd}``) with an argv template. Presets live in ``presets/``.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import placeholders, safeyaml
from .pinning import Installed, InstallSpec, PinError, parse_install, planned_node, prepare, resolve, split_ref
from ..resources import presets_dir
from .command import CommandTarget
from .tools import Requirement
from .base import Target
from .base import TargetError
from .base import TargetSpec


_TARGET_KEYS = {"name", "description", "requires", "kernel", "command", "python", "env", "pass_env", "install",
                "versions", "options", "files"}
#: Keys of any target file that say how to pin it (see ``pinning``).
PIN_KEYS = ("install", "versions")




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


def _agent_target(data: dict[str, Any], source: str, options: Mapping[str, str] | None, strict: bool,
                  pin: Installed | None) -> Target:
    """``kind: agent``: an agent CLI driven by a scripted model (targets/agents/)."""
    from .agents import load_agent_target  # agent targets are a package of their own
    from .agents.spec import DRIVER_OPTIONS, DRIVERS, load_plugin_drivers, option_file_problems

    _, problems = parse_install(data.get("install"), data.get("versions"))
    if problems:
        raise TargetError("\n".join(f"{source}: {p}" for p in problems))
    # Only the options this driver takes: an unknown one is reported as such below.
    driver = data.get("agent", "claude-code")
    if isinstance(driver, str) and driver not in DRIVERS:
        load_plugin_drivers()
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


def _command_target(data: dict[str, Any], source: str, options: Mapping[str, str] | None, strict: bool,
                    pin: Installed | None) -> Target:
    """A command line that runs the probe (no ``kind``): every wrapper preset."""
    spec = parse_target(data, source)
    if pin is not None:
        spec = dataclasses.replace(spec, pin=pin, bin_dirs=(pin.bin_dir,), version=pin.version)
    return CommandTarget(spec, options, strict)


#: A target kind builds a Target from a target file's mapping:
#: ``builder(data, source, options, strict, pin) -> Target``.
TargetBuilder = Callable[[dict[str, Any], str, "Mapping[str, str] | None", bool, "Installed | None"], Target]
#: The target kinds a target file may name with ``kind:`` (``command`` when it names none).
#: Another package adds one with an entry point in the group ``sandboxcheck.targets``
#: whose name is the kind and whose object is its builder.
TARGET_KINDS: dict[str, TargetBuilder] = {"command": _command_target, "agent": _agent_target}
_plugins_loaded = False


def target_kinds() -> dict[str, TargetBuilder]:
    """Every target kind: the built-in ones, then those other packages register."""
    global _plugins_loaded
    if not _plugins_loaded:
        _plugins_loaded = True
        from importlib.metadata import entry_points

        for ep in entry_points(group="sandboxcheck.targets"):
            if ep.name not in TARGET_KINDS:
                try:
                    TARGET_KINDS[ep.name] = ep.load()
                except Exception:  # noqa: BLE001 - a broken plugin must not break the built-in kinds
                    continue
    return TARGET_KINDS


def _build_target(data: dict[str, Any], source: str, options: Mapping[str, str] | None, strict: bool,
                  pin: Installed | None = None) -> Target:
    kind = data.get("kind", "command")
    builder = target_kinds().get(kind) if isinstance(kind, str) else None
    if builder is None:
        known = ", ".join(k for k in target_kinds() if k != "command")
        raise TargetError(f"{source}: kind: {kind!r} is not a kind of target (known: {known}; "
                          "leave 'kind' out for a command target)")
    return builder(data, source, options, strict, pin)


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
        from .agents.spec import DRIVER_EXECUTABLES

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


def load_targets(refs: Sequence[str], options: Mapping[str, str] | None = None) -> list[tuple[str, Target]]:
    """(ref, target) for each ref, each given the ``--target-opt`` values it takes.

    The same rule for ``run``, ``survey``, ``compare``, ``bisect`` and the pytest
    plugin: an option no target takes is a TargetError (a typo must not pass
    silently), an option only some take goes to those.
    """
    options = dict(options or {})
    loaded = [(ref, load_target(ref, options, strict=False)) for ref in refs]
    unused = sorted(set(options) - {k for _, t in loaded for k in t.option_names()})
    if unused:
        takes = sorted({k for _, t in loaded for k in t.option_names()})
        raise TargetError(f"--target-opt {unused[0]}: none of the targets takes this option"
                          + (f" (they take: {', '.join(takes)})" if takes else " (they take none)"))
    return loaded
