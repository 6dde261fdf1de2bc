"""The scripted model server, spoken to with a stdlib HTTP client.

The request bodies replay the shapes Claude Code 2.1.197 sends (trimmed):
``POST /v1/messages?beta=true`` with ``stream: true``, content blocks with
``cache_control``, a ``role: "system"`` entry in the middle of ``messages``,
``thinking``/``context_management``/``output_config`` fields the server does
not know, and the Bash tool's schema.
"""
from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sandboxcheck.targets.agents.script import FINAL_TEXT, Feed, SESSION_TAG, SIDE_TEXT, Script, Step
from sandboxcheck.targets.agents.messages_api import ModelServer, ScriptedModel, sse_events

BASH_TOOL = {
    "name": "Bash", "description": "Executes a given bash command...",
    "input_schema": {"type": "object", "properties": {
        "command": {"type": "string"}, "timeout": {"type": "number"}, "description": {"type": "string"},
        "run_in_background": {"type": "boolean"}, "dangerouslyDisableSandbox": {"type": "boolean"}},
        "required": ["command"], "additionalProperties": False},
}
READ_TOOL = {"name": "Read", "description": "Reads a file",
             "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}
HEADERS = {"Content-Type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "dummy",
           "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14", "x-app": "cli",
           "User-Agent": "claude-cli/2.1.197 (external, sdk-cli)"}


def opening(session: int = 1, stream: bool = True) -> dict[str, Any]:
    """The first request of a session, as the CLI sends it."""
    return {
        "model": "claude-opus-4-8",
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>\nToday's date is 2026-11-22.\n</system-reminder>\n"},
                {"type": "text", "text": f"{SESSION_TAG}{session}: run the scripted steps.",
                 "cache_control": {"type": "ephemeral"}}]},
            {"role": "system", "content": "Available agent types for the Agent tool: ..."},
        ],
        "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197;"},
                   {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}}],
        "tools": [BASH_TOOL, READ_TOOL],
        "metadata": {"user_id": "{\"device_id\":\"x\"}"},
        "max_tokens": 64000, "thinking": {"type": "adaptive"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"}, "stream": stream,
    }


def answer(body: dict[str, Any], reply: dict[str, Any], result: str, is_error: bool = False) -> dict[str, Any]:
    """The next request: the assistant's tool_use, then the user's tool_result."""
    out = json.loads(json.dumps(body))
    tool_use = next(b for b in reply["content"] if b["type"] == "tool_use")
    out["messages"].append({"role": "assistant", "content": [tool_use]})
    out["messages"].append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": tool_use["id"], "content": result, "is_error": is_error}]})
    return out


@pytest.fixture()
def server() -> Iterator[ModelServer]:
    script = Script(sessions=(
        (Step("Bash", {"command": "echo one"}),
         Step("Bash", {"command": "echo one", "dangerouslyDisableSandbox": True})),
        (Step("Read", {"file_path": "/w/notes.txt"}),),
    ))
    with ModelServer(script) as srv:
        yield srv


