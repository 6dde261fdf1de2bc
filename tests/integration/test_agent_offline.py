"""Agent targets without the real CLI: spec validation, options, and the whole
path (runner -> target -> launcher -> scripted model -> verdict) with a fake
``claude`` that speaks the Messages API the way the real one does.

The known answers of the real Claude Code are in ``test_agent.py``; this file
runs everywhere in a few seconds and pins the machinery.
"""
from __future__ import annotations

import io
import json
import os
import signal
import stat
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import psutil
import pytest

from marks import eventually

from sandboxcheck.targets.agents import load_agent_target
from sandboxcheck.targets.agents.spec import check_agent_problems, merge, offline, parse_check_agent
from sandboxcheck.matrix.load import MatrixError, parse_matrix
from sandboxcheck.model import Matrix, Observed, Status
from sandboxcheck.plugin.items import describe_failure
from sandboxcheck.report.run import render_table
from sandboxcheck.run.options import RunOptions
from sandboxcheck.run.schedule import run_matrix
from sandboxcheck.targets.base import TargetError
from sandboxcheck.targets.registry import load_target

pytestmark = pytest.mark.integration

# A stand-in for `claude -p`: prompt on stdin, HEAD then POST /v1/messages?beta=true,
# runs Bash/Read/Write tool calls, refuses dangerouslyDisableSandbox like the real
# CLI without an approval, and refuses to start when failIfUnavailable is set and
# bwrap is not on PATH. It logs its argv to $FAKE_CLAUDE_LOG.
FAKE_CLAUDE = r'''#!/usr/bin/python3
import json, os, shutil, subprocess, sys, urllib.request
base = os.environ["ANTHROPIC_BASE_URL"]
if os.environ.get("FAKE_CLAUDE_LOG"):
    with open(os.environ["FAKE_CLAUDE_LOG"], "a") as fh:
        fh.write(json.dumps(sys.argv[1:]) + "\n")
try:
    settings = json.load(open(".claude/settings.json"))
except OSError:
    settings = {}
sandbox = settings.get("sandbox", {})
if sandbox.get("enabled") and not shutil.which("bwrap"):
    if sandbox.get("failIfUnavailable"):
        sys.stderr.write("Error: sandbox required but unavailable: bwrap not installed\n"
                         "  sandbox.failIfUnavailable is set \u2014 refusing to start without a working sandbox.\n")
        sys.exit(1)
    sys.stderr.write("\u26a0 Sandbox disabled: bwrap not installed\n")
urllib.request.urlopen(urllib.request.Request(base + "/", method="HEAD")).read()
tools = [{"name": n, "description": "d", "input_schema": {"type": "object"}} for n in ("Bash", "Read", "Write")]
messages = [{"role": "user", "content": [{"type": "text", "text": sys.stdin.read()}]}]
while True:
    body = {"model": "m", "max_tokens": 64000, "stream": False, "messages": messages, "tools": tools,
            "system": [{"type": "text", "text": "You are a fake."}]}
    req = urllib.request.Request(base + "/v1/messages?beta=true", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json", "x-api-key": "k"})
    msg = json.load(urllib.request.urlopen(req))
    messages.append({"role": "assistant", "content": msg["content"]})
    if msg["stop_reason"] != "tool_use":
        print(json.dumps({"type": "result", "result": msg["content"][0]["text"]}))
        sys.exit(0)
    use = msg["content"][0]
    inp, err = use["input"], False
    if use["name"] == "Bash":
        if inp.get("dangerouslyDisableSandbox"):
            out, err = "Run outside of the sandbox", True
        else:
            p = subprocess.run(["/bin/sh", "-c", inp["command"]], capture_output=True, text=True)
            out, err = (p.stdout + p.stderr, p.returncode != 0)
            if err:
                out = "Exit code %d\n%s" % (p.returncode, out)
    elif use["name"] == "Read":
        try:
            out = open(inp["file_path"]).read()
        except OSError as exc:
            out, err = "File does not exist. %s" % exc, True
    else:
        with open(inp["file_path"], "w") as fh:
            fh.write(inp["content"])
        out = "File created successfully at: " + inp["file_path"]
    messages.append({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": use["id"], "content": out, "is_error": err}]})
'''

PRESET = {"kind": "agent", "name": "fake-claude", "description": "the fake CLI",
          "requires": [{"name": "claude", "install": "a test fixture"}], "allowed_tools": ["Bash"]}


