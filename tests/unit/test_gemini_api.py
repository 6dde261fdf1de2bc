"""The scripted Gemini API server, spoken to with a stdlib HTTP client.

The request bodies replay the shapes Gemini CLI 0.61.0 sends (trimmed):
``POST /v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse`` with
``x-goog-api-key``, the session context and the prompt as two text parts of
the first user content, ``tools`` as one ``functionDeclarations`` list
(``parametersJsonSchema``), the model's ``functionCall`` echoed back with a
``thoughtSignature``, and ``functionResponse`` parts whose ``response`` holds
``output`` (a shell command: ``Output: ...``, ``Exit Code: N`` when not 0) or
``error``. Side requests (the model router) go to ``:generateContent`` with a
``responseJsonSchema`` and no tools.
"""
from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandboxcheck.targets.agents.gemini_api import (
    CALL_ID_PREFIX,
    GeminiModel,
    GeminiServer,
    GeminiToolCall,
    exit_code,
    sample,
)
from sandboxcheck.targets.agents.script import FINAL_TEXT, SESSION_TAG, SIDE_TEXT, Feed, Script, Step

STREAM = "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
PLAIN = "/v1beta/models/gemini-2.5-pro:generateContent"
HEADERS = {"Content-Type": "application/json", "x-goog-api-key": "SCNRY-dummy-env-gemini_api_key",
           "User-Agent": "GeminiCLI/0.61.0/gemini-2.5-pro (linux; x64; terminal)",
           "x-goog-api-client": "google-genai-sdk/1.30.0 gl-node/v20.20.2"}
SHELL = {"name": "run_shell_command",
         "description": "This tool executes a given shell command as `bash -c <command>`.",
         "parametersJsonSchema": {"type": "object", "properties": {
             "command": {"type": "string"}, "description": {"type": "string"},
             "dir_path": {"type": "string"}, "is_background": {"type": "boolean"}}, "required": ["command"]}}
WRITE = {"name": "write_file", "description": "Writes content to a specified file in the local filesystem.",
         "parametersJsonSchema": {"type": "object", "properties": {
             "file_path": {"type": "string"}, "content": {"type": "string"}},
             "required": ["file_path", "content"]}}
CONTEXT = ("<session_context>\nThis is the Gemini CLI. We are setting up the context for our chat.\n"
           "- **Workspace Directories:**\n  - /w\n</session_context>")


def request(srv: GeminiServer, method: str, path: str, body: Any = None,
            raw: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers=HEADERS)
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


