"""A scripted stand-in for the OpenAI Responses API, so the Codex CLI runs offline.

Codex talks to the ``base_url`` of its model provider (``wire_api =
"responses"``): ``POST {base_url}/responses`` with ``stream: true``. This
server answers on 127.0.0.1 with the same kind of script as
``model_server.ModelServer`` (whose Step, Script, ToolCall and Transcript it
shares): for each step one tool call, then a final assistant message. A step
names the harness's tool (Bash, Write, Edit); ``tools`` maps it to the
agent's (``exec_command``, ``apply_patch``). A tool the request offers as a
freeform tool (``"type": "custom"``, Codex's ``apply_patch``) is called with a
``custom_tool_call`` whose input is the step's ``input["input"]``; any other
with a ``function_call`` whose arguments are the step's input as JSON.

Every ``function_call_output`` / ``custom_tool_call_output`` that comes back
is recorded (evidence seen outside the sandbox, in a process the agent cannot
reach). The Responses API has no ``is_error``: a result counts as an error
when the command's exit code (``Process exited with code N``, ``Exit code:
N``) is not 0, or when no exit code is reported at all (the agent refused or
could not run the call); see ``ResponsesToolCall``.

Which step to play is read from the conversation, as in ``model_server``: the
number of this server's call ids already in ``input`` says how far the session
got, so a retried request gets the same answer, and requests that are not the
session's main conversation get a plain "OK" message and never advance the
script: no user message that starts with the session tag (the prompt the
harness gave), no tools, foreign call ids, or already answered by an assistant
message. The tag must open a message of its own because Codex's sub-agents
quote the conversation: its approval reviewer (``--approve-for-me``) gets the
whole history, the tag inside it, with tools of its own.

Lenient about what the client sends (unknown fields and item types, content
as a string or as parts, outputs as a string, parts or an object), strict
about what it returns: the event sequence of the real API
(``response.created``, ``response.in_progress``,
``response.output_item.added``, the item's delta and done events,
``response.output_item.done``, ``response.completed``) with increasing
``sequence_number``, unique ids and complete ``usage``.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .script import SESSION_TAG, SIDE_TEXT, Exchange, Script, ToolCall, sandbox_lines, session_in_text
from .messages_api import ModelServer, ScriptedModel, _estimate_tokens, _Handler

#: Prefix of the call ids this server hands out (``call_sc<session>_<step>_<nonce>``).
CALL_ID_PREFIX = "call_sc"
#: The Codex tool each of the harness's tools is played as.
CODEX_TOOLS: Mapping[str, str] = {"Bash": "exec_command", "Write": "apply_patch", "Edit": "apply_patch"}

_CALLS = ("function_call", "custom_tool_call")
_OUTPUTS = ("function_call_output", "custom_tool_call_output")
#: How Codex reports the exit of what it ran: ``Process exited with code N``
#: (exec_command) and ``Exit code: N`` (apply_patch).
_EXIT = re.compile(r"^(?:Process exited with code|Exit code:)\s*(-?\d+)\s*$", re.MULTILINE)
#: How Codex 0.169 says it refused a call instead of running it: "approval
#: policy is Never; reject command — you cannot ask for escalated permissions
#: if the approval policy is Never" (exec_command with require_escalated),
#: "patch rejected: writing outside of the project; rejected by user approval
#: settings" (apply_patch outside the writable roots), "Automatic approval review
#: failed: ... The action was not executed" (--approve-for-me).
_DENIALS = re.compile(
    r"reject(?:ed)? (?:command|by (?:the )?user)|^patch rejected|approval policy is never|"
    r"approval review (?:failed|denied|rejected)|action was not executed|"
    r"requires? approval|declined by (?:the )?user|forbidden by (?:the )?(?:exec ?)?policy|"
    r"blocked by (?:the )?(?:exec ?)?policy",
    re.IGNORECASE | re.MULTILINE)


def exit_code(text: str | None) -> int | None:
    """The exit code Codex reports in a tool result, or None when it reports none."""
    found = _EXIT.search(text or "")
    return int(found.group(1)) if found else None


@dataclass(slots=True)
class ResponsesToolCall(ToolCall):
    """A ToolCall whose refusal is recognised by Codex's wording.

    A refusal is a result with no exit code (nothing ran) that says why the
    call was rejected; a command that ran and printed the same words is not one.
    """

    @property
    def permission_denied(self) -> bool:
        """The agent refused to run the call (approval policy), as opposed to running it."""
        text = self.result or ""
        return bool(self.is_error) and exit_code(text) is None and bool(_DENIALS.search(text))


def _parts_text(content: Any) -> str:
    """The text of a content value: a string, or parts that carry ``text``."""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        return _parts_text(content.get("content", content.get("text", "")))
    if isinstance(content, list):
        return "\n".join(_parts_text(p) if not isinstance(p, str) else p for p in content)
    return "" if content is None else str(content)


def _item_type(item: Mapping[str, Any]) -> str:
    """An input item's type (an item with a role and no type is a message)."""
    return str(item.get("type") or ("message" if "role" in item else ""))


