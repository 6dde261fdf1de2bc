"""A scripted stand-in for the Gemini API, so the Gemini CLI runs offline.

Gemini CLI talks to ``GOOGLE_GEMINI_BASE_URL``:
``POST /v1beta/models/<model>:streamGenerateContent?alt=sse`` for the
conversation (SSE, one ``data:`` line per chunk) and
``POST /v1beta/models/<model>:generateContent`` for side requests (its model
router, loop and next-speaker checks: JSON answers shaped by a
``responseJsonSchema``), with the key in ``x-goog-api-key``. This server
answers on 127.0.0.1 with the same kind of script as
``messages_api.ModelServer`` (``script``'s Step, Script, ToolCall, Feed and
Transcript it shares): for each step one ``functionCall`` part, then a final
text. A step names the harness's tool (Bash, Read, Write, Edit); ``tools``
maps it to the CLI's (``run_shell_command``, ``read_file``, ``write_file``,
``replace``), and the step's input is sent as the call's ``args``.

Every ``functionResponse`` that comes back is recorded: evidence seen outside
the sandbox, in a process the agent cannot reach. A response with an
``error`` counts as an error, and so does a shell command whose reported
``Exit Code`` is not 0; see ``GeminiToolCall`` for what counts as a refusal.

Which step to play is read from the conversation, as in ``messages_api``: the
number of this server's call ids in ``contents`` says how far the session got
(the CLI echoes the ``id`` of each ``functionCall`` in its
``functionResponse``), so a retried request gets the same answer, and
requests that are not the session's main conversation (no part that starts
with the session tag, no function declarations, foreign ids, or the last call
not answered) get a harmless answer and never advance the script.

Lenient about what the client sends (unknown fields, ``tools`` with or
without ``functionDeclarations``, text parts next to function responses),
strict about what it returns: candidates with a ``content`` of role
``model``, a ``finishReason``, complete ``usageMetadata`` and, for a side
request with a JSON schema, a text that satisfies the schema.
"""
from __future__ import annotations

import time

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .messages_api import ModelServer, ScriptedModel, _estimate_tokens, _Handler
from .script import SESSION_TAG, SIDE_TEXT, Exchange, Feed, Script, Step, ToolCall, sandbox_lines

#: Prefix of the call ids this server hands out (``sc_fc<session>_<step>_<nonce>``).
CALL_ID_PREFIX = "sc_fc"
#: The Gemini CLI tool each of the harness's tools is played as.
GEMINI_TOOLS: Mapping[str, str] = {"Bash": "run_shell_command", "Read": "read_file",
                                   "Write": "write_file", "Edit": "replace"}
#: What the CLI reports after a shell command: ``Exit Code: N`` (absent when it is 0).
_EXIT = re.compile(r"^Exit Code:\s*(-?\d+)\s*$", re.MULTILINE)
#: How Gemini CLI 0.39 to 0.61 says it did not run a call: a tool its approval
#: mode does not offer ('Tool "run_shell_command" not found. Did you mean ...'),
#: a path its file tools keep out ("Path not in workspace: Attempted path ...
#: resolves outside the allowed workspace directories"), plan mode's rule for
#: writes ("Access denied: plan path (...) must be within the designated plans
#: directory"), a policy rule ("denied by policy", "blocked by policy"), a call
#: that needs a confirmation headless mode cannot ask for ('Tool execution for
#: "Shell" requires user confirmation, which is not supported in
#: non-interactive mode.').
_DENIALS = re.compile(
    r'^Tool "[^"]+" not found|^Path not in workspace|^Access denied: |'
    r"(?:denied|blocked|rejected) by (?:the )?policy|"
    r"requires? (?:user )?(?:approval|confirmation)|not allowed in plan mode|"
    r"cannot be (?:run|executed) in (?:non-interactive|headless) mode|user (?:denied|cancell?ed|rejected)",
    re.IGNORECASE | re.MULTILINE)
_ROUTE = re.compile(r"/models/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$")


