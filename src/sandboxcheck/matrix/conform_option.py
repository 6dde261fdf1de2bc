"""A matrix's ``conform: FILE`` key: checks whose expectations come from a sandbox's own settings file.

``conform: srt-settings.json`` (a path relative to the matrix file) reads the
file as ``sandboxcheck conform`` does (srt JSON, Claude Code JSON, Codex
TOML), derives one check per testable declared rule (``conform.*`` ids) and
adds them to the matrix's own checks; a matrix may hold no other check. A
file that cannot be read is a problem at the key's line, like every other.

``sandboxcheck run``, the pytest plugin and suites then run an srt target
(srt, srt-settings, srt-net, at any release) with the settings the file
declares, unless ``--target-opt settings=`` names a file of the caller's;
every other target runs with its own configuration, so the expectations are
the file's, the behaviour the target's.
"""
from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..model import Check, Matrix
from .lines import MatrixError, Problem

if TYPE_CHECKING:
    from ..targets.base import Target


def settings_file(value: str, matrix_file: str) -> Path:
    """Where ``conform: value`` points: relative paths are read from the matrix file's folder."""
    p = Path(value).expanduser()
    if p.is_absolute() or matrix_file.startswith("<"):
        return p
    return Path(matrix_file).resolve().parent / p


def derived_checks(value: str, matrix_file: str, line: int, taken: set[str]) -> tuple[Check, ...]:
    """The checks ``conform: value`` adds, located at the key's line; raises MatrixError."""
    from ..conform import PolicyError, derive, load_settings, matrix_text
    from .load import parse_matrix

    path = settings_file(value, matrix_file)
    try:
        policy = load_settings(path)
    except PolicyError as exc:
        # Named as written: the resolved path says where it was looked for only when that differs.
        text = str(exc).replace(str(path), value if str(path).endswith(value) else f"{value} ({path})")
        raise MatrixError([Problem(matrix_file, line, "conform", text)]) from None
    rules = derive(policy)
    if not any(r.check for r in rules):
        raise MatrixError([Problem(matrix_file, line, "conform", f"{value}: no rule of it can be tested here")])
    derived = parse_matrix(matrix_text(policy, rules, str(path)), f"{matrix_file} (conform: {value})")
    clash = sorted(taken & {c.id for c in derived.checks})
    if clash:
        raise MatrixError([Problem(matrix_file, line, "conform", f"derived check ids {', '.join(clash)} are "
                                   "also ids of the matrix's own checks: rename those")])
    return tuple(dataclasses.replace(c, source=matrix_file, line=line, end_line=line) for c in derived.checks)


def conform_target(matrix: Matrix, target_ref: str, settings_opt: bool) -> tuple[object | None, str]:
    """The target to run a conform matrix with: an srt target with the derived settings (None: the
    caller's own), and a note saying which settings the target enforces."""
    from ..conform import SRT_TARGETS, srt_target_file, load_settings, run_settings
    from ..targets.pinning import split_ref
    from ..targets.registry import load_target

    if not matrix.conform:
        return None, ""
    if settings_opt:
        return None, f"conform: expectations from {matrix.conform}; the target enforces --target-opt settings"
    policy = load_settings(matrix.conform)
    settings = run_settings(policy)
    if split_ref(target_ref)[0] not in SRT_TARGETS or settings is None:
        return None, (f"conform: expectations from {matrix.conform}; target {target_ref!r} runs with its own "
                      "configuration (the file was read, not applied)")
    with tempfile.TemporaryDirectory(prefix="sandboxcheck-conform-") as folder:
        target = load_target(srt_target_file(Path(folder), target_ref, settings))
    note = f"conform: {target_ref} runs with the settings of {matrix.conform}"
    if settings != policy.srt_settings:
        note += " (plus the harness's two sink addresses on network.allowedDomains, which no check addresses)"
    return target, note


def conformed_targets(matrix: Matrix, targets: Sequence[Target]) -> list[Target]:
    """``targets`` as ``sandboxcheck run`` would run ``matrix``: each srt preset whose settings option
    was left at its default swapped for srt enforcing the ``conform:`` file (pytest plugin, suites)."""
    from ..targets.base import Target

    if not matrix.conform:
        return list(targets)
    out: list[Target] = []
    for target in targets:
        spec = getattr(target, "spec", None)
        values = target.option_values() if hasattr(target, "option_values") else {}
        default = dict(spec.options).get("settings") if spec is not None else None
        given = spec is not None and "settings" in values and values["settings"] != default
        derived, _ = conform_target(matrix, target.name, given)
        out.append(derived if isinstance(derived, Target) else target)
    return out
