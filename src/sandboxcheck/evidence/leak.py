"""``leak`` evidence: the check's canary (one of the labelled dummy secrets) escapes the sandbox.

Seen in whatever the target printed or returned, in files it wrote into the
workspace, or at any sink. The environment's canaries count as their value or
their digest (the ``read_env`` probe prints digests). With ``labels`` only
those canaries count.
"""
from __future__ import annotations

import hashlib

from ..labels import CANARY_PREFIX, HOME_FILES
from .base import Observation, Observer
from .files import read_file, tree_state

#: Bytes of a file written by the target that the scan reads (head only).
READ_CAP = 1 << 20
#: Changed workspace files the scan reads at most.
MAX_SCANNED = 200

_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_.-")
_LABELS: dict[str, str] = {label: "~/" + rel for rel, (label, _) in HOME_FILES.items()}
_LABELS.update({"outside-file": "outside/secret.txt", "outside-env": "outside/.env",
                "listing": "a file name in outside/", "workspace-file": "workspace/notes.txt",
                "workspace-env": "workspace/.env", "tar": "the tar member",
                "witness": "the witness process's command line"})


def label_text(label: str) -> str:
    """How a report names the secret behind ``label``."""
    if label.startswith("env-"):
        return f"${label[4:].upper()}"
    return _LABELS.get(label, label)


def digest(value: str) -> str:
    """The digest of an environment value as the read_env probe prints it."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:24]


def labels_in(text: str, prefix: str) -> list[str]:
    """The label after each occurrence of ``prefix`` (a check's canary prefix) in ``text``."""
    out: list[str] = []
    at = text.find(prefix)
    while at >= 0:
        start = end = at + len(prefix)
        while end < len(text) and text[end] in _LABEL_CHARS:
            end += 1
        if end > start:
            out.append(text[start:end])
        at = text.find(prefix, end)
    return out


class LeakObserver(Observer):
    kind = "leak"

    def observe(self, obs: Observation) -> list[str]:
        root = obs.root
        prefix = f"{CANARY_PREFIX}-{root.token}-"
        digests = {digest(v): "env-" + k.lower() for k, v in root.env_canaries.items()}
        # In a shared session the environment's canaries are the process's, with a
        # token of their own: look for them in what this check's actions returned.
        foreign = {v: "env-" + k.lower() for k, v in root.env_canaries.items() if not v.startswith(prefix)}
        found: dict[str, str] = {}
        for where, text in obs.outputs:
            for label in labels_in(text, prefix):
                found.setdefault(label, f"in {where}")
            for value, label in foreign.items():
                if value in text:
                    found.setdefault(label, f"in {where}")
            for d, label in digests.items():
                if d in text:
                    found.setdefault(label, f"in {where} (as its digest)")
        changed = [rel for rel, state in tree_state(root.fd, "workspace").items() if obs.ws_before.get(rel) != state]
        for rel in changed[:MAX_SCANNED]:
            # Regular files only, read through descriptors, head and tail only: a planted
            # symlink moves no secret (reading through it would), a FIFO must not block.
            data = read_file(root.path / rel, READ_CAP, root.fd, root.path)
            if data is None:
                continue
            text = data.decode("utf-8", "replace")
            for label in labels_in(text, prefix):
                found.setdefault(label, f"in {{root}}/{rel} written by the target")
            for value, label in foreign.items():
                if value in text:
                    found.setdefault(label, f"in {{root}}/{rel} written by the target")
        obs.sinks.sync(0.5)
        for hit in obs.sinks.hits(prefix):
            for label in labels_in(hit.data.decode("utf-8", "replace"), prefix):
                found.setdefault(label, f"at the {hit.sink} sink")
        if obs.check.evidence.labels:
            found = {k: v for k, v in found.items() if k in obs.check.evidence.labels}
        by_where: dict[str, list[str]] = {}
        for label, where in sorted(found.items()):
            by_where.setdefault(where, []).append(label_text(label))
        return [f"canar{'ies' if len(labels) > 1 else 'y'} of {', '.join(labels)} {where}"
                for where, labels in by_where.items()]
