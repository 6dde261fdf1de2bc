"""``survivor`` evidence: a process tagged with the check's canary outlives the target."""
from __future__ import annotations

import time

from .base import Observation, Observer
from .processes import kill_tree, processes_with


class SurvivorObserver(Observer):
    kind = "survivor"

    def observe(self, obs: Observation) -> list[str]:
        token = obs.root.token
        # The launch's own processes left alive (its keeper listed them before
        # ending them), and any other process carrying the check's canary.
        if any(token in cmd for _, cmd in obs.survivors):
            return ["a process tagged with the check's canary still alive after the target exited"]
        time.sleep(0.02)  # let a dying pid namespace finish its teardown
        for proc in processes_with(token, exclude={obs.witness.pid} if obs.witness else set()):
            kill_tree(proc.pid)
            return ["a process tagged with the check's canary still alive after the target exited "
                    "(outside the launch's process tree)"]
        return []