def request(srv: ModelServer, method: str, path: str, body: Any = None,
            headers: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    conn.request(method, path, body=data, headers=headers or HEADERS)
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    conn.close()
    return out


def parse_sse(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for chunk in data.decode().split("\n\n"):
        if not chunk.strip():
            continue
        lines = dict(line.split(": ", 1) for line in chunk.split("\n"))
        payload = json.loads(lines["data"])
        assert payload["type"] == lines["event"]
        events.append((lines["event"], payload))
    return events


def message_of(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """Rebuild the message from its events, checking the order the API guarantees."""
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    msg = dict(events[0][1]["message"])
    assert msg["content"] == [] and msg["stop_reason"] is None
    assert {"input_tokens", "output_tokens", "cache_creation_input_tokens",
            "cache_read_input_tokens"} <= set(msg["usage"])
    blocks: dict[int, dict[str, Any]] = {}
    open_index: int | None = None
    partial = ""
    for name, ev in events[1:-2]:
        if name == "content_block_start":
            assert open_index is None
            open_index = ev["index"]
            blocks[open_index] = dict(ev["content_block"])
            partial = ""
        elif name == "content_block_delta":
            assert ev["index"] == open_index
            delta = ev["delta"]
            if delta["type"] == "text_delta":
                blocks[open_index]["text"] += delta["text"]
            else:
                assert delta["type"] == "input_json_delta"
                partial += delta["partial_json"]
        elif name == "content_block_stop":
            assert ev["index"] == open_index
            if blocks[open_index]["type"] == "tool_use":
                blocks[open_index]["input"] = json.loads(partial)
            open_index = None
        else:
            raise AssertionError(f"unexpected event {name}")
    assert open_index is None
    msg["content"] = [blocks[i] for i in sorted(blocks)]
    msg["stop_reason"] = events[-2][1]["delta"]["stop_reason"]
    assert events[-2][1]["usage"]["output_tokens"] >= 1
    return msg


def post(srv: ModelServer, body: dict[str, Any]) -> dict[str, Any]:
    status, headers, data = request(srv, "POST", "/v1/messages?beta=true", body)
    assert status == 200
    if body.get("stream"):
        assert headers["content-type"] == "text/event-stream"
        assert int(headers["content-length"]) == len(data)
        return message_of(parse_sse(data))
    assert headers["content-type"] == "application/json"
    return json.loads(data)


# --- the conversation ----------------------------------------------------------

def test_head_answers(server: ModelServer) -> None:
    status, _, data = request(server, "HEAD", "/")
    assert status == 200 and data == b""


def test_plays_the_script_and_records_every_result(server: ModelServer) -> None:
    first = opening()
    r1 = post(server, first)
    assert r1["stop_reason"] == "tool_use" and r1["role"] == "assistant" and r1["type"] == "message"
    use1 = r1["content"][0]
    assert use1["name"] == "Bash" and use1["input"] == {"command": "echo one"}
    second = answer(first, r1, "Exit code 1\nOSError: [Errno 30] Read-only file system", is_error=True)
    r2 = post(server, second)
    use2 = r2["content"][0]
    assert use2["input"] == {"command": "echo one", "dangerouslyDisableSandbox": True}
    assert use2["id"] != use1["id"] and r2["id"] != r1["id"]
    r3 = post(server, answer(second, r2, "Run outside of the sandbox", is_error=True))
    assert r3["stop_reason"] == "end_turn" and r3["content"] == [{"type": "text", "text": FINAL_TEXT}]
    calls = server.transcript.calls
    assert [(c.session, c.index, c.answered, c.is_error) for c in calls] == [(1, 0, True, True), (1, 1, True, True)]
    assert not calls[0].permission_denied  # the command ran and failed
    assert calls[1].permission_denied  # the agent refused to leave its sandbox
    assert server.transcript.finals == {1: 1}


def test_a_retried_request_gets_the_same_answer_and_does_not_advance(server: ModelServer) -> None:
    first = opening()
    a, b = post(server, first), post(server, first)
    assert a["content"][0]["id"] == b["content"][0]["id"]
    assert len(server.transcript.calls) == 1 and server.transcript.calls[0].sent == 2


def test_side_requests_get_a_harmless_reply_and_never_advance(server: ModelServer) -> None:
    title = {"model": "claude-haiku", "max_tokens": 512, "stream": False,
             "system": [{"type": "text", "text": "Generate a concise title for this conversation."}],
             "messages": [{"role": "user", "content": f"{SESSION_TAG}1: run the scripted steps."}]}
    quota = {"model": "claude-haiku", "max_tokens": 1, "messages": [{"role": "user", "content": "quota"}]}
    for body in (title, quota):
        reply = post(server, body)
        assert reply["content"] == [{"type": "text", "text": SIDE_TEXT}] and reply["stop_reason"] == "end_turn"
    first = opening()
    r1 = post(server, first)
    # With tools but ending in a plain user text (not the tool_result): a side request too.
    fork = json.loads(json.dumps(first))
    fork["messages"] += [{"role": "assistant", "content": r1["content"]},
                         {"role": "user", "content": "Suggest the next prompt."}]
    assert post(server, fork)["content"][0]["text"] == SIDE_TEXT
    assert [e.kind for e in server.transcript.exchanges] == ["side", "side", "main", "side"]
    assert len(server.transcript.calls) == 1 and server.transcript.calls[0].result is None
    # The main conversation then continues where it was.
    assert post(server, answer(first, r1, "one"))["content"][0]["name"] == "Bash"


def test_sessions_are_told_apart_by_their_tag(server: ModelServer) -> None:
    second = opening(session=2)
    r = post(server, second)
    assert r["content"][0]["name"] == "Read" and r["content"][0]["input"] == {"file_path": "/w/notes.txt"}
    post(server, answer(second, r, [{"type": "text", "text": "1\tnote"}]))
    call = server.transcript.call(2, 0)
    assert call is not None and call.result == "1\tnote" and call.is_error is False
    assert server.transcript.finals == {2: 1}
    # A session beyond the script only gets the final text.
    assert post(server, opening(session=3))["content"][0]["text"] == FINAL_TEXT


def test_ids_of_another_run_are_not_this_conversation(server: ModelServer) -> None:
    body = opening()
    body["messages"] += [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_sc1_0_ffffff", "name": "Bash", "input": {"command": "x"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_sc1_0_ffffff",
                                      "content": "x"}]}]
    assert post(server, body)["content"][0]["text"] == SIDE_TEXT
    assert server.transcript.calls == []


