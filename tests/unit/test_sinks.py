"""Sinks keep only what a running check sent, bounded, and forget it once the check is judged."""
from __future__ import annotations

import socket

from sandboxcheck.evidence.sinks import MAX_HITS_PER_TOKEN, Sinks


def _send(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port)) as c:
        c.sendall(data)


def test_only_watched_tokens_are_kept_and_bounded() -> None:
    sinks = Sinks()
    try:
        token = "0123456789abcdef"
        _send(sinks.ports["tcp"], b"before the check " + token.encode())
        sinks.watch(token)
        for i in range(MAX_HITS_PER_TOKEN + 10):
            _send(sinks.ports["tcp"], f"tcp {token} {i}".encode())
        _send(sinks.ports["tcp"], b"noise without any token " * 100)
        sinks.sync()
        hits = sinks.hits(token)
        assert len(hits) == MAX_HITS_PER_TOKEN
        assert all(token.encode() in h.data for h in hits)
        assert sinks.hits("noise") == []
        sinks.forget(token)
        assert sinks.hits(token) == []
        _send(sinks.ports["tcp"], f"late {token}".encode())
        sinks.sync()
        assert sinks.hits(token) == []
    finally:
        sinks.close()