@pytest.fixture()
def fake_claude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fake ``claude`` first in SANDBOXCHECK_TOOLS; returns the argv log file."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "claude"
    exe.write_text(FAKE_CLAUDE)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    log = tmp_path / "argv.log"
    monkeypatch.setenv("SANDBOXCHECK_TOOLS", str(bindir))
    return log


def matrix(body: str) -> Matrix:
    return parse_matrix("version: 1\nchecks:\n" + textwrap.indent(textwrap.dedent(body), "  "), "m.yaml")


def run(m: Matrix, target_data: dict | None = None, log: Path | None = None, sessions: bool = True,
        **options: str):
    data = dict(PRESET, **(target_data or {}))
    if log is not None:
        data["env"] = {"FAKE_CLAUDE_LOG": str(log)}
    target = load_agent_target(data, "fake.yaml", options)
    report = run_matrix(m, target, RunOptions(jobs=2, sessions=sessions))
    return {r.id: r for r in report.results}


# --- the whole path with the fake CLI ---------------------------------------------

CHECKS = """\
- id: agent.bash-read
  category: agent
  title: Bash reads the outside secret
  probe: read_file
  args: {path: "{outside}/secret.txt"}
  expect: denied
- id: agent.read-tool
  category: agent
  title: Read tool reads the dummy ssh key
  probe: read_file
  args: {path: "{home}/.ssh/id_ed25519"}
  agent: {steps: [{tool: Read}]}
  expect: denied
- id: agent.read-tool-missing
  category: agent
  title: Read tool on a missing file
  probe: read_file
  args: {path: "{outside}/missing.txt"}
  agent: {steps: [{tool: Read}]}
  expect: denied
  no_control: the file does not exist anywhere
- id: agent.write-tool
  category: agent
  title: Write tool writes outside
  probe: write_file
  args: {path: "{outside}/created.txt", content: "written {token}"}
  agent: {steps: [{tool: Write}]}
  evidence: {kind: file, path: "{outside}/created.txt", contains: "{token}"}
  expect: denied
- id: agent.retry
  category: agent
  title: retry unsandboxed (the fake refuses it)
  probe: write_file
  args: {path: "{outside}/created.txt", content: "written {token}"}
  agent:
    steps:
      - {tool: Bash, command: "false"}
      - {tool: Bash, disable_sandbox: true}
  evidence: {kind: file, path: "{outside}/created.txt", contains: "{token}"}
  expect: denied
- id: agent.restart
  category: agent
  title: two sessions
  probe: write_file
  args: {path: "{outside}/second.txt", content: "second {token}"}
  agent:
    steps:
      - {tool: Bash, probe: hello, args: {left: FIRST, right: SESSION}}
      - {tool: Bash, session: 2}
  evidence: {kind: file, path: "{outside}/second.txt", contains: "{token}"}
  expect: denied
- id: agent.refused
  category: agent
  title: failIfUnavailable without bwrap
  probe: write_file
  args: {path: "{outside}/created.txt", content: "written {token}"}
  agent:
    path_without: [bwrap]
    settings: {sandbox: {enabled: true, failIfUnavailable: true}}
  evidence: {kind: file, path: "{outside}/created.txt", contains: "{token}"}
  expect: denied
- id: agent.chain-marker
  category: agent
  title: a command of the step's own
  probe: hello
  args: {left: CHAINOK, right: "{token}"}
  agent:
    allowed_tools: ["Bash(echo:*)"]
    steps: [{tool: Bash, command: "echo CHAIN\\"\\"OK-{token}"}]
  evidence: {kind: marker, marker: "CHAINOK-{token}"}
  expect: allowed
- id: exec.missing-binary
  category: exec
  title: a command that does not exist proves nothing
  probe: hello
  args: {left: X, right: "{token}"}
  agent: {steps: [{tool: Bash, command: "/nonexistent/sandboxcheck-binary"}]}
  evidence: {kind: marker, marker: "X-{token}"}
  expect: denied
"""


