"""``marker`` evidence: a string that only exists once the action ran shows up in the output."""
from __future__ import annotations

from .. import placeholders
from .base import Observation, Observer


class MarkerObserver(Observer):
    kind = "marker"

    def observe(self, obs: Observation) -> list[str]:
        ev = obs.check.evidence
        marker = placeholders.expand(ev.marker or "", obs.values)
        if marker and marker in " ".join(obs.argv):
            obs.problem = "marker appears in the command line itself; it cannot prove anything"
            return []
        if marker and any(marker in text for _, text in obs.outputs):
            return [f"marker {ev.marker!r} printed by the action"]
        return []
