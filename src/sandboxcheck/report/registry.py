"""Every report format of every command, in one registry, and the exit code of each kind of result.

A format is registered for one *kind* of result: ``run`` (a RunReport),
``survey`` (a Survey grid), ``diff`` (a Comparison: ``diff`` and ``compare``),
``fleet`` (merged reports), ``bisect`` and ``replay``. The command line's
``--format`` choices are this registry's names, so a format added here (or by
another package, through an entry point in the group ``sandboxcheck.formats``
whose object is a ``Format``) shows up in ``--help``, is accepted and rendered
without touching the command line.

Renderers are named as ``module:function`` and imported only when used, so
listing the formats costs nothing at start-up. A renderer is called as
``function(result, out, **options)``, or ``function(result, name, out, **options)``
when ``named`` is set (one function rendering several formats). Options a
renderer does not take are not passed.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import IO, Any

#: Exit codes of every command: the verdict's, then the harness's own.
EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INCONCLUSIVE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

#: The kinds of result a format renders.
KINDS: tuple[str, ...] = ("run", "survey", "diff", "fleet", "bisect", "replay")


@dataclass(frozen=True, slots=True)
class Format:
    """One output format of one kind of result."""

    kind: str
    name: str
    #: ``module:function`` of the renderer.
    render: str
    #: The renderer takes the format's name after the result (it renders several).
    named: bool = False


_BUILTIN: tuple[Format, ...] = (
    Format("run", "table", "sandboxcheck.report.run:render_table"),
    Format("run", "json", "sandboxcheck.report.run:render_json"),
    Format("run", "junit", "sandboxcheck.report.run:render_junit"),
    Format("run", "sarif", "sandboxcheck.report.sarif:render_sarif"),
    Format("run", "markdown", "sandboxcheck.report.run:render_markdown"),
    Format("survey", "table", "sandboxcheck.survey:render_table"),
    Format("survey", "markdown", "sandboxcheck.survey:render_markdown"),
    Format("survey", "json", "sandboxcheck.survey:render_json"),
    Format("survey", "html", "sandboxcheck.survey:render_html"),
    *(Format("diff", name, "sandboxcheck.compare:render", named=True) for name in ("table", "json", "markdown")),
    Format("fleet", "table", "sandboxcheck.merge:render_table"),
    Format("fleet", "json", "sandboxcheck.merge:render_json"),
    Format("fleet", "markdown", "sandboxcheck.merge:render_markdown"),
    Format("fleet", "html", "sandboxcheck.merge:render_html"),
    *(Format("bisect", name, "sandboxcheck.bisect:render", named=True) for name in ("table", "json")),
    *(Format("replay", name, "sandboxcheck.advisories:render", named=True) for name in ("table", "json")),
)

_formats: dict[tuple[str, str], Format] | None = None


def _registry() -> dict[tuple[str, str], Format]:
    global _formats
    if _formats is None:
        found = {(f.kind, f.name): f for f in _BUILTIN}
        from importlib.metadata import entry_points

        for ep in entry_points(group="sandboxcheck.formats"):
            try:
                fmt = ep.load()
            except Exception:  # noqa: BLE001 - a broken plugin must not break the built-in formats
                continue
            if isinstance(fmt, Format) and fmt.kind in KINDS and (fmt.kind, fmt.name) not in found:
                found[(fmt.kind, fmt.name)] = fmt
        _formats = found
    return _formats


def formats(kind: str) -> list[str]:
    """The format names of ``kind``, built-in first."""
    return [name for (k, name) in _registry() if k == kind]


_BUILTIN_BY_KEY = {(f.kind, f.name): f for f in _BUILTIN}


def lookup(kind: str, name: str) -> Format:
    """The format ``name`` of ``kind``: a built-in one without scanning the installed
    packages for plugins (that costs every command a few tens of ms); KeyError if none."""
    found = _BUILTIN_BY_KEY.get((kind, name))
    return found if found is not None else _registry()[(kind, name)]


def is_format(kind: str, name: str) -> bool:
    """Whether ``name`` is a format of ``kind``."""
    try:
        lookup(kind, name)
    except KeyError:
        return False
    return True


def renderer(kind: str, name: str) -> Callable[..., None]:
    """The function that renders ``name`` for ``kind`` (KeyError when there is none)."""
    fmt = lookup(kind, name)
    module, _, attr = fmt.render.partition(":")
    return getattr(import_module(module), attr)


def render(kind: str, name: str, result: Any, out: IO[str], **options: Any) -> None:
    """Write ``result`` in format ``name`` to ``out``; options the renderer does not take are dropped."""
    import inspect

    fmt = lookup(kind, name)
    fn = renderer(kind, name)
    params = inspect.signature(fn).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kept = {k: v for k, v in options.items() if takes_all or k in params}
    if fmt.named:
        fn(result, name, out, **kept)
    else:
        fn(result, out, **kept)


def exit_code(kind: str, result: Any, **options: Any) -> int:
    """The exit code a command gives for ``result`` of ``kind``."""
    if kind == "diff":
        return result.exit_code(options.get("fail_on")) if options.get("fail_on") else result.exit_code()
    if kind == "bisect":
        return EXIT_OK if result.found else EXIT_FAIL
    if kind == "replay":
        from ..advisories import exit_code as replay_exit

        return replay_exit(result)
    return result.exit_code()