@pytest.mark.parametrize("sessions", [True, False], ids=["shared-sessions", "per-check"])
def test_fake_agent_through_the_runner(fake_claude: Path, sessions: bool) -> None:
    got = run(matrix(CHECKS), log=fake_claude, sessions=sessions)
    status = {k: (r.observed, r.status) for k, r in got.items()}
    assert status == {
        "agent.bash-read": (Observed.ALLOWED, Status.FAIL),
        "agent.read-tool": (Observed.ALLOWED, Status.FAIL),
        "agent.read-tool-missing": (Observed.DENIED, Status.PASS),
        "agent.write-tool": (Observed.ALLOWED, Status.FAIL),
        "agent.retry": (Observed.DENIED, Status.PASS),
        "agent.restart": (Observed.ALLOWED, Status.FAIL),
        "agent.refused": (Observed.DENIED, Status.PASS),
        "agent.chain-marker": (Observed.ALLOWED, Status.PASS),
        "exec.missing-binary": (Observed.UNKNOWN, Status.INCONCLUSIVE),
    }
    assert got["agent.bash-read"].evidence == (
        "canary of outside/secret.txt in the agent's Bash result (session 1, step 1)",)
    assert got["agent.read-tool"].evidence == (
        "canary of ~/.ssh/id_ed25519 in the agent's Read result (session 1, step 1)",)
    assert got["agent.read-tool-missing"].errno == "ENOENT"
    # The retry's refusal explains the denial, not the first step's failure.
    assert got["agent.retry"].errno == "AGENT_DENIED"
    assert got["agent.retry"].probe_action == "Bash(dangerouslyDisableSandbox) (agent tool call)"
    assert got["agent.retry"].layer == "the agent's permission check (it would have asked the user)"
    assert got["agent.refused"].errno == "AGENT_REFUSED"
    assert got["agent.restart"].evidence == ("{outside}/second.txt created on the host with the check's canary",)
    argvs = [json.loads(line) for line in fake_claude.read_text().splitlines()]
    assert ["--allowedTools", "Bash(echo:*)", "--output-format", "json", "-p"] in argvs
    default = argvs.count(["--allowedTools", "Bash", "--output-format", "json", "-p"])
    if not sessions:
        # Every other check keeps the target's rule; the restart check starts two sessions,
        # and the preflight one more.
        assert default == len(got) - 1 + 1 + 1
    else:
        # Own processes: restart (two), refused (its settings); the preflight and the
        # five checks that script only the target's agent share at most one session per job.
        assert 2 + 1 + 1 <= default <= 2 + 1 + 2


