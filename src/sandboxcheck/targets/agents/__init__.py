"""Whole agents as targets: an agent CLI driven offline by a scripted model.

``load_agent_target`` turns a ``kind: agent`` target mapping (a preset such as
``claude-code`` or ``codex-agent``, or a file of the user's) into a Target.
The agent runs in the same throwaway root, fake HOME and synthetic
environment as any target; the model it talks to is a scripted server on
127.0.0.1 (``messages_api`` speaks Anthropic's Messages API for Claude Code,
``responses_api`` OpenAI's Responses API for Codex, ``gemini_api`` the Gemini API for
Gemini CLI; ``base.AgentTarget`` is what every driver shares), which plays the
check's script and records every tool result outside the sandbox.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .spec import DRIVER_OPTIONS, DRIVERS, OPTIONS, AgentSpecError, parse_agent_target

if TYPE_CHECKING:  # the matrix loader imports .spec: keep this package free of targets at import
    from ..base import Target

__all__ = ["load_agent_target", "OPTIONS"]


def load_agent_target(data: Any, source: str, options: Mapping[str, str] | None = None,
                      strict: bool = True) -> Target:
    """The Target for a ``kind: agent`` mapping loaded from ``source``.

    ``options`` are ``--target-opt`` values (see ``spec.OPTIONS``); an option
    agent targets do not take is a TargetError unless ``strict`` is false.
    """
    from ..base import TargetError

    try:
        spec = parse_agent_target(data, source)
    except AgentSpecError as exc:
        raise TargetError(str(exc)) from None
    opts = dict(options or {})
    takes = DRIVER_OPTIONS[spec.driver]
    unknown = sorted(set(opts) - set(takes))
    if unknown and strict:
        raise TargetError(f"target {spec.name!r} takes no option {unknown[0]!r}; "
                          f"its options: {', '.join(sorted(takes))}")
    opts = {k: v for k, v in opts.items() if k in takes}
    from importlib import import_module

    module, _, cls = DRIVERS[spec.driver].target.partition(":")
    return getattr(import_module(module), cls)(spec, opts)