def exit_code(text: str | None) -> int | None:
    """The exit code the CLI reports for a shell command, or None when it reports none."""
    found = _EXIT.search(text or "")
    return int(found.group(1)) if found else None


@dataclass(slots=True)
class GeminiToolCall(ToolCall):
    """A ToolCall whose refusal is recognised by the Gemini CLI's wording.

    A refusal is an ``error`` response that says why the call was not run; a
    shell command that ran and printed the same words has an ``output``, not an
    ``error``, and is not one.
    """

    refused: bool = False

    @property
    def permission_denied(self) -> bool:
        """The agent refused to run the call (approval mode, policy, workspace rule)."""
        return bool(self.is_error) and self.refused and bool(_DENIALS.search(self.result or ""))


def _parts(content: Any) -> list[Mapping[str, Any]]:
    if not isinstance(content, Mapping) or not isinstance(content.get("parts"), list):
        return []
    return [p for p in content["parts"] if isinstance(p, Mapping)]


def _prompt_session(content: Mapping[str, Any]) -> int | None:
    """The session number of a user content with a text part that starts with the tag."""
    if content.get("role", "user") != "user":
        return None
    for part in _parts(content):
        text = part.get("text")
        if isinstance(text, str) and text.lstrip().startswith(SESSION_TAG):
            found = re.match(re.escape(SESSION_TAG) + r"(\d+)", text.lstrip())
            if found:
                return int(found.group(1))
    return None


def _declarations(tools: Any) -> list[Mapping[str, Any]]:
    """Every function declaration a request offers."""
    out: list[Mapping[str, Any]] = []
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, Mapping) and isinstance(tool.get("functionDeclarations"), list):
            out += [d for d in tool["functionDeclarations"] if isinstance(d, Mapping)]
    return out


def _result_text(response: Any) -> tuple[str, bool]:
    """A functionResponse's ``response`` as (text, is_error)."""
    if isinstance(response, Mapping):
        if "error" in response:
            err = response["error"]
            return (err if isinstance(err, str) else json.dumps(err)), True
        out = response.get("output", response.get("llmContent", response.get("content")))
        text = out if isinstance(out, str) else json.dumps(response if out is None else out)
    else:
        text = "" if response is None else str(response)
    code = exit_code(text)
    return text, code is not None and code != 0


def sample(schema: Any) -> Any:
    """The smallest value that satisfies a (Gemini-style, upper- or lower-case) JSON schema."""
    if not isinstance(schema, Mapping):
        return {}
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        props = schema.get("properties") if isinstance(schema.get("properties"), Mapping) else {}
        required = schema.get("required") if isinstance(schema.get("required"), list) else list(props)
        return {k: sample(props.get(k)) for k in required if isinstance(k, str)}
    if kind == "array":
        return [sample(schema["items"])] * int(schema.get("minItems") or 0) if "items" in schema else []
    return {"string": "", "integer": 1, "number": 1, "boolean": False}.get(kind)