def _prompt_session(item: Mapping[str, Any]) -> int | None:
    """The session number of a user message that starts with the session tag (the prompt)."""
    if _item_type(item) != "message" or item.get("role") != "user":
        return None
    text = _parts_text(item.get("content")).lstrip()
    return session_in_text(text) if text.startswith(SESSION_TAG) else None


def _is_error(output: Any, text: str) -> bool:
    """Whether a tool output reports a failure (see the module docstring)."""
    if isinstance(output, Mapping) and isinstance(output.get("success"), bool):
        return not output["success"]
    code = exit_code(text)
    return code is None or code != 0


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens}


class ResponsesModel(ScriptedModel):
    """The model's logic without any I/O: a Responses request body in, a response object out.

    Thread-safe; one instance serves one agent run (all of its sessions). Its
    bookkeeping (transcript, ids, ``record``) is ``ScriptedModel``'s.
    """

    def __init__(self, script: Script, tools: Mapping[str, str] | None = None) -> None:
        super().__init__(script)
        self.tools = dict(CODEX_TOOLS if tools is None else tools)

    def _call_id(self, session: int, index: int) -> str:
        return f"{CALL_ID_PREFIX}{session}_{index}_{self._nonce}"

    def _item_id(self, prefix: str) -> str:
        return f"{prefix}_sc{self._nonce}{next(self._ids):06d}"

    def respond(self, body: Mapping[str, Any], method: str = "POST",
                path: str = "/v1/responses") -> dict[str, Any]:
        """The completed response object answering one ``/v1/responses`` request body."""
        raw_input, raw_tools = body.get("input"), body.get("tools")
        if isinstance(raw_input, str):  # the API's shorthand for one user message
            raw_input = [{"type": "message", "role": "user", "content": raw_input}]
        items = [i for i in raw_input if isinstance(i, Mapping)] if isinstance(raw_input, list) else []
        tools = [t for t in raw_tools if isinstance(t, Mapping)] if isinstance(raw_tools, list) else []
        model = str(body.get("model") or "sandboxcheck-scripted")
        messages = [(str(i.get("role")), _parts_text(i.get("content"))) for i in items if _item_type(i) == "message"]
        session = next((n for n in map(_prompt_session, items) if n is not None), None)
        with self._lock:
            kind, item = "side", self._message(SIDE_TEXT)
            step_index = self._main_step(session, items) if session is not None and tools else None
            if session is not None and step_index is not None:
                kind = "main"
                if session not in self.transcript.system_notes:
                    developer = "\n".join(text for role, text in messages if role in ("developer", "system"))
                    texts = [("system", "\n".join(filter(None, [_parts_text(body.get("instructions")), developer])))]
                    texts += [(f"{t.get('name')} tool", t["description"]) for t in tools
                              if isinstance(t, dict) and isinstance(t.get("description"), str)]
                    self.transcript.system_notes[session] = sandbox_lines(texts)
                steps = self.script.steps(session)
                if step_index < len(steps):
                    step = steps[step_index]
                    call = self.transcript.call(session, step_index)
                    if call is None:
                        call = ResponsesToolCall(session, step_index, step, self._call_id(session, step_index))
                        self.transcript.calls.append(call)
                    call.sent += 1
                    item = self._tool_call(call.id, self.tools.get(step.tool, step.tool), step.input, tools)
                else:
                    self.transcript.finals[session] = self.transcript.finals.get(session, 0) + 1
                    item = self._message(self.script.final_text)
            answer = f"{item['type']}:{item['name']}" if item["type"] in _CALLS else "text"
            max_tokens = body.get("max_output_tokens")
            self.transcript.exchanges.append(Exchange(
                method, path, kind, session, answer, bool(body.get("stream")),
                max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None,
                len(tools)))
            response_id = self._item_id("resp")
        return {"id": response_id, "object": "response", "created_at": int(time.time()),
                "status": "completed", "error": None, "incomplete_details": None, "model": model,
                "output": [item], "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
                "tool_choice": body.get("tool_choice", "auto"),
                "usage": _usage(_estimate_tokens(items), max(1, len(json.dumps(item)) // 4))}

    def _message(self, text: str) -> dict[str, Any]:
        return {"type": "message", "id": self._message_id(), "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}]}

    def _tool_call(self, call_id: str, name: str, args: Mapping[str, Any],
                   offered: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """A call of tool ``name``: freeform when the request offers it as a custom tool."""
        if any(t.get("type") == "custom" and t.get("name") == name for t in offered):
            return {"type": "custom_tool_call", "id": self._item_id("ctc"), "status": "completed",
                    "call_id": call_id, "name": name, "input": str(args.get("input", ""))}
        return {"type": "function_call", "id": self._item_id("fc"), "status": "completed",
                "call_id": call_id, "name": name, "arguments": json.dumps(dict(args))}

    def _main_step(self, session: int, items: Sequence[Mapping[str, Any]]) -> int | None:  # type: ignore[override]
        """Index of the next step when ``items`` are this session's main conversation, else None.

        Main means: this server's calls in ``input`` are exactly the session's
        first ones, the output of the last one is there (or there is none yet),
        and no assistant message came after it (or after the opening prompt).
        Results are recorded here, once.
        """
        ours: list[str] = []
        outputs: dict[str, tuple[Any, int]] = {}
        anchor, last_answer = -1, -1
        for i, item in enumerate(items):
            kind = _item_type(item)
            if kind in _CALLS and str(item.get("call_id", "")).startswith(CALL_ID_PREFIX):
                ours.append(str(item["call_id"]))
            elif kind in _OUTPUTS:
                outputs[str(item.get("call_id"))] = (item.get("output"), i)
            elif kind == "message" and item.get("role") == "assistant":
                last_answer = i
            elif anchor < 0 and _prompt_session(item) == session:
                anchor = i
        if ours != [self._call_id(session, i) for i in range(len(ours))]:
            return None  # another session's or another run's ids: not this conversation
        if ours:
            if ours[-1] not in outputs:
                return None
            anchor = outputs[ours[-1]][1]
        if anchor < 0 or last_answer > anchor:
            return None
        for i, call_id in enumerate(ours):
            call = self.transcript.call(session, i)
            if call is not None and call.result is None and call_id in outputs:
                output = outputs[call_id][0]
                call.result = _parts_text(output)
                call.is_error = _is_error(output, call.result)
                call.answered_at = time.time()
        return len(ours)

    def models(self) -> dict[str, Any]:
        """What ``GET /v1/models`` lists: the scripted model."""
        return {"object": "list", "data": [{"id": "sandboxcheck-scripted", "object": "model", "created": 0,
                                             "owned_by": "sandboxcheck"}]}


def response_events(response: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The streaming events for a completed response, in the order the API sends them."""
    pending = {**response, "status": "in_progress", "output": [], "usage": None}
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": pending}), ("response.in_progress", {"response": pending})]
    for index, item in enumerate(response["output"]):
        at = {"output_index": index, "item_id": item["id"]}
        if item["type"] == "message":
            events.append(("response.output_item.added", {"output_index": index,
                                                          "item": {**item, "status": "in_progress", "content": []}}))
            for c, part in enumerate(item["content"]):
                events.append(("response.content_part.added",
                               {**at, "content_index": c, "part": {**part, "text": ""}}))
                events.append(("response.output_text.delta", {**at, "content_index": c, "delta": part["text"]}))
                events.append(("response.output_text.done", {**at, "content_index": c, "text": part["text"]}))
                events.append(("response.content_part.done", {**at, "content_index": c, "part": part}))
        else:
            field_name, prefix = (("arguments", "response.function_call_arguments")
                                  if item["type"] == "function_call" else ("input", "response.custom_tool_call_input"))
            events.append(("response.output_item.added", {"output_index": index,
                                                          "item": {**item, "status": "in_progress", field_name: ""}}))
            events.append((f"{prefix}.delta", {**at, "delta": item[field_name]}))
            events.append((f"{prefix}.done", {**at, field_name: item[field_name]}))
        events.append(("response.output_item.done", {"output_index": index, "item": item}))
    events.append(("response.completed", {"response": dict(response)}))
    return [(name, {"type": name, "sequence_number": n, **data}) for n, (name, data) in enumerate(events)]


def response_sse(response: Mapping[str, Any]) -> bytes:
    """A whole SSE response body for ``response``."""
    return "".join(f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
                   for name, data in response_events(response)).encode()


class _ResponsesHandler(_Handler):
    """``model_server``'s handler (body reading, sending, HEAD) with the Responses routes."""

    def _api_error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        self._send(status, json.dumps({"error": {"message": message, "type": kind, "param": None,
                                                 "code": None}}).encode())

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        model: ResponsesModel = self.server.model  # type: ignore[assignment]
        if urlsplit(self.path).path.rstrip("/").endswith("/models"):
            model.record("GET", self.path, "models")
            self._send(200, json.dumps(model.models()).encode())
            return
        model.record("GET", self.path, "unknown")
        self._api_error(404, f"sandboxcheck scripted model: no GET {urlsplit(self.path).path}")

    def _json_body(self) -> dict[str, Any] | None:
        """The request body as a JSON object, or None when it is not one."""
        try:
            body = json.loads(self._body() or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def do_POST(self) -> None:  # noqa: N802
        model: ResponsesModel = self.server.model  # type: ignore[assignment]
        body, route = self._json_body(), urlsplit(self.path).path.rstrip("/")
        if body is None:
            model.record("POST", self.path, "unknown")
            self._api_error(400, "body is not a JSON object")
            return
        if not route.endswith("/responses"):
            model.record("POST", self.path, "unknown")
            self._api_error(404, f"sandboxcheck scripted model: no POST {route}")
            return
        response = model.respond(body, "POST", self.path)
        if body.get("stream"):
            self._send(200, response_sse(response), "text/event-stream")
        else:
            self._send(200, json.dumps(response).encode())


class ResponsesServer(ModelServer):
    """The scripted Responses model on an ephemeral port of 127.0.0.1; a context manager.

    The interface is ``ModelServer``'s: ``start``, ``stop``, ``url`` (the
    provider's ``base_url`` is ``url + "/v1"``) and ``transcript``.
    """

    handler = _ResponsesHandler

    def __init__(self, script: Script, tools: Mapping[str, str] | None = None) -> None:
        super().__init__(script, model=ResponsesModel(script, tools))