def opening(session: int = 1, tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The first request of a session, as gemini -p sends it."""
    return {"contents": [{"role": "user", "parts": [
                {"text": CONTEXT}, {"text": f"{SESSION_TAG}{session}: run the scripted steps."}]}],
            "systemInstruction": {"role": "user", "parts": [{"text": "You are an interactive CLI agent."}]},
            "tools": [{"functionDeclarations": [SHELL, WRITE] if tools is None else tools}],
            "generationConfig": {"temperature": 1, "topP": 0.95,
                                 "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 8192}}}


def answer(body: dict[str, Any], reply: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The next request: the model's call (with the CLI's thoughtSignature), then its function response."""
    out = json.loads(json.dumps(body))
    call = reply["candidates"][0]["content"]["parts"][0]["functionCall"]
    out["contents"] += [
        {"role": "model", "parts": [{"functionCall": call, "thoughtSignature": "skip_thought_signature_validator"}]},
        {"role": "user", "parts": [{"functionResponse": {"id": call["id"], "name": call["name"],
                                                         "response": response}}]}]
    return out


def post(srv: GeminiServer, body: dict[str, Any], path: str = STREAM) -> dict[str, Any]:
    """POST a body; the response it streams (one SSE data event, checked) or returns."""
    status, headers, data = request(srv, "POST", path, body)
    streamed = "streamGenerateContent" in path
    assert (status, headers["content-type"]) == (200, "text/event-stream" if streamed else "application/json")
    assert int(headers["content-length"]) == len(data)
    if streamed:
        text = data.decode()
        assert text.startswith("data: ") and text.endswith("\r\n\r\n") and text.count("data: ") == 1
        data = text[len("data: "):].encode()
    out = json.loads(data)
    (candidate,) = out["candidates"]
    assert candidate["content"]["role"] == "model" and candidate["finishReason"] == "STOP"
    usage = out["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    return out


def part(reply: dict[str, Any]) -> dict[str, Any]:
    (only,) = reply["candidates"][0]["content"]["parts"]
    return only


@pytest.fixture()
def server() -> Iterator[GeminiServer]:
    script = Script(sessions=(
        (Step("Bash", {"command": "echo one", "description": "d"}),
         Step("Write", {"file_path": "/outside/x.txt", "content": "hello"})),
        (Step("Bash", {"command": "echo two", "description": "d"}),),
    ))
    with GeminiServer(script) as srv:
        yield srv


# --- the conversation ----------------------------------------------------------

def test_plays_the_script_with_gemini_tools_and_records_every_response(server: GeminiServer) -> None:
    first = opening()
    r1 = post(server, first)
    call1 = part(r1)["functionCall"]
    assert call1["name"] == "run_shell_command" and call1["args"] == {"command": "echo one", "description": "d"}
    assert call1["id"].startswith(CALL_ID_PREFIX)
    second = answer(first, r1, {"output": "<untrusted_context>\nOutput: one\nread-only\nExit Code: 1\n"
                                          "Process Group PGID: 4429\n</untrusted_context>"})
    r2 = post(server, second)
    call2 = part(r2)["functionCall"]
    assert call2["name"] == "write_file" and call2["args"] == {"file_path": "/outside/x.txt", "content": "hello"}
    third = answer(second, r2, {"error": 'Path not in workspace: Attempted path "/outside/x.txt" resolves '
                                         "outside the allowed workspace directories: /w"})
    r3 = post(server, third)
    assert part(r3) == {"text": FINAL_TEXT}
    calls = server.transcript.calls
    assert all(isinstance(c, GeminiToolCall) for c in calls)
    assert [(c.index, c.step.tool, c.is_error, c.permission_denied) for c in calls] == [
        (0, "Bash", True, False),  # the command ran and failed (Exit Code: 1)
        (1, "Write", True, True)]  # the file tool refused the path
    assert "read-only" in (calls[0].result or "")
    assert server.transcript.finals == {1: 1}
    assert [e.answer for e in server.transcript.exchanges] == [
        "functionCall:run_shell_command", "functionCall:write_file", "text"]
    assert all(e.kind == "main" and e.stream and e.tools == 2 for e in server.transcript.exchanges)


def test_a_retried_request_gets_the_same_call_and_does_not_advance(server: GeminiServer) -> None:
    first = opening()
    a, b = post(server, first), post(server, first)
    assert part(a)["functionCall"]["id"] == part(b)["functionCall"]["id"]
    assert a["responseId"] != b["responseId"]
    second = answer(first, a, {"output": "Output: one\nProcess Group PGID: 1"})
    c, d = post(server, second), post(server, second)
    assert part(c)["functionCall"]["id"] == part(d)["functionCall"]["id"] != part(a)["functionCall"]["id"]
    assert [c.sent for c in server.transcript.calls] == [2, 2]
    assert server.transcript.calls[0].is_error is False  # no Exit Code line: 0


def test_side_requests_get_a_harmless_reply_and_never_advance(server: GeminiServer) -> None:
    router = {"contents": opening()["contents"],
              "systemInstruction": {"parts": [{"text": "You are a specialized Task Routing AI."}]},
              "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {
                  "type": "OBJECT", "properties": {
                      "complexity_reasoning": {"type": "STRING"}, "complexity_score": {"type": "INTEGER"}},
                  "required": ["complexity_reasoning", "complexity_score"]}}}
    reply = post(server, router, PLAIN)
    assert json.loads(part(reply)["text"]) == {"complexity_reasoning": "", "complexity_score": 1}
    # Tools but no session tag, or the tag only quoted inside another text: side.
    untagged = opening()
    untagged["contents"][0]["parts"][1]["text"] = f"Summarise: {SESSION_TAG}1 ..."
    assert part(post(server, untagged)) == {"text": SIDE_TEXT}
    # After the final text, a "continue" turn is not the main conversation.
    first = opening(2)
    r1 = post(server, first)
    r2 = post(server, answer(first, r1, {"output": "Output: two"}))
    done = answer(first, r1, {"output": "Output: two"})
    done["contents"] += [{"role": "model", "parts": [part(r2)]},
                         {"role": "user", "parts": [{"text": "Please continue."}]}]
    assert part(post(server, done)) == {"text": SIDE_TEXT}
    assert [c.session for c in server.transcript.calls] == [2]
    assert [e.kind for e in server.transcript.exchanges] == ["side", "side", "main", "main", "side"]


