"""A scripted stand-in for the Anthropic Messages API, so an agent CLI runs offline.

The agent under test (Claude Code) talks to ``ANTHROPIC_BASE_URL``. This
server answers on 127.0.0.1 with a fixed script instead of a model: for each
step one ``tool_use`` block (Bash with a command, or Read/Write/Edit on a
path), then a final text. It records what came back in every ``tool_result``
(including ``is_error`` and whether the agent refused the call for lack of a
permission), which is evidence the harness owns: it is seen outside the
sandbox, in a process the agent cannot reach.

Which step to play is read from the conversation itself, not from a counter:
the number of this server's ``tool_use`` ids already in the request's
messages says how far the session got. A retried request therefore gets the
same answer, and requests that are not the main conversation (titles, quota
checks, anything without the session's tag or without a ``tool_result`` for
the last step) get a harmless text and never advance the script.

Lenient about what the client sends (unknown fields, a ``system`` role in the
middle of ``messages``, string or block content), strict about what it
returns: a valid event sequence (``message_start``, ``content_block_start``,
``content_block_delta``, ``content_block_stop``, ``message_delta``,
``message_stop``), unique ids and complete ``usage`` fields.
"""
from __future__ import annotations

import time

import itertools
import json
import secrets
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit
from .script import Exchange
from .script import Feed
from .script import SIDE_TEXT
from .script import Script
from .script import Step
from .script import TOOL_ID_PREFIX
from .script import ToolCall
from .script import Transcript
from .script import sandbox_lines, session_in_text


# -- request helpers (lenient) -------------------------------------------------