def test_non_streaming_reply_is_one_json_message(server: ModelServer) -> None:
    reply = post(server, opening(stream=False))
    assert reply["stop_reason"] == "tool_use" and reply["content"][0]["type"] == "tool_use"
    assert reply["id"].startswith("msg_") and reply["usage"]["output_tokens"] >= 1


def test_count_tokens_and_unknown_endpoints(server: ModelServer) -> None:
    status, _, data = request(server, "POST", "/v1/messages/count_tokens?beta=true", opening())
    assert status == 200 and json.loads(data)["input_tokens"] > 0
    status, _, data = request(server, "POST", "/v1/complete", {"prompt": "x"})
    assert status == 404 and json.loads(data)["type"] == "error"
    status, _, data = request(server, "GET", "/v1/models")
    assert status == 404 and json.loads(data)["error"]["type"] == "not_found_error"
    status, _, data = request(server, "POST", "/v1/messages", raw=b"{not json")
    assert status == 400 and json.loads(data)["error"]["type"] == "invalid_request_error"
    kinds = [e.kind for e in server.transcript.exchanges]
    assert kinds == ["count_tokens", "unknown", "unknown", "unknown"]
    assert server.transcript.calls == []


def test_chunked_request_body_is_read(server: ModelServer) -> None:
    data = json.dumps(opening()).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (data[:100], data[100:])) + b"0\r\n\r\n"
    status, _, body = request(server, "POST", "/v1/messages?beta=true", raw=chunked,
                              headers={**HEADERS, "Transfer-Encoding": "chunked"})
    assert status == 200 and b"tool_use" in body


def test_concurrent_requests_are_served(server: ModelServer) -> None:
    results: list[int] = []

    def one() -> None:
        results.append(request(server, "POST", "/v1/messages?beta=true", opening())[0])

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [200] * 8
    assert len(server.transcript.calls) == 1 and server.transcript.calls[0].sent == 8


def test_stop_closes_the_port() -> None:
    srv = ModelServer(Script(sessions=())).start()
    port = srv.port
    srv.stop()
    srv.stop()  # idempotent
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("HEAD", "/")


# --- pure parts ----------------------------------------------------------------

def test_sse_events_for_text_and_tool_use() -> None:
    model = ScriptedModel(Script(sessions=((Step("Bash", {"command": "ls"}),),)))
    msg = model.messages(opening())
    events = sse_events(msg)
    assert [n for n, _ in events] == ["message_start", "content_block_start", "content_block_delta",
                                      "content_block_stop", "message_delta", "message_stop"]
    assert message_of(events)["content"] == msg["content"]


