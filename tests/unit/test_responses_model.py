"""The scripted Responses API server, spoken to with a stdlib HTTP client.

The request bodies replay the shapes Codex 0.169.0 sends (trimmed):
``POST /v1/responses`` with ``stream: true``, ``instructions`` empty, the
system prompt and the permissions block as ``developer`` messages, an
``environment_context`` user message before the prompt, ``exec_command`` as
a function tool, ``apply_patch`` as a freeform (``custom``) tool, fields the
server does not know (``client_metadata``, ``prompt_cache_key``, ``include``),
and outputs that come back as ``function_call_output`` /
``custom_tool_call_output`` items with ``Process exited with code N`` or
``Exit code: N`` in their text.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from test_model_server import request  # the same stdlib client

from sandboxcheck.targets.agents.script import FINAL_TEXT, SESSION_TAG, SIDE_TEXT, Script, Step
from sandboxcheck.targets.agents.responses_api import CALL_ID_PREFIX, ResponsesModel, ResponsesServer, ResponsesToolCall, exit_code, response_events

EXEC_TOOL = {
    "type": "function", "name": "exec_command", "strict": False,
    "description": "Runs a command in a PTY, returning output or a session ID for ongoing interaction.",
    "parameters": {"type": "object", "properties": {
        "cmd": {"type": "string"}, "justification": {"type": "string"},
        "sandbox_permissions": {"type": "string", "enum": ["use_default", "require_escalated"],
                                "description": "Per-command sandbox override. Defaults to `use_default`; "
                                               "use `require_escalated` for unsandboxed execution."}},
        "required": ["cmd"], "additionalProperties": False},
}
PATCH_TOOL = {"type": "custom", "name": "apply_patch",
              "description": "The `apply_patch` tool can be used to edit files. This is a FREEFORM tool.",
              "format": {"type": "grammar", "syntax": "lark", "definition": "start: begin_patch hunk+ end_patch"}}
HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream", "originator": "codex_exec",
           "User-Agent": "codex_exec/0.169.0 (Debian 12.0.0; x86_64) unknown (codex_exec; 0.169.0)",
           "session-id": "01a2022f-90a9-7173-a44a-4c0286714348", "x-codex-beta-features": "remote_compaction_v2"}
PERMISSIONS = ("<permissions instructions>\nFilesystem sandboxing defines which files can be read or written. "
               "`sandbox_mode` is `workspace-write`: The sandbox permits reading files, and editing files in "
               "`cwd` and `writable_roots`.\nApproval policy is currently never. Do not provide the "
               "`sandbox_permissions` for any reason, commands will be rejected.\n</permissions instructions>")
PATCH = "*** Begin Patch\n*** Add File: /w/out.txt\n+hello\n*** End Patch\n"


def message(role: str, text: str) -> dict[str, Any]:
    return {"type": "message", "id": f"msg_{abs(hash(text)) % 10**8}", "role": role,
            "content": [{"type": "input_text", "text": text}]}


def opening(session: int = 1, stream: bool = True, tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The first request of a session, as codex exec sends it."""
    return {
        "model": "gpt-5.5", "instructions": "", "stream": stream, "tool_choice": "auto",
        "parallel_tool_calls": True, "reasoning": {"effort": "medium"}, "store": False,
        "include": ["reasoning.encrypted_content"], "prompt_cache_key": "01a2022f", "text": {"verbosity": "low"},
        "client_metadata": {"x-codex-installation-id": "96a2f6e6"},
        "input": [message("developer", "You are Codex, a coding agent based on GPT-5."),
                  message("developer", PERMISSIONS),
                  message("user", "<environment_context>\n  <cwd>/w</cwd>\n</environment_context>"),
                  message("user", f"{SESSION_TAG}{session}: run the scripted steps of this session.")],
        "tools": [EXEC_TOOL, PATCH_TOOL, {"type": "web_search", "external_web_access": False}]
        if tools is None else tools,
    }


