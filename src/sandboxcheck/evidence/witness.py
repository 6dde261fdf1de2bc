"""``signal`` evidence: the harness's witness process ({witness_pid}) receives a signal."""
from __future__ import annotations

from .base import Observation, Observer


class SignalObserver(Observer):
    kind = "signal"

    def observe(self, obs: Observation) -> list[str]:
        got = obs.witness.stop() if obs.witness is not None else []
        obs.witness = None  # stopped: the harness has nothing left to end
        return [f"harness witness process received signal {got[0].split()[1]}"] if got else []