def test_permission_denial_phrases() -> None:
    model = ScriptedModel(Script(sessions=((Step("Bash", {"command": "ls"}),),)))
    model.messages(opening())
    call = model.transcript.calls[0]
    cases = {
        "This command requires approval": True,
        "This Bash command contains multiple operations. The following part requires approval: x": True,
        "Claude requested permissions to read from /x, but you haven't granted it yet.": True,
        "Run outside of the sandbox": True,
        "Contains command_substitution": True,
        # Claude Code 2.1.3xx: its permission check cannot parse the command, so it would ask.
        "A nested command in this command can't be checked before it runs": True,
        "Words after a redirect in this command can't be checked before it runs": True,
        "Exit code 1\nlint: this file can't be checked before it runs": False,  # a tool's own output
        "Exit code 1\nOSError: [Errno 30] Read-only file system": False,
        "Exit code 1\ncat: /x: Permission denied": False,
    }
    for text, denied in cases.items():
        call.result, call.is_error = text, True
        assert call.permission_denied is denied, text
    call.result, call.is_error = "This command requires approval", False
    assert not call.permission_denied  # not an error: the tool ran


def test_transcript_shows_what_came_back_not_the_commands() -> None:
    model = ScriptedModel(Script(sessions=((Step("Bash", {"command": "printf SECRET-CMD"}),),)))
    first = opening()
    reply = model.messages(first)
    model.messages(answer(first, reply, "output of the command"))
    text = model.transcript.render()
    assert "output of the command" in text and "SECRET-CMD" not in text
    assert "SECRET-CMD" in model.transcript.render(with_inputs=True)
    data = model.transcript.to_dict()
    assert data["calls"][0]["input"] == {"command": "printf SECRET-CMD"} and data["finals"] == {1: 1}


def test_the_sandbox_guidance_given_to_the_model_is_recorded() -> None:
    body = opening()
    body["tools"] = [{**BASH_TOOL, "description": "## Command sandbox\nImmediately retry with "
                      "`dangerouslyDisableSandbox: true` (don't ask, just do it)\nunrelated line"}]
    body["system"] = [{"type": "text", "text": "paths under /tmp/sandboxcheck-x/ are not the sandbox"}]
    model = ScriptedModel(Script(sessions=((Step("Bash", {"command": "ls"}),),)))
    model.messages(body)
    notes = model.transcript.system_notes[1]
    assert notes == ["system: paths under /tmp/sandboxcheck-x/ are not the sandbox",
                     "Bash tool: ## Command sandbox",
                     "Bash tool: Immediately retry with `dangerouslyDisableSandbox: true` (don't ask, just do it)"]


def test_sandbox_guidance_in_the_conversation_is_recorded_but_not_tool_results() -> None:
    # Claude Code 2.1.332 sends it as a system message in the middle of the conversation.
    body = opening()
    body["messages"].append({"role": "system", "content": "## Bash command sandbox\nretry with "
                             "`dangerouslyDisableSandbox: true` directly rather than asking in prose first"})
    body["messages"][0]["content"].insert(0, {"type": "text", "text": "<system-reminder>\nCommands run in a "
                                              "sandbox.\nImmediately retry with `dangerouslyDisableSandbox: true`"
                                              " (don't ask, just do it)\n</system-reminder>"})
    body["messages"][0]["content"].append({"type": "tool_result", "tool_use_id": "x",
                                           "content": "Run outside of the sandbox"})
    model = ScriptedModel(Script(sessions=((Step("Bash", {"command": "ls"}),),)))
    model.messages(body)
    assert model.transcript.system_notes[1] == [
        "user turn: Commands run in a sandbox.",
        "user turn: Immediately retry with `dangerouslyDisableSandbox: true` (don't ask, just do it)",
        "system turn: ## Bash command sandbox",
        "system turn: retry with `dangerouslyDisableSandbox: true` directly rather than asking in prose first"]


# --- a fed session: many checks in one conversation --------------------------------