def test_calls_of_another_run_are_not_this_conversation(server: GeminiServer) -> None:
    first = opening()
    r1 = post(server, first)
    forged = answer(first, r1, {"output": "x"})
    forged["contents"][1]["parts"][0]["functionCall"]["id"] = f"{CALL_ID_PREFIX}1_0_ffffff"
    forged["contents"][2]["parts"][0]["functionResponse"]["id"] = f"{CALL_ID_PREFIX}1_0_ffffff"
    assert part(post(server, forged)) == {"text": SIDE_TEXT}
    assert server.transcript.calls[0].result is None


def test_sessions_are_told_apart_by_their_tag(server: GeminiServer) -> None:
    assert part(post(server, opening(2)))["functionCall"]["args"]["command"] == "echo two"
    assert part(post(server, opening(1)))["functionCall"]["args"]["command"] == "echo one"
    assert part(post(server, opening(3))) == {"text": FINAL_TEXT}  # a session without steps


def test_a_feed_plays_steps_pushed_while_the_session_waits() -> None:
    feed = Feed()
    with GeminiServer(Script(()), feed=feed) as srv:
        feed.push([Step("Bash", {"command": "echo fed", "description": "d"})])
        first = opening()
        r1 = post(srv, first)
        assert part(r1)["functionCall"]["args"]["command"] == "echo fed"
        feed.end()
        assert part(post(srv, answer(first, r1, {"output": "Output: fed"}))) == {"text": FINAL_TEXT}
        assert feed.answered_count == 1


# --- results, schemas, routes --------------------------------------------------

def test_exit_codes_and_refusals() -> None:
    assert exit_code("Output: x\nExit Code: 3\nProcess Group PGID: 9") == 3
    assert exit_code("Output: Exit Code: 3 is what it printed") is None
    model = GeminiModel(Script(((Step("Bash", {"command": "c"}),) * 4,)))
    body = opening()
    for i, response in enumerate([
            {"error": 'Tool "run_shell_command" not found. Did you mean one of: "read_file"?'},
            {"error": 'Tool execution for "Shell" requires user confirmation, which is not supported in '
                      "non-interactive mode."},
            {"output": 'Output: Tool "run_shell_command" not found\nExit Code: 1'},  # printed, not refused
            {"error": "File not found: /w/x"}]):
        reply = model.generate(body, "POST", STREAM)
        body = answer(body, reply, response)
    model.generate(body, "POST", STREAM)
    assert [(c.is_error, c.permission_denied) for c in model.transcript.calls] == [
        (True, True), (True, True), (True, False), (True, False)]


def test_sample_satisfies_the_schema() -> None:
    schema = {"type": "object", "properties": {
        "reasoning": {"type": "string"}, "next_speaker": {"type": "string", "enum": ["user", "model"]},
        "n": {"type": "number"}, "ok": {"type": "boolean"}, "list": {"type": "array", "items": {"type": "string"}},
        "optional": {"type": "string"}}, "required": ["reasoning", "next_speaker", "n", "ok", "list"]}
    assert sample(schema) == {"reasoning": "", "next_speaker": "user", "n": 1, "ok": False, "list": []}
    assert sample(None) == {}


def test_count_tokens_models_and_unknown_routes(server: GeminiServer) -> None:
    status, _, data = request(server, "POST", "/v1beta/models/gemini-2.5-pro:countTokens", {"contents": []})
    assert status == 200 and json.loads(data)["totalTokens"] >= 1
    status, _, data = request(server, "GET", "/v1beta/models")
    assert status == 200 and json.loads(data)["models"][0]["name"] == "models/sandboxcheck-scripted"
    status, _, data = request(server, "POST", "/v1beta/models/gemini-2.5-pro:embedContent", {})
    assert status == 404 and json.loads(data)["error"]["status"] == "NOT_FOUND"
    status, _, data = request(server, "POST", STREAM, raw=b"[1, 2]")
    assert status == 400 and json.loads(data)["error"]["code"] == 400
    assert [e.kind for e in server.transcript.exchanges] == ["count_tokens", "models", "unknown", "unknown"]