def _blocks(content: Any) -> list[dict[str, Any]]:
    """A message's content as a list of blocks (a plain string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [b if isinstance(b, dict) else {"type": "text", "text": str(b)} for b in content]
    return []


def _text_of(content: Any) -> str:
    """All text in a content value (tool_result content may be a string or blocks)."""
    if isinstance(content, str):
        return content
    parts = []
    for b in _blocks(content):
        if b.get("type") == "text":
            parts.append(str(b.get("text", "")))
        elif "content" in b:
            parts.append(_text_of(b["content"]))
        elif b.get("type") == "image":
            parts.append("[image]")
    return "\n".join(parts)


def _session_of(messages: Sequence[Any]) -> int | None:
    """The session number from the first user message carrying the tag."""
    for m in messages:
        if isinstance(m, dict) and m.get("role") == "user":
            found = session_in_text(_text_of(m.get("content")))
            if found is not None:
                return found
    return None


def _sandbox_notes(body: Mapping[str, Any]) -> list[str]:
    """What the agent tells its model about the sandbox, from a Messages API request. Claude
    Code 2.1.197 says it in the Bash tool's description, including when to retry with
    dangerouslyDisableSandbox; 2.1.332 in a ``system`` message in the middle of the
    conversation."""
    texts = [("system", _text_of(body.get("system")))]
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and isinstance(tool.get("description"), str):
            texts.append((f"{tool.get('name')} tool", tool["description"]))
    for m in body.get("messages") or []:
        if isinstance(m, dict) and m.get("role") in ("user", "system"):
            texts += [(f"{m['role']} turn", str(b.get("text", ""))) for b in _blocks(m.get("content"))
                      if b.get("type") == "text"]
    return sandbox_lines(texts)


class ScriptedModel:
    """The model's logic without any I/O: a request body in, a message out.

    Thread-safe; one instance serves one agent run (all of its sessions). With
    a ``feed``, session 1 plays the feed's steps instead of the script's.
    """

    def __init__(self, script: Script, feed: Feed | None = None) -> None:
        self.script = script
        self.feed = feed
        self.transcript = Transcript()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        # In every id, so a conversation carrying another run's ids is never taken for this one's.
        self._nonce = secrets.token_hex(3)

    def _call_id(self, session: int, index: int) -> str:
        return f"{TOOL_ID_PREFIX}{session}_{index}_{self._nonce}"

    def _message_id(self) -> str:
        return f"msg_sc{self._nonce}{next(self._ids):06d}"

    def messages(self, body: Mapping[str, Any], method: str = "POST",
                 path: str = "/v1/messages") -> dict[str, Any]:
        """The assistant message answering one ``/v1/messages`` request body."""
        raw_messages, raw_tools = body.get("messages"), body.get("tools")
        messages: list[Any] = raw_messages if isinstance(raw_messages, list) else []
        tools: list[Any] = raw_tools if isinstance(raw_tools, list) else []
        max_tokens = body.get("max_tokens") if isinstance(body.get("max_tokens"), int) else None
        model = str(body.get("model") or "sandboxcheck-scripted")
        session = _session_of(messages)
        step_index = None
        if session is not None and tools:
            with self._lock:
                step_index = self._main_step(session, messages)
        live: Step | None = None
        if step_index is not None and self.feed is not None and session == 1:
            if step_index < self.feed.answered_count:
                # The conversation lost steps it had (the agent compacted or trimmed
                # it): replaying an earlier check's step would run it again in the
                # middle of another check. End the session instead.
                self.feed.diverge()
            else:
                self.feed.answered(step_index)
                live = self.feed.wait_step(step_index)  # outside the lock: side requests go on
        with self._lock:
            kind, stop = "side", "end_turn"
            content: list[dict[str, Any]] = [{"type": "text", "text": SIDE_TEXT}]
            if step_index is not None:
                kind = "main"
                # Every main request: a reminder may come with a later turn.
                seen = self.transcript.system_notes.setdefault(session, [])
                seen += [n for n in _sandbox_notes(body) if n not in seen][:max(0, 40 - len(seen))]
                step = live
                if step is None and (self.feed is None or session != 1):
                    steps = self.script.steps(session)
                    step = steps[step_index] if step_index < len(steps) else None
                if step is not None:
                    call = self.transcript.call(session, step_index)
                    if call is None:
                        call = ToolCall(session, step_index, step, self._call_id(session, step_index))
                        self.transcript.calls.append(call)
                    call.sent += 1
                    content = [{"type": "tool_use", "id": call.id, "name": step.tool,
                                "input": dict(step.input)}]
                    stop = "tool_use"
                else:
                    self.transcript.finals[session] = self.transcript.finals.get(session, 0) + 1
                    content = [{"type": "text", "text": self.script.final_text}]
            answer = f"tool_use:{content[0]['name']}" if stop == "tool_use" else "text"
            self.transcript.exchanges.append(Exchange(method, path, kind, session, answer,
                                                      bool(body.get("stream")), max_tokens, len(tools)))
        out_tokens = max(1, len(json.dumps(content)) // 4)
        return {"id": self._message_id(), "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": stop, "stop_sequence": None,
                "usage": {"input_tokens": _estimate_tokens(messages), "output_tokens": out_tokens,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}

    def _main_step(self, session: int, messages: Sequence[Any]) -> int | None:
        """Index of the next step when ``messages`` is this session's main conversation, else None.

        Main means: the last non-system message is the user's, and it is either the
        opening prompt (no scripted call yet) or carries the tool_result of the last
        scripted call. Results are recorded here, once.
        """
        ours: list[str] = []
        results: dict[str, tuple[str, bool]] = {}
        for m in messages:
            if not isinstance(m, dict):
                continue
            for b in _blocks(m.get("content")):
                if b.get("type") == "tool_use" and str(b.get("id", "")).startswith(TOOL_ID_PREFIX):
                    ours.append(str(b["id"]))
                elif b.get("type") == "tool_result":
                    results[str(b.get("tool_use_id"))] = (_text_of(b.get("content")),
                                                          bool(b.get("is_error")))
        last = next((m for m in reversed(messages)
                     if isinstance(m, dict) and m.get("role") in ("user", "assistant")), None)
        if last is None or last.get("role") != "user":
            return None
        expected = [self._call_id(session, i) for i in range(len(ours))]
        if ours != expected:
            return None  # another session's or another run's ids: not this conversation
        if ours:
            last_ids = {str(b.get("tool_use_id")) for b in _blocks(last.get("content"))
                        if b.get("type") == "tool_result"}
            if ours[-1] not in last_ids:
                return None
        for i, call_id in enumerate(ours):
            call = self.transcript.call(session, i)
            if call is not None and call.result is None and call_id in results:
                call.result, call.is_error = results[call_id]
                call.answered_at = time.time()
        return len(ours)

    def record(self, method: str, path: str, kind: str) -> None:
        """Note a request that is not a message (HEAD, count_tokens, unknown)."""
        with self._lock:
            self.transcript.exchanges.append(Exchange(method, path, kind))


def _estimate_tokens(messages: Sequence[Any]) -> int:
    return max(1, len(json.dumps(messages, default=str)) // 4)


def sse_events(message: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The streaming events for a complete message, in the order the API sends them."""
    start = dict(message)
    start.update(content=[], stop_reason=None, stop_sequence=None,
                 usage={**message["usage"], "output_tokens": 1})
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start})]
    for i, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "tool_use", "id": block["id"],
                                                                     "name": block["name"], "input": {}}}))
            events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "input_json_delta",
                                                             "partial_json": json.dumps(block["input"])}}))
        else:
            events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                                   "content_block": {"type": "text", "text": ""}}))
            events.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "text_delta", "text": block["text"]}}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                     "usage": {"output_tokens": message["usage"]["output_tokens"]}}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def sse_body(message: Mapping[str, Any]) -> bytes:
    """A whole SSE response body for ``message``."""
    return "".join(f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
                   for name, data in sse_events(message)).encode()