def test_a_fed_session_waits_for_each_check_and_records_every_result() -> None:
    feed = Feed()
    with ModelServer(Script(()), feed=feed) as srv:
        replies: list[dict[str, Any]] = []

        def ask(body: dict[str, Any]) -> None:
            status, _, data = request(srv, "POST", "/v1/messages?beta=true", body)
            assert status == 200
            replies.append(message_of(parse_sse(data)))

        body = opening()
        t = threading.Thread(target=ask, args=(body,))
        t.start()
        assert feed.wait_asked(1, 5)  # the agent is up and waiting for work
        assert not replies  # nothing to do yet: the request waits
        first, end = feed.push([Step("Bash", {"command": "echo one"})])
        t.join(5)
        assert (first, end) == (0, 1) and replies[0]["stop_reason"] == "tool_use"
        # A side request meanwhile never waits and never advances anything.
        assert request(srv, "POST", "/v1/messages", {**opening(), "tools": []})[0] == 200

        body = answer(body, replies[0], "one")
        t = threading.Thread(target=ask, args=(body,))
        t.start()
        assert feed.wait_answered(1, 5)
        assert srv.transcript.calls[0].result == "one"
        first, end = feed.push([Step("Read", {"file_path": "/w/a"}), Step("Read", {"file_path": "/w/b"})])
        t.join(5)
        assert (first, end) == (1, 3) and replies[1]["content"][0]["input"] == {"file_path": "/w/a"}
        body = answer(body, replies[1], "A")
        ask(body)  # step 3 was already pushed: no wait
        assert replies[2]["content"][0]["input"] == {"file_path": "/w/b"}
        assert not feed.wait_answered(3, 0.2)  # b's result has not come back yet

        body = answer(body, replies[2], "no such file", is_error=True)
        t = threading.Thread(target=ask, args=(body,))
        t.start()
        assert feed.wait_answered(3, 5)
        feed.end()
        t.join(5)
        assert replies[3]["stop_reason"] == "end_turn" and replies[3]["content"][0]["text"] == FINAL_TEXT
        calls = srv.transcript.calls
        assert [(c.index, c.result, c.is_error) for c in calls] == [(0, "one", False), (1, "A", False),
                                                                    (2, "no such file", True)]
        with pytest.raises(RuntimeError):
            feed.push([Step("Bash", {"command": "late"})])


def test_waiting_on_a_feed_gives_up_when_the_agent_dies() -> None:
    feed = Feed()
    feed.push([Step("Bash", {"command": "x"})])
    alive = iter([True, False])
    assert not feed.wait_answered(1, 10, lambda: next(alive))


def test_a_fed_session_that_lost_answered_steps_is_ended_not_replayed() -> None:
    feed = Feed()
    with ModelServer(Script(()), feed=feed) as srv:
        feed.push([Step("Bash", {"command": "echo first-check"})])
        body = opening()
        _, _, data = request(srv, "POST", "/v1/messages", body)
        reply = message_of(parse_sse(data))
        body = answer(body, reply, "first-check")
        t = threading.Thread(target=request, args=(srv, "POST", "/v1/messages", body))
        t.start()
        assert feed.wait_answered(1, 5)
        # The agent compacts its conversation: the opening again, without the answered call.
        _, _, data = request(srv, "POST", "/v1/messages", opening())
        again = message_of(parse_sse(data))
        assert again["stop_reason"] == "end_turn" and again["content"][0]["text"] == FINAL_TEXT
        assert feed.diverged and feed.ended
        t.join(5)
        assert [c.step.input["command"] for c in srv.transcript.calls] == ["echo first-check"]


def test_claude_codes_read_deny_message_is_a_permission_denial() -> None:
    # Claude Code 2.1.7 answers a Read its deny rules refuse with this text (an error result).
    from sandboxcheck.targets.agents.script import ToolCall

    call = ToolCall(1, 0, Step("Read", {"file_path": "/w/docs/key"}), "toolu_x")
    call.result, call.is_error = "Permission to read /w/docs/key has been denied.", True
    assert call.permission_denied
    call.result = "File does not exist."
    assert not call.permission_denied
