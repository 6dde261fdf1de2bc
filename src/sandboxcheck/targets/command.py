"""A target that runs the probe through a command line (every wrapper preset)."""
from __future__ import annotations

import difflib
import json
import secrets
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import placeholders, safefs
from .base import Target
from .base import TargetError
from .base import TargetSpec
from .tools import find_tool
from .tools import landlock_abi
from .tools import state_dir
#: Options whose value names a file the caller provides (it must exist).
_FILE_OPTIONS = frozenset({"settings"})


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

    def option_names(self) -> frozenset[str]:
        return frozenset(self._options)

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
