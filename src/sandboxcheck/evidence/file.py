"""``file`` evidence: a host path is created, changed or removed (with ``contains``: then holds that text)."""
from __future__ import annotations

from .. import placeholders
from .base import Observation, Observer
from .files import file_state, read_file

#: Bytes of a watched file read to look for ``contains``.
READ_CAP = 1 << 20


class FileObserver(Observer):
    kind = "file"

    def observe(self, obs: Observation) -> list[str]:
        ev = obs.check.evidence
        assert obs.watch is not None and obs.before is not None
        after = file_state(obs.watch, obs.root.fd, obs.root.path)
        if after == obs.before:
            return []
        contains = placeholders.expand(ev.contains, obs.values) if ev.contains else None
        data = read_file(obs.watch, READ_CAP, obs.root.fd, obs.root.path) if contains else None
        if contains is not None and (data is None or contains.encode() not in data):
            return []
        what = "created" if not obs.before.exists else "changed" if after.exists else "removed"
        return [f"{ev.path} {what} on the host" + (" with the check's canary" if contains else "")]