#: Largest request body the scripted model reads (a real conversation is far smaller).
MAX_BODY = 16 << 20


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    #: Seconds a connection may sit idle: a client that holds one open cannot pin a thread.
    timeout = 120

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base class name
        """Quiet: the transcript is the log."""

    def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if ctype == "text/event-stream":
            self.send_header("Cache-Control", "no-cache")
        self.send_header("request-id", f"req_sandboxcheck_{secrets.token_hex(6)}")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, kind: str, message: str) -> None:
        self._send(status, json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode())

    def _body(self) -> bytes:
        """The request body, at most ``MAX_BODY`` bytes (the agent is the code under test)."""
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                out = bytearray()
                while True:
                    size = int(self.rfile.readline(64).split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline(64)
                        return bytes(out)
                    if size < 0 or len(out) + size > MAX_BODY:
                        return b""
                    out += self.rfile.read(size)
                    self.rfile.readline(64)
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return b""
        if length < 0 or length > MAX_BODY:
            return b""
        return self.rfile.read(length)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self.server.model.record("HEAD", self.path, "head")
        self._send(200, b"")

    def do_GET(self) -> None:  # noqa: N802
        self.server.model.record("GET", self.path, "unknown")
        self._error(404, "not_found_error", f"sandboxcheck scripted model: no GET {urlsplit(self.path).path}")

    def do_POST(self) -> None:  # noqa: N802
        raw = self._body()
        route = urlsplit(self.path).path.rstrip("/")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.server.model.record("POST", self.path, "unknown")
            self._error(400, "invalid_request_error", "body is not a JSON object")
            return
        if route.endswith("/v1/messages/count_tokens"):
            self.server.model.record("POST", self.path, "count_tokens")
            self._send(200, json.dumps({"input_tokens": _estimate_tokens(body.get("messages") or [])}).encode())
            return
        if not route.endswith("/v1/messages"):
            self.server.model.record("POST", self.path, "unknown")
            self._error(404, "not_found_error", f"sandboxcheck scripted model: no POST {route}")
            return
        message = self.server.model.messages(body, "POST", self.path)
        if body.get("stream"):
            self._send(200, sse_body(message), "text/event-stream")
        else:
            self._send(200, json.dumps(message).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    model: ScriptedModel


class ModelServer:
    """The scripted model on an ephemeral port of 127.0.0.1; a context manager.

    ``url`` goes into ``ANTHROPIC_BASE_URL``; ``transcript`` is what was
    played and answered.
    """

    #: The request handler: a protocol's routes (a subclass for another wire protocol).
    handler: type[BaseHTTPRequestHandler] = _Handler

    def __init__(self, script: Script, feed: Feed | None = None, *, model: ScriptedModel | None = None) -> None:
        """``model`` plays the script (another protocol's model class); by default Messages API's."""
        self.model = model if model is not None else ScriptedModel(script, feed)
        self._server = _Server(("127.0.0.1", 0), self.handler)
        self._server.model = self.model
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                         name="sandboxcheck-model", daemon=True)
        self._started = False

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL for ``ANTHROPIC_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def transcript(self) -> Transcript:
        """What the agent did so far."""
        return self.model.transcript

    def start(self) -> ModelServer:
        """Start serving in a daemon thread."""
        if not self._started:
            self._thread.start()
            self._started = True
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._started:
            self._server.shutdown()
            self._thread.join(5)
            self._started = False
        self._server.server_close()

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