class GeminiModel(ScriptedModel):
    """The model's logic without any I/O: a generateContent body in, a response out.

    Thread-safe; one instance serves one agent run (all of its sessions). Its
    bookkeeping (transcript, ids, ``record``) is ``ScriptedModel``'s. With a
    ``feed``, session 1 plays the feed's steps instead of the script's.
    """

    def __init__(self, script: Script, tools: Mapping[str, str] | None = None,
                 feed: Feed | None = None) -> None:
        super().__init__(script, feed)
        self.tools = dict(GEMINI_TOOLS if tools is None else tools)

    def _call_id(self, session: int, index: int) -> str:
        return f"{CALL_ID_PREFIX}{session}_{index}_{self._nonce}"

    def generate(self, body: Mapping[str, Any], method: str = "POST",
                 path: str = "/v1beta/models/m:generateContent") -> dict[str, Any]:
        """The GenerateContentResponse answering one request body."""
        raw = body.get("contents")
        contents = [c for c in raw if isinstance(c, Mapping)] if isinstance(raw, list) else []
        offered = _declarations(body.get("tools"))
        session = next((n for n in map(_prompt_session, contents) if n is not None), None)
        step_index = None
        if session is not None and offered:
            with self._lock:
                step_index = self._main_step(session, contents)
        live: Step | None = None
        if step_index is not None and self.feed is not None and session == 1:
            if step_index < self.feed.answered_count:
                self.feed.diverge()  # the conversation lost answered steps: end, never replay
            else:
                self.feed.answered(step_index)
                live = self.feed.wait_step(step_index)  # outside the lock: side requests go on
        with self._lock:
            kind, part = "side", {"text": self._side_text(body)}
            if session is not None and step_index is not None:
                kind = "main"
                if session not in self.transcript.system_notes:
                    texts = [("system", "\n".join(str(p.get("text", ""))
                                                  for p in _parts(body.get("systemInstruction"))))]
                    texts += [(f"{d.get('name')} tool", d["description"]) for d in offered
                              if isinstance(d, dict) and isinstance(d.get("description"), str)]
                    self.transcript.system_notes[session] = sandbox_lines(texts)
                step = live
                if step is None and (self.feed is None or session != 1):
                    steps = self.script.steps(session)
                    step = steps[step_index] if step_index < len(steps) else None
                if step is not None:
                    call = self.transcript.call(session, step_index)
                    if call is None:
                        call = GeminiToolCall(session, step_index, step, self._call_id(session, step_index))
                        self.transcript.calls.append(call)
                    call.sent += 1
                    part = {"functionCall": {"id": call.id, "name": self.tools.get(step.tool, step.tool),
                                             "args": dict(step.input)}}
                else:
                    self.transcript.finals[session] = self.transcript.finals.get(session, 0) + 1
                    part = {"text": self.script.final_text}
            answer = f"functionCall:{part['functionCall']['name']}" if "functionCall" in part else "text"
            config = body.get("generationConfig") if isinstance(body.get("generationConfig"), Mapping) else {}
            max_tokens = config.get("maxOutputTokens")
            self.transcript.exchanges.append(Exchange(
                method, path, kind, session, answer, "stream" in path.lower(),
                max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None,
                len(offered)))
            response_id = self._message_id()
        prompt = _estimate_tokens(contents)
        out = max(1, len(json.dumps(part)) // 4)
        return {"candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP",
                                "index": 0}],
                "usageMetadata": {"promptTokenCount": prompt, "candidatesTokenCount": out,
                                  "totalTokenCount": prompt + out},
                "modelVersion": str(_ROUTE.search(urlsplit(path).path).group("model"))
                if _ROUTE.search(urlsplit(path).path) else "sandboxcheck-scripted",
                "responseId": response_id}

    @staticmethod
    def _side_text(body: Mapping[str, Any]) -> str:
        """What a side request gets: a value of its JSON schema when it asks for JSON, else "OK"."""
        config = body.get("generationConfig") if isinstance(body.get("generationConfig"), Mapping) else {}
        schema = config.get("responseJsonSchema", config.get("responseSchema"))
        if schema is not None or config.get("responseMimeType") == "application/json":
            return json.dumps(sample(schema))
        return SIDE_TEXT

    def _main_step(self, session: int, contents: Sequence[Mapping[str, Any]]) -> int | None:  # type: ignore[override]
        """Index of the next step when ``contents`` are this session's main conversation, else None.

        Main means: this server's calls are exactly the session's first ones,
        the last content is the user's and answers the last call (or there is
        no call yet, and no model text after the prompt). Results are recorded
        here, once.
        """
        ours: list[str] = []
        results: dict[str, tuple[str, bool, bool]] = {}
        anchor, last_text = -1, -1
        for i, content in enumerate(contents):
            for part in _parts(content):
                call, resp = part.get("functionCall"), part.get("functionResponse")
                if isinstance(call, Mapping) and str(call.get("id", "")).startswith(CALL_ID_PREFIX):
                    ours.append(str(call["id"]))
                elif isinstance(resp, Mapping):
                    text, failed = _result_text(resp.get("response"))
                    refused = isinstance(resp.get("response"), Mapping) and "error" in resp["response"]
                    results[str(resp.get("id"))] = (text, failed, refused)
                elif content.get("role") == "model" and isinstance(part.get("text"), str) \
                        and not part.get("thought"):
                    last_text = i
            if anchor < 0 and _prompt_session(content) == session:
                anchor = i
        if ours != [self._call_id(session, i) for i in range(len(ours))]:
            return None  # another session's or another run's ids: not this conversation
        last = contents[-1] if contents else {}
        if last.get("role", "user") != "user":
            return None
        if ours:
            answered = {str(p["functionResponse"].get("id")) for p in _parts(last)
                        if isinstance(p.get("functionResponse"), Mapping)}
            if ours[-1] not in answered:
                return None
        elif anchor < 0 or last_text > anchor:
            return None
        for i, call_id in enumerate(ours):
            recorded = self.transcript.call(session, i)
            if recorded is not None and recorded.result is None and call_id in results:
                recorded.result, recorded.is_error, refused = results[call_id]
                recorded.answered_at = time.time()
                if isinstance(recorded, GeminiToolCall):
                    recorded.refused = refused
        return len(ours)

    def models(self) -> dict[str, Any]:
        """What ``GET /v1beta/models`` lists: the scripted model."""
        return {"models": [{"name": "models/sandboxcheck-scripted", "displayName": "sandboxcheck scripted model",
                            "supportedGenerationMethods": ["generateContent", "streamGenerateContent",
                                                           "countTokens"]}]}