def answer(body: dict[str, Any], reply: dict[str, Any], output: Any) -> dict[str, Any]:
    """The next request: the model's call, then the agent's output for it."""
    out = json.loads(json.dumps(body))
    call = reply["output"][0]
    kind = "custom_tool_call_output" if call["type"] == "custom_tool_call" else "function_call_output"
    out["input"] += [call, {"type": kind, "id": "fco_1", "call_id": call["call_id"], "output": output}]
    return out


def parse_sse(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in data.decode().split("\n\n"):
        if chunk.strip():
            name, payload = (line.split(": ", 1)[1] for line in chunk.split("\n"))
            events.append((name, json.loads(payload)))
    return events


def response_of(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Rebuild the response from its events, checking the order and fields the API guarantees."""
    names = [n for n, _ in events]
    assert names[:2] == ["response.created", "response.in_progress"] and names[-1] == "response.completed"
    assert [ev["sequence_number"] for _, ev in events] == list(range(len(events)))
    assert all(ev["type"] == name for name, ev in events)
    created = events[0][1]["response"]
    assert created["status"] == "in_progress" and created["output"] == [] and created["usage"] is None
    done = events[-1][1]["response"]
    assert done["id"] == created["id"] and done["status"] == "completed" and done["object"] == "response"
    assert set(done["usage"]) == {"input_tokens", "input_tokens_details", "output_tokens",
                                  "output_tokens_details", "total_tokens"}
    assert done["usage"]["total_tokens"] == done["usage"]["input_tokens"] + done["usage"]["output_tokens"]
    (item,) = done["output"]
    added = next(ev["item"] for n, ev in events if n == "response.output_item.added")
    assert added["id"] == item["id"] and added["status"] == "in_progress"
    assert next(ev["item"] for n, ev in events if n == "response.output_item.done") == item
    middle = names[3:-2]
    if item["type"] == "message":
        assert added["content"] == []
        assert middle == ["response.content_part.added", "response.output_text.delta",
                          "response.output_text.done", "response.content_part.done"]
        assert "".join(ev["delta"] for n, ev in events if n.endswith("output_text.delta")) \
            == item["content"][0]["text"]
    elif item["type"] == "function_call":
        assert added["arguments"] == ""
        assert middle == ["response.function_call_arguments.delta", "response.function_call_arguments.done"]
        assert events[4][1]["arguments"] == item["arguments"] and events[4][1]["item_id"] == item["id"]
    else:
        assert item["type"] == "custom_tool_call" and added["input"] == ""
        assert middle == ["response.custom_tool_call_input.delta", "response.custom_tool_call_input.done"]
        assert events[4][1]["input"] == item["input"]
    return done


def post(srv: ResponsesServer, body: dict[str, Any]) -> dict[str, Any]:
    """POST a request body; the response it streams (rebuilt and checked) or returns."""
    status, headers, data = request(srv, "POST", "/v1/responses", body, HEADERS)
    streamed = bool(body.get("stream"))
    assert (status, headers["content-type"]) == (200, "text/event-stream" if streamed else "application/json")
    assert int(headers["content-length"]) == len(data)
    return response_of(parse_sse(data)) if streamed else json.loads(data)


@pytest.fixture()
def server() -> Iterator[ResponsesServer]:
    script = Script(sessions=(
        (Step("Bash", {"cmd": "echo one"}),
         Step("Bash", {"cmd": "echo one", "sandbox_permissions": "require_escalated", "justification": "why"}),
         Step("Write", {"input": PATCH, "file_path": "/w/out.txt"})),
        (Step("Bash", {"cmd": "echo two"}),),
    ))
    with ResponsesServer(script) as srv:
        yield srv


# --- the conversation ----------------------------------------------------------

def test_plays_the_script_with_codex_tools_and_records_every_output(server: ResponsesServer) -> None:
    first = opening()
    r1 = post(server, first)
    call1 = r1["output"][0]
    assert call1["type"] == "function_call" and call1["name"] == "exec_command" and call1["status"] == "completed"
    assert json.loads(call1["arguments"]) == {"cmd": "echo one"}
    assert call1["call_id"].startswith(CALL_ID_PREFIX) and call1["id"].startswith("fc_")
    second = answer(first, r1, "Chunk ID: e3e787\nWall time: 0.0000 seconds\nProcess exited with code 1\n"
                               "Original token count: 5\nOutput:\nRead-only file system\n")
    r2 = post(server, second)
    assert json.loads(r2["output"][0]["arguments"])["sandbox_permissions"] == "require_escalated"
    third = answer(second, r2, "approval policy is Never; reject command \u2014 you cannot ask for escalated "
                               "permissions if the approval policy is Never")
    r3 = post(server, third)
    call3 = r3["output"][0]
    # apply_patch is offered as a freeform tool: the patch text is the call's input.
    assert call3["type"] == "custom_tool_call" and call3["name"] == "apply_patch" and call3["input"] == PATCH
    r4 = post(server, answer(third, r3, "Exit code: 0\nWall time: 0 seconds\nOutput:\nSuccess. Updated the "
                                        "following files:\nA /w/out.txt\n"))
    assert r4["output"][0]["content"] == [{"type": "output_text", "text": FINAL_TEXT, "annotations": []}]
    ids = [r["id"] for r in (r1, r2, r3, r4)] + [r["output"][0]["id"] for r in (r1, r2, r3, r4)]
    assert len(set(ids)) == len(ids)
    calls = server.transcript.calls
    assert all(isinstance(c, ResponsesToolCall) for c in calls)
    assert [(c.index, c.step.tool, c.is_error, c.permission_denied) for c in calls] == [
        (0, "Bash", True, False),  # the command ran and failed
        (1, "Bash", True, True),  # the agent refused to leave its sandbox
        (2, "Write", False, False)]
    assert "Read-only file system" in (calls[0].result or "")
    assert server.transcript.finals == {1: 1}
    assert [e.answer for e in server.transcript.exchanges] == [
        "function_call:exec_command", "function_call:exec_command", "custom_tool_call:apply_patch", "text"]
    notes = server.transcript.system_notes[1]
    assert any("`sandbox_mode` is `workspace-write`" in n for n in notes)
    assert any("Do not provide the `sandbox_permissions`" in n for n in notes)


def test_a_retried_request_gets_the_same_answer_and_does_not_advance(server: ResponsesServer) -> None:
    first = opening()
    a, b = post(server, first), post(server, first)
    assert a["output"][0]["call_id"] == b["output"][0]["call_id"]
    assert a["id"] != b["id"]  # a new response, the same call
    assert len(server.transcript.calls) == 1 and server.transcript.calls[0].sent == 2
    second = answer(first, a, "Process exited with code 0\nOutput:\none\n")
    c, d = post(server, second), post(server, second)
    assert c["output"][0]["call_id"] == d["output"][0]["call_id"] != a["output"][0]["call_id"]
    assert [c.sent for c in server.transcript.calls] == [2, 2]
    assert server.transcript.calls[0].result == "Process exited with code 0\nOutput:\none\n"


def test_side_requests_get_a_harmless_reply_and_never_advance(server: ResponsesServer) -> None:
    untagged = {**opening(), "input": [message("user", "Summarize the conversation so far.")]}
    no_tools = opening(tools=[])
    # Codex's approval reviewer (--approve-for-me) quotes the whole history, tag included,
    # with tools of its own: not the session's conversation.
    review = {**opening(), "input": [
        message("developer", "You are judging one planned coding-agent action."),
        message("user", "The following is the Codex agent history whose request action you are assessing.\n"
                        f">>> TRANSCRIPT START\n[1] user: {SESSION_TAG}1: run the scripted steps\n")]}
    for body in (untagged, no_tools, review):
        reply = post(server, body)
        assert reply["output"][0]["content"][0]["text"] == SIDE_TEXT
    first = opening()
    r1 = post(server, first)
    # After an assistant message the turn is over: a request built on it is not the main one.
    after = answer(first, r1, "Process exited with code 0\n")
    after["input"] += [{"type": "message", "role": "assistant", "content": [{"type": "output_text",
                                                                             "text": "done"}]},
                       message("user", "What next?")]
    assert post(server, after)["output"][0]["content"][0]["text"] == SIDE_TEXT
    assert [e.kind for e in server.transcript.exchanges] == ["side", "side", "side", "main", "side"]
    assert len(server.transcript.calls) == 1 and server.transcript.calls[0].sent == 1
    # The main conversation then goes on where it was.
    assert json.loads(post(server, answer(first, r1, "Process exited with code 0\n"))["output"][0]
                      ["arguments"])["sandbox_permissions"] == "require_escalated"


def test_outputs_of_another_run_are_not_this_conversation(server: ResponsesServer) -> None:
    body = opening()
    body["input"] += [{"type": "function_call", "call_id": f"{CALL_ID_PREFIX}1_0_ffffff", "name": "exec_command",
                       "arguments": "{}"},
                      {"type": "function_call_output", "call_id": f"{CALL_ID_PREFIX}1_0_ffffff", "output": "x"}]
    assert post(server, body)["output"][0]["content"][0]["text"] == SIDE_TEXT
    assert server.transcript.calls == []


def test_sessions_are_told_apart_by_their_tag(server: ResponsesServer) -> None:
    second = opening(session=2)
    r = post(server, second)
    assert json.loads(r["output"][0]["arguments"]) == {"cmd": "echo two"}
    post(server, answer(second, r, "Process exited with code 0\nOutput:\ntwo\n"))
    call = server.transcript.call(2, 0)
    assert call is not None and call.is_error is False and call.result is not None and "two" in call.result
    assert server.transcript.finals == {2: 1}
    assert post(server, opening(session=3))["output"][0]["content"][0]["text"] == FINAL_TEXT


def test_a_tool_offered_as_a_function_is_called_with_json_arguments() -> None:
    model = ResponsesModel(Script(((Step("Write", {"input": PATCH}),),)))
    body = opening(tools=[EXEC_TOOL, {"type": "function", "name": "apply_patch", "parameters": {}}])
    (item,) = model.respond(body)["output"]
    assert item["type"] == "function_call" and json.loads(item["arguments"]) == {"input": PATCH}
    # Another mapping plays the harness's tools as other names.
    model = ResponsesModel(Script(((Step("Bash", {"command": "ls"}),),)), tools={"Bash": "shell"})
    (item,) = model.respond(opening(tools=[EXEC_TOOL]))["output"]
    assert item["name"] == "shell"


# --- lenient about requests ------------------------------------------------------

def test_lenient_about_input_shapes() -> None:
    model = ResponsesModel(Script(((Step("Bash", {"cmd": "a"}), Step("Bash", {"cmd": "b"})),)))
    # input items without a type, content as a plain string, unknown item types and fields.
    body: dict[str, Any] = {"model": "m", "tools": [EXEC_TOOL], "unknown": {"x": 1},
            "input": [{"role": "user", "content": f"  {SESSION_TAG}1: go"},
                      {"type": "reasoning", "summary": [], "encrypted_content": "..."}]}
    first = model.respond(body)
    assert first["output"][0]["type"] == "function_call"
    # An output as content parts, then one as an object with ``success``.
    body["input"] += [first["output"][0], {"type": "function_call_output", "call_id": first["output"][0]["call_id"],
                                           "output": [{"type": "input_text", "text": "Process exited with code 0"},
                                                      {"type": "input_text", "text": "a"}]}]
    second = model.respond(body)
    body["input"] += [second["output"][0], {"type": "function_call_output",
                                            "call_id": second["output"][0]["call_id"],
                                            "output": {"content": "boom", "success": False}}]
    assert model.respond(body)["output"][0]["type"] == "message"
    a, b = model.transcript.calls
    assert (a.result, a.is_error) == ("Process exited with code 0\na", False)
    assert (b.result, b.is_error) == ("boom", True)
    # The API's shorthand: input as one string (no tag at its start: a side request).
    assert model.respond({"input": "hello", "tools": [EXEC_TOOL]})["output"][0]["type"] == "message"


def test_exit_codes_and_refusals() -> None:
    assert exit_code("Chunk ID: 1\nProcess exited with code 127\nOutput:\n") == 127
    assert exit_code("Exit code: 0\nWall time: 0 seconds\n") == 0
    assert exit_code("patch rejected: writing outside of the project") is None
    step = Step("Bash", {"cmd": "x"})
    refusals = ["approval policy is Never; reject command \u2014 you cannot ask for escalated permissions",
                "patch rejected: writing outside of the project; rejected by user approval settings",
                'exec_command failed: CreateProcess { message: "Rejected(\\"Automatic approval review failed: '
                'guardian assessment was not valid JSON\\nThe action was not executed ..."']
    for text in refusals:
        assert ResponsesToolCall(1, 0, step, "c", result=text, is_error=True).permission_denied, text
    # A command that ran (it has an exit code) is never a refusal, whatever it printed.
    ran = "Process exited with code 1\nOutput:\npatch rejected: approval policy is never\n"
    assert not ResponsesToolCall(1, 0, step, "c", result=ran, is_error=True).permission_denied
    assert not ResponsesToolCall(1, 0, step, "c", result="unsupported call: x", is_error=True).permission_denied


def test_events_of_a_non_streamed_response_match_the_streamed_one() -> None:
    model = ResponsesModel(Script(((Step("Write", {"input": PATCH}),),)))
    response = model.respond(opening(stream=False))
    events = response_events(response)
    assert response_of(events) == response


# --- HTTP ------------------------------------------------------------------------------

def test_non_streaming_reply_is_one_json_response(server: ResponsesServer) -> None:
    reply = post(server, opening(stream=False))
    assert reply["object"] == "response" and reply["status"] == "completed"
    assert reply["output"][0]["type"] == "function_call" and reply["usage"]["output_tokens"] >= 1


def test_models_and_unknown_endpoints(server: ResponsesServer) -> None:
    status, _, data = request(server, "GET", "/v1/models", headers=HEADERS)
    assert status == 200 and json.loads(data)["data"][0]["object"] == "model"
    status, _, data = request(server, "POST", "/v1/responses/compact", {"input": []}, HEADERS)
    assert status == 404 and json.loads(data)["error"]["type"] == "invalid_request_error"
    status, _, data = request(server, "GET", "/v1/responses/resp_1", headers=HEADERS)
    assert status == 404 and "error" in json.loads(data)
    status, _, data = request(server, "POST", "/v1/responses", raw=b"[1, 2]", headers=HEADERS)
    assert status == 400 and json.loads(data)["error"]["message"] == "body is not a JSON object"
    status, _, _ = request(server, "HEAD", "/", headers=HEADERS)
    assert status == 200
    assert [e.kind for e in server.transcript.exchanges] == ["models", "unknown", "unknown", "unknown", "head"]
    assert server.transcript.calls == []


def test_the_server_interface_is_model_servers() -> None:
    srv = ResponsesServer(Script(((Step("Bash", {"cmd": "x"}),),)))
    assert srv.url == f"http://127.0.0.1:{srv.port}"
    with srv:
        assert post(srv, opening())["output"][0]["type"] == "function_call"
    srv.stop()  # idempotent
    assert len(srv.transcript.calls) == 1 and srv.transcript.to_dict()["calls"][0]["tool"] == "Bash"