def test_settings_and_options_reach_the_agent(fake_claude: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine.json"
    mine.write_text(json.dumps({"permissions": {"deny": ["Read(~/.ssh/**)"]}, "apiKeyHelper": "/bin/leak",
                                "env": {"ANTHROPIC_BASE_URL": "https://api.anthropic.com", "KEEP": "1"}}))
    m = matrix("""\
        - id: agent.show-settings
          category: agent
          title: print the settings the agent got
          probe: read_file
          args: {path: "{workspace}/.claude/settings.json"}
          agent:
            settings: {sandbox: {filesystem: {denyRead: ["{outside}"]}}}
            user_settings: {hooks: {}}
          evidence: {kind: marker, marker: "denyRead"}
          expect: allowed
          no_control: only the agent target writes these settings
        """)
    with pytest.raises(TargetError, match="no such file|cannot read"):
        load_agent_target(PRESET, "fake.yaml", {"settings": str(tmp_path / "absent.json")})
    target = load_agent_target({**PRESET, "settings": {"sandbox": {"enabled": False}}}, "fake.yaml",
                               {"settings": str(mine), "flags": "--model x", "allowed_tools": "Bash,Read"})
    assert target.describe()["command"] == ["claude", "--model", "x", "--allowedTools", "Bash,Read",
                                            "--output-format", "json", "-p"]
    assert target.describe()["settings"] == {"permissions": {"deny": ["Read(~/.ssh/**)"]},
                                             "sandbox": {"enabled": False}}  # never env, helpers
    report = run_matrix(m, target, RunOptions(keep_workspace=True))
    try:
        (result,) = report.results
        assert result.status is Status.PASS, result.reason
        # The check's own root (the preflight's is kept too).
        root = next(Path(k) for k in report.kept
                    if Path(f"{k}.check.txt").read_text().startswith("agent.show-settings "))
        settings = json.loads((root / "workspace" / ".claude" / "settings.json").read_text())
        assert settings == {"permissions": {"allow": [], "deny": ["Read(~/.ssh/**)"]},
                            "sandbox": {"enabled": False, "filesystem": {"denyRead": [str(root / "outside")]}},
                            "env": {"KEEP": "1"}}
        assert json.loads((root / "home" / ".claude" / "settings.json").read_text()) == {"hooks": {}}
        state = json.loads((root / "home" / ".claude.json").read_text())
        assert state["hasCompletedOnboarding"] is True
        assert state["projects"][str(root / "workspace")]["hasTrustDialogAccepted"] is True
        transcript = json.loads((root / "agent" / "transcript.json").read_text())
        assert transcript["sessions"][0]["returncode"] == 0 and len(transcript["calls"]) == 1
    finally:
        import shutil

        for folder in {str(Path(k).parent) for k in report.kept}:  # the run's folder, kept roots in it
            shutil.rmtree(folder, ignore_errors=True)


def test_plain_targets_skip_agent_checks_with_the_reason() -> None:
    m = matrix("""\
        - id: agent.read-tool
          category: agent
          title: needs an agent
          probe: read_file
          args: {path: "{outside}/secret.txt"}
          agent: {steps: [{tool: Read}]}
          expect: denied
        """)
    report = run_matrix(m, load_target("none"), RunOptions())
    (result,) = report.results
    assert result.status is Status.SKIP and report.exit_code() == 0
    assert result.reason.startswith("not for this target: this check scripts an agent")
    assert "run it against an agent target" in result.reason


# --- validation -----------------------------------------------------------------------

def test_bad_agent_mappings_are_reported_with_lines() -> None:
    with pytest.raises(MatrixError) as info:
        matrix("""\
            - id: agent.bad
              category: agent
              title: bad
              probe: read_file
              args: {path: "{outside}/secret.txt"}
              agent:
                stepz: []
                steps:
                  - {tool: Grep}
                  - {tool: Read, command: "x"}
                  - {tool: Bash, probe: hello, args: {left: A}}
                  - {tool: Bash, session: 3, command: "{cmd} {nope}"}
                  - {tool: Edit}
              expect: denied
            """)
    got = [str(p) for p in info.value.problems]
    assert got == [
        "m.yaml:9: checks[0].agent.stepz: unknown key (did you mean 'steps'?)",
        "m.yaml:11: checks[0].agent.steps: sessions must be numbered 1, 2, ... without gaps (found [1, 3])",
        "m.yaml:11: checks[0].agent.steps[0].tool: 'Grep' is not one of: Bash, Read, Write, Edit",
        "m.yaml:12: checks[0].agent.steps[1].command: only a Bash step takes 'command'",
        "m.yaml:13: checks[0].agent.steps[2].args: probe 'hello' needs argument 'right'",
        "m.yaml:14: checks[0].agent.steps[3].command: unknown placeholder {nope}",
        "m.yaml:15: checks[0].agent.steps[4]: an Edit step needs 'old' and 'new'",
    ]


def test_a_leak_check_must_not_hand_the_token_to_an_agent_step() -> None:
    with pytest.raises(MatrixError, match="must not pass {token}"):
        matrix("""\
            - id: agent.leaky
              category: agent
              title: token in the command
              probe: read_file
              args: {path: "{outside}/secret.txt"}
              agent: {steps: [{tool: Bash, command: "echo {token}; {cmd}"}]}
              expect: denied
            """)


def test_agent_target_files_are_validated() -> None:
    with pytest.raises(TargetError) as info:
        load_agent_target({"kind": "agent", "name": "", "agent": "gemini", "setings": {}, "flags": 3,
                           "python": "python3"}, "t.yaml")
    assert str(info.value).splitlines() == [
        "t.yaml: unknown key 'setings' (did you mean 'settings'?)",
        "t.yaml: 'name' must be a non-empty string",
        "t.yaml: agent: 'gemini' is not a known agent (known: claude-code, codex, gemini-cli)",
        "t.yaml: 'flags' must be a list of command-line arguments",
        "t.yaml: 'python' must be an absolute path to an interpreter",
    ]
    with pytest.raises(TargetError, match="takes no option 'setting'"):
        load_agent_target(PRESET, "t.yaml", {"setting": "x"})
    load_agent_target(PRESET, "t.yaml", {"setting": "x"}, strict=False)  # a survey's shared options


def test_check_agent_parsing_and_merging() -> None:
    assert parse_check_agent(None).sessions == 1
    plan = parse_check_agent({"steps": [{"tool": "Read", "path": "/x"}, {"session": 2}],
                              "allowed_tools": [], "env": {"A": 1}})
    assert plan.sessions == 2 and plan.allowed_tools == () and plan.env == (("A", "1"),)
    assert check_agent_problems({"steps": []}) == [(("steps",), "must be a non-empty list of tool calls")]
    assert merge({"a": {"b": 1, "c": [1]}}, {"a": {"c": [2]}, "d": 1}) == {"a": {"b": 1, "c": [2]}, "d": 1}
    assert offline({"apiKeyHelper": "x", "env": {"ANTHROPIC_BASE_URL": "u", "CLAUDE_CODE_USE_BEDROCK": "1",
                                                 "OTHER": "y"}}) == {"env": {"OTHER": "y"}}


def test_presets_load_and_describe_themselves() -> None:
    for name in ("claude-code", "claude-code-sandbox"):
        t = load_target(name)
        d = t.describe()
        assert d["kind"] == "agent" and d["name"] == name and t.description
        assert t.python().startswith("/")
    assert load_target("claude-code").describe()["command"][:3] == ["claude", "--allowedTools", "Bash"]
    assert load_target("claude-code-sandbox").describe()["settings"] == {
        "sandbox": {"enabled": True, "autoAllowBashIfSandboxed": True}}


def test_unavailable_names_the_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("sandboxcheck.targets.tools._local_tool_dirs", lambda: [])
    monkeypatch.delenv("SANDBOXCHECK_TOOLS", raising=False)
    why = load_target("claude-code").unavailable()
    assert why is not None and why.startswith("claude not found on PATH: npm install")
    assert os.environ["PATH"] == str(tmp_path)


# --- a shared session interrupted ---------------------------------------------------

def test_sigterm_during_a_shared_session_ends_the_agent_and_removes_everything(
        fake_claude: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The run's roots, and nothing else, land here (short: unix socket paths).
    tmp = Path(tempfile.mkdtemp(prefix="sct-", dir="/tmp"))
    monkeypatch.setenv("TMPDIR", str(tmp))
    marker = "27.3141"
    (tmp_path / "fake.yaml").write_text(json.dumps(PRESET))
    (tmp_path / "m.yaml").write_text(textwrap.dedent(f"""\
        checks:
          - id: agent.quick
            category: agent
            title: the session's first check
            probe: hello
            args: {{left: A, right: "{{token}}"}}
            evidence: {{kind: marker, marker: "A-{{token}}"}}
            expect: allowed
          - id: agent.slow
            category: agent
            title: a check the run is interrupted in
            probe: hello
            args: {{left: B, right: "{{token}}"}}
            agent: {{steps: [{{tool: Bash, command: "sleep {marker}; {{cmd}}"}}]}}
            evidence: {{kind: marker, marker: "B-{{token}}"}}
            expect: allowed
        """))
    proc = subprocess.Popen([sys.executable, "-m", "sandboxcheck.cli", "run", str(tmp_path / "m.yaml"),
                             "--target", str(tmp_path / "fake.yaml"), "--jobs", "1", "--no-preflight"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def running(needle: str) -> list[psutil.Process]:
        return [p for p in psutil.process_iter(["cmdline"]) if needle in " ".join(p.info["cmdline"] or [])]

    eventually(lambda: bool(running(f"sleep {marker}")) or proc.poll() is not None, timeout=30)
    if not running(f"sleep {marker}"):
        proc.kill()
        raise AssertionError(("the session never reached the slow check", proc.communicate()))
    sessions = [p for p in running(str(tmp_path / "bin" / "claude")) if p.info["cmdline"][0] != "/bin/sh"]
    try:
        assert len(sessions) == 1, [p.info["cmdline"] for p in sessions]  # both checks, one agent
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert eventually(lambda: not running(f"sleep {marker}") and not running(str(tmp_path / "bin" / "claude")))
    try:
        assert os.listdir(tmp) == []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- transcripts in reports -------------------------------------------------------

TRANSCRIPT_CHECKS = """\
- id: agent.bash-read
  category: agent
  title: Bash reads the outside secret
  probe: read_file
  args: {path: "{outside}/secret.txt"}
  expect: denied
- id: agent.retry
  category: agent
  title: retry unsandboxed (the fake refuses it)
  probe: write_file
  args: {path: "{outside}/created.txt", content: "written {token}"}
  agent:
    steps:
      - {tool: Bash, command: "false"}
      - {tool: Bash, disable_sandbox: true}
  evidence: {kind: file, path: "{outside}/created.txt", contains: "{token}"}
  expect: denied
"""


@pytest.mark.parametrize("sessions", [True, False], ids=["shared-sessions", "per-check"])
def test_json_result_carries_the_transcript(fake_claude: Path, sessions: bool) -> None:
    target = load_agent_target(PRESET, "fake.yaml", {})
    report = run_matrix(matrix(TRANSCRIPT_CHECKS), target, RunOptions(jobs=1, sessions=sessions))
    results = {r["id"]: r for r in json.loads(json.dumps(report.to_dict()))["results"]}
    (read,) = results["agent.bash-read"]["transcript"]
    assert (read["turn"], read["tool"], read["is_error"]) == (1, "Bash", False)
    # The probe command the model sent, and the probe's own output line that came back.
    assert "read_file.py --path" in read["input"]["command"]
    assert read["result"].startswith("SANDBOXCHECK-PROBE ")
    assert json.loads(read["result"].split(" ", 1)[1].splitlines()[0])["probe"] == "read_file"
    first, retry = results["agent.retry"]["transcript"]
    assert (first["turn"], first["input"]["command"], first["is_error"]) == (1, "false", True)
    assert (retry["turn"], retry["input"]["dangerouslyDisableSandbox"]) == (2, True)
    assert retry["result"] == "Run outside of the sandbox" and retry["is_error"] is True
    # Under the failing pytest item: the call, its input and what came back.
    failed = next(r for r in report.results if r.id == "agent.bash-read")
    assert failed.status is Status.FAIL
    text = describe_failure(report.matrix.checks[0], failed, "fake-claude")
    assert "  agent transcript:\n    1. Bash (session 1): is_error=false\n       input:  {" in text
    assert "       result: SANDBOXCHECK-PROBE {" in text
    # The table with -v: one short line per call.
    out = io.StringIO()
    render_table(report, out, color=False, verbose=True, width=120)
    lines = out.getvalue().splitlines()
    assert any(ln.startswith("      agent: 1. Bash ") and "read_file.py" in ln and ln.endswith("-> ok")
               for ln in lines)
    assert "      agent: 1. Bash false -> error" in lines
    assert any(ln.startswith("      agent: 2. Bash(dangerouslyDisableSandbox) ") and ln.endswith("... -> error")
               and len(ln) <= 120 for ln in lines), out.getvalue()


def test_transcript_is_trimmed_and_redacted(fake_claude: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-caller-" + "7f3a9c1e5b" * 2
    monkeypatch.setenv("SANDBOXCHECK_TEST_CALLER_TOKEN", secret)
    m = matrix(f"""\
    - id: agent.echo-secret
      category: agent
      title: a tool result that prints a caller secret, and a long one
      probe: hello
      args: {{left: X, right: "{{token}}"}}
      agent:
        steps:
          - {{tool: Bash, command: "echo {secret}; echo {secret} >&2"}}
          - {{tool: Bash, command: "head -c 10000 /dev/zero | tr '\\\\0' y"}}
      evidence: {{kind: marker, marker: "X-{{token}}"}}
      expect: denied
      no_control: the command is the check's own
    """)
    report = run_matrix(m, load_agent_target(PRESET, "fake.yaml", {}), RunOptions(jobs=1))
    text = json.dumps(report.to_dict())
    assert secret not in text
    shown, long = report.results[0].transcript
    assert shown.input["command"] == "echo [redacted]; echo [redacted] >&2"
    assert shown.result is not None and shown.result.count("[redacted]") == 2
    assert long.result is not None and long.result.startswith("y" * 2048)
    assert long.result.endswith("[... 7952 more characters]")


def test_plain_targets_have_no_transcript() -> None:
    m = matrix("""\
    - id: exec.hello
      category: exec
      title: hello
      probe: hello
      args: {left: X, right: "{token}"}
      evidence: {kind: marker, marker: "X-{token}"}
      expect: allowed
    """)
    report = run_matrix(m, load_target("none"), RunOptions(jobs=1))
    assert report.results[0].transcript is None
    assert "transcript" not in report.to_dict()["results"][0]