def sse_body(response: Mapping[str, Any]) -> bytes:
    """A whole ``alt=sse`` body for ``response`` (the API sends each chunk as one ``data:`` event)."""
    return f"data: {json.dumps(response, separators=(',', ':'))}\r\n\r\n".encode()


class _GeminiHandler(_Handler):
    """``messages_api``'s handler (body reading, sending, HEAD) with the Gemini API routes."""

    def _api_error(self, status: int, message: str, kind: str) -> None:
        self._send(status, json.dumps({"error": {"code": status, "message": message, "status": kind}}).encode())

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        model: GeminiModel = self.server.model  # type: ignore[assignment]
        if urlsplit(self.path).path.rstrip("/").endswith("/models"):
            model.record("GET", self.path, "models")
            self._send(200, json.dumps(model.models()).encode())
            return
        model.record("GET", self.path, "unknown")
        self._api_error(404, f"sandboxcheck scripted model: no GET {urlsplit(self.path).path}", "NOT_FOUND")

    def do_POST(self) -> None:  # noqa: N802
        model: GeminiModel = self.server.model  # type: ignore[assignment]
        try:
            body = json.loads(self._body() or b"{}")
        except ValueError:
            body = None
        route = _ROUTE.search(urlsplit(self.path).path)
        if not isinstance(body, dict):
            model.record("POST", self.path, "unknown")
            self._api_error(400, "body is not a JSON object", "INVALID_ARGUMENT")
            return
        method = route.group("method") if route else ""
        if method == "countTokens":
            model.record("POST", self.path, "count_tokens")
            self._send(200, json.dumps({"totalTokens": _estimate_tokens(body.get("contents") or [])}).encode())
            return
        if method not in ("generateContent", "streamGenerateContent"):
            model.record("POST", self.path, "unknown")
            self._api_error(404, f"sandboxcheck scripted model: no POST {urlsplit(self.path).path}", "NOT_FOUND")
            return
        response = model.generate(body, "POST", self.path)
        if method == "streamGenerateContent":
            self._send(200, sse_body(response), "text/event-stream")
        else:
            self._send(200, json.dumps(response).encode())


class GeminiServer(ModelServer):
    """The scripted Gemini model on an ephemeral port of 127.0.0.1; a context manager.

    The interface is ``ModelServer``'s: ``start``, ``stop``, ``url`` (for
    ``GOOGLE_GEMINI_BASE_URL``) and ``transcript``.
    """

    handler = _GeminiHandler

    def __init__(self, script: Script, tools: Mapping[str, str] | None = None,
                 feed: Feed | None = None) -> None:
        super().__init__(script, feed, model=GeminiModel(script, tools, feed))
