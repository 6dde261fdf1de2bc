"""``sink`` evidence: a sink the harness owns receives the check's canary."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Observation, Observer


def shown(p: Path, root: Any) -> str:
    """``p`` as ``{root}/...`` when it is in the throwaway root (reports stay stable across runs)."""
    base = root.path if hasattr(root, "path") else root
    try:
        return "{root}/" + str(p.relative_to(base))
    except ValueError:
        return str(p)


class SinkObserver(Observer):
    kind = "sink"

    def observe(self, obs: Observation) -> list[str]:
        name = obs.check.evidence.sink or ""
        token = obs.root.token
        from ..network.world import NET_SINKS

        if obs.network is not None and name in NET_SINKS:
            for hit in obs.network.hits(token, name):
                return [f"{hit.describe(token)} received the check's canary"]
            return []
        obs.sinks.sync()
        for hit in obs.sinks.hits(token):
            if hit.sink == name:
                # Stable text (no port, no token): diffs compare evidence across runs.
                where = shown(obs.unix[name], obs.root) if name in obs.unix else "on loopback"
                return [f"{hit.sink} sink {where} received the check's canary"]
        return []
