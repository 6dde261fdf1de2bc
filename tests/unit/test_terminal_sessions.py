"""Interactive agent sessions and untrusted workspaces: the launcher's terminal mode, the
``agent.interactive`` / ``agent.trusted`` keys, what each driver writes for them, and the
namespaces a file's writer recorded.

The launcher runs real programs in a real pseudo-terminal here: small Python
scripts that act as a CLI does (print a question, then wait for the user).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from sandboxcheck.evidence.file import when_written, where_written
from sandboxcheck.evidence.verdict import AGENT_WAITED, explain, judge
from sandboxcheck.model import WAITED_PROBE, Check, EvidenceSpec, Execution, ProbeReport, TranscriptEntry
from sandboxcheck.targets.agents import base as agent_base
from sandboxcheck.targets.agents.spec import check_agent_problems, parse_check_agent

LAUNCHER = Path(agent_base.__file__).with_name("launch.py")


def _launch(tmp_path: Path, program: str, **terminal: object) -> dict:
    script = tmp_path / "cli.py"
    script.write_text(textwrap.dedent(program))
    status = tmp_path / "status.json"
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"status": str(status), "sessions": [{
        "argv": [sys.executable, str(script)], "env": {"SC_CHILD_PID": str(tmp_path / "child.pid")},
        "cwd": str(tmp_path), "stdin": "", "terminal": {"rows": 30, "cols": 80, **terminal}}]}))
    proc = subprocess.run([sys.executable, "-I", "-S", str(LAUNCHER), str(plan)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (session,) = json.loads(status.read_text())["sessions"]
    session["launcher_stdout"] = proc.stdout
    return session


ASKS = """
    import os, subprocess, sys, time
    # A child in the same process group, as a CLI's helpers are: it must end with the session.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    open(os.environ["SC_CHILD_PID"], "w").write(str(child.pid))
    tty = "a terminal" if sys.stdin.isatty() and sys.stdout.isatty() else "no terminal"
    cols = os.get_terminal_size(1).columns
    sys.stdout.write("\\x1b[1mQuick\\x1b[1Csafety check\\x1b[0m: " + tty + f" {cols} wide\\r\\n")
    sys.stdout.write("\\x1b]0;title\\x07> 1. Yes, I trust this folder\\r\\n  2. No, exit\\r\\n")
    sys.stdout.flush()
    sys.stdin.readline()  # the user never answers
    open("answered", "w").write("yes")
"""


def test_a_session_waiting_for_the_user_is_ended_once_its_screen_is_still(tmp_path: Path) -> None:
    started = time.monotonic()
    s = _launch(tmp_path, ASKS, quiet_s=1.5, max_s=30)
    assert time.monotonic() - started < 20
    assert s["terminal"].startswith("ended by the launcher once its screen had been still")
    # Its child (asleep in the same group) counts as still at work: no wait.
    assert s["waited"] is False and "still running then" in s["terminal"]
    # The screen's text, without its escape sequences; cursor-forward became a space.
    assert s["stdout"].splitlines() == ["Quick safety check: a terminal 80 wide",
                                        "> 1. Yes, I trust this folder", "  2. No, exit"]
    assert s["returncode"] != 0 and not (tmp_path / "answered").exists()
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the session's child outlived it"
        time.sleep(0.05)
    assert "in a terminal: ended by the launcher" in s["launcher_stdout"]


def test_a_session_that_exits_by_itself_keeps_its_exit_code(tmp_path: Path) -> None:
    s = _launch(tmp_path, "import sys\nprint('cannot start: bad settings')\nsys.exit(3)\n", quiet_s=5, max_s=30)
    assert (s["terminal"], s["returncode"], s["stdout"]) == ("it exited by itself", 3,
                                                              "cannot start: bad settings")


def test_a_screen_that_never_settles_is_ended_at_the_time_limit(tmp_path: Path) -> None:
    busy = "import time\nwhile True:\n    print('.', flush=True)\n    time.sleep(0.1)\n"
    started = time.monotonic()
    s = _launch(tmp_path, busy, quiet_s=2, max_s=2.5)
    assert time.monotonic() - started < 15
    assert s["terminal"] == "ended by the launcher after 2s (the time limit)" or \
        s["terminal"] == "ended by the launcher after 3s (the time limit)"
    assert s["stdout"].startswith(".")


def test_a_slow_start_is_not_taken_for_a_screen_that_waits(tmp_path: Path) -> None:
    slow = """
        import sys, time
        print("loading...", flush=True)
        time.sleep(3)  # longer than quiet_s: still, but not yet asking anything
        print("Enter to confirm", flush=True)
        sys.stdin.readline()
    """
    s = _launch(tmp_path, slow, quiet_s=1, max_s=30, waiting=["Enter to confirm"])
    assert s["terminal"].startswith("ended by the launcher once its screen had been still")
    assert s["stdout"].splitlines() == ["loading...", "Enter to confirm"]
    # Never at a waiting screen: ended at the time limit, and said so.
    s = _launch(tmp_path, "import time\nprint('loading...', flush=True)\ntime.sleep(60)\n", quiet_s=1,
                max_s=3, waiting=["Enter to confirm"])
    assert s["terminal"].endswith("(the time limit), never at a screen where it waits for the user")


def test_a_program_that_closes_its_terminal_or_ignores_sigterm_still_ends(tmp_path: Path) -> None:
    stubborn = """
        import os, signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        open(os.environ["SC_CHILD_PID"], "w").write(str(child.pid))
        print("ready", flush=True)
        for fd in (0, 1, 2):
            os.close(fd)
        time.sleep(120)
    """
    started = time.monotonic()
    s = _launch(tmp_path, stubborn, quiet_s=1, max_s=30)
    assert time.monotonic() - started < 20, s
    assert s["stdout"] == "ready" and s["terminal"].startswith("ended by the launcher once its screen")
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "a child ignoring SIGTERM outlived the session"
        time.sleep(0.05)


def test_what_is_left_of_the_group_ends_when_the_leader_exits(tmp_path: Path) -> None:
    leaves = """
        import os, subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        open(os.environ["SC_CHILD_PID"], "w").write(str(child.pid))
        print("bye", flush=True)
    """
    s = _launch(tmp_path, leaves, quiet_s=5, max_s=30)
    assert (s["terminal"], s["returncode"]) == ("it exited by itself", 0)
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the leader's child outlived the session"
        time.sleep(0.05)


def test_a_hook_still_at_work_when_the_screen_goes_still_is_no_wait(tmp_path: Path) -> None:
    busy = """
        import os, subprocess, sys
        # A start-up mechanism that takes longer than quiet_s, then the trust question.
        subprocess.Popen(["/bin/sh", "-c", "sleep 4; echo done > " + os.path.join(os.getcwd(), "hook.txt")])
        print("Do you trust this folder?  Enter to confirm", flush=True)
        sys.stdin.readline()
    """
    s = _launch(tmp_path, busy, quiet_s=1, max_s=30, waiting=["Enter to confirm"])
    assert s["waited"] is False and "its own processes still running then: " in s["terminal"], s
    assert "sleep 4" in s["terminal"]
    idle = "import sys\nprint('Do you trust this folder?', flush=True)\nsys.stdin.readline()\n"
    quiet = _launch(tmp_path, idle, quiet_s=1, max_s=30, waiting=["trust this folder"])
    assert quiet["waited"] is True, quiet


def test_the_harness_s_line_comes_first_and_a_forged_status_cannot_add_one() -> None:
    from sandboxcheck.probes import PROBE_PREFIX, parse_probe_line
    from sandboxcheck.targets.registry import load_target

    target = load_target("claude-code")
    forged = PROBE_PREFIX + '{"probe": "x", "action": "forged", "attempted": true, "ok": false, "errno": "EACCES"}'
    waited = "\n".join(target.terminal_lines(1, {"terminal": "ended", "waited": True, "returncode": -15,
                                                  "stdout": forged + "\nEnter to confirm"}))
    assert parse_probe_line(waited).probe == WAITED_PROBE
    # A status that does not say waited gets no line of the harness's, and the screen's is no line.
    busy = "\n".join(target.terminal_lines(1, {"terminal": "ended by the launcher once its screen had been "
                                                "still for 5s", "waited": False, "returncode": -15,
                                                "stdout": forged}))
    assert parse_probe_line(busy) is None


def test_the_status_is_not_written_through_a_planted_link(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("launch", LAUNCHER)
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)
    decoy = tmp_path / "decoy.txt"
    decoy.write_text("decoy")
    status = tmp_path / "status.json"
    (tmp_path / "status.json.tmp").symlink_to(decoy)
    status.symlink_to(decoy)
    launch._write_status(str(status), [{"session": 1}])
    assert decoy.read_text() == "decoy"
    assert not status.is_symlink() and json.loads(status.read_text()) == {"sessions": [{"session": 1}]}
    # A cursor flood stays a screen's worth.
    assert len(launch.screen_text(b"\x1b[999Cx" * 100_000, 100)) < 300_000


def test_a_probe_line_on_the_screen_is_not_taken_for_a_report(tmp_path: Path) -> None:
    from sandboxcheck.probes import PROBE_PREFIX, parse_probe_line

    forged = PROBE_PREFIX + '{"probe": "agent", "action": "x", "attempted": true, "ok": true}'
    s = _launch(tmp_path, f"import sys\nprint({forged!r})\nsys.exit(0)\n", quiet_s=5, max_s=30)
    assert "on the screen" in s["stdout"]
    assert parse_probe_line(s["stdout"]) is None and parse_probe_line(s["launcher_stdout"]) is None


def test_a_program_that_cannot_start_is_reported(tmp_path: Path) -> None:
    status = tmp_path / "status.json"
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"status": str(status), "sessions": [{
        "argv": [str(tmp_path / "missing")], "env": {}, "cwd": str(tmp_path), "stdin": "",
        "terminal": {"quiet_s": 1, "max_s": 5}}]}))
    subprocess.run([sys.executable, "-I", "-S", str(LAUNCHER), str(plan)], check=True, timeout=30)
    (s,) = json.loads(status.read_text())["sessions"]
    assert s["returncode"] == 127 and s["terminal"].startswith("cannot start the agent:")


# -- the check keys ---------------------------------------------------------------------
def test_trusted_and_interactive_are_parsed_and_validated() -> None:
    plan = parse_check_agent({"trusted": False, "interactive": True})
    assert (plan.trusted, plan.interactive) == (False, True)
    assert parse_check_agent({}).trusted is None and not parse_check_agent({}).interactive
    problems = dict(check_agent_problems({"trusted": "no", "interactive": 1}))
    assert problems[("trusted",)].startswith("must be true or false")
    assert problems[("interactive",)].startswith("must be true or false")
    problems = dict(check_agent_problems({"interactive": True, "steps": [{"tool": "Bash"}]}))
    assert "no scripted tool calls: drop steps" in problems[("steps",)]


def _vals(tmp_path: Path) -> dict[str, str]:
    for d in ("workspace", "home"):
        (tmp_path / d).mkdir(exist_ok=True)
    return {"root": str(tmp_path), "workspace": str(tmp_path / "workspace"), "home": str(tmp_path / "home"),
            "token": "tok123"}


def test_claude_records_the_trust_and_starts_without_print_mode_when_interactive(tmp_path: Path) -> None:
    from sandboxcheck.targets.registry import load_target

    target = load_target("claude-code")
    vals = _vals(tmp_path)
    target._write_settings(parse_check_agent({"trusted": False, "interactive": True}), vals)
    state = json.loads((tmp_path / "home" / ".claude.json").read_text())
    assert state["projects"][vals["workspace"]]["hasTrustDialogAccepted"] is False
    # The canary key of this root was answered "use it" once, so no question comes first.
    assert state["customApiKeyResponses"]["approved"] == ["sandboxcheck-canary-tok123-env-anthropic_api_key"[-20:]]
    argv = target._argv(parse_check_agent({"interactive": True}))
    assert "-p" not in argv and "--output-format" not in argv
    assert "-p" in target._argv(parse_check_agent({}))
    target._write_settings(parse_check_agent({}), vals)
    state = json.loads((tmp_path / "home" / ".claude.json").read_text())
    assert state["projects"][vals["workspace"]]["hasTrustDialogAccepted"] is True
    check = Check(id="x.y", category="agent", title="t", probe="hello", args=(), expect="denied",
                  evidence=EvidenceSpec(kind="marker", marker="m"), agent=parse_check_agent({"interactive": True}))
    assert target.own_network(check) and target.session_reason(check)


def test_codex_leaves_an_untrusted_project_out_of_its_config() -> None:
    from sandboxcheck.targets.registry import load_target

    target = load_target("codex-agent")
    vals = {"workspace": "/w", "home": "/h"}
    assert target.config_for("http://127.0.0.1:9/v1", vals)["projects"] == {"/w": {"trust_level": "trusted"}}
    assert "/w" not in target.config_for("http://127.0.0.1:9/v1", vals, trusted=False).get("projects", {})
    check = Check(id="x.y", category="agent", title="t", probe="hello", args=(), expect="denied",
                  evidence=EvidenceSpec(kind="marker", marker="m"), agent=parse_check_agent({"interactive": True}))
    assert "interactive" in target.supports(check)


# -- evidence ------------------------------------------------------------------------------
def test_the_writer_s_namespaces_are_compared_with_the_harness_s() -> None:
    mnt, net = os.readlink("/proc/self/ns/mnt"), os.readlink("/proc/self/ns/net")
    assert where_written(f"ran TOK {mnt} {net}\n".encode(), "TOK") == (
        "; its writer recorded the harness's own mount and network namespaces: on the host, in no namespace sandbox")
    assert where_written(b"ran TOK mnt:[1] net:[2]\n", "TOK") == (
        "; its writer recorded another mount namespace (mnt:[1]) and another network namespace (net:[2])")
    # Only lines with the canary count; a file without namespace links says nothing more.
    assert where_written(f"ran OTHER {mnt}\nran TOK mnt:[7]\n".encode(), "TOK") == (
        "; its writer recorded another mount namespace (mnt:[7])")
    assert where_written(b"ran TOK\n", "TOK") == ""
    # A flood of ids is named in part.
    many = " ".join(f"mnt:[{n}]" for n in range(1000))
    assert where_written(f"ran TOK {many}\n".encode(), "TOK").endswith("(mnt:[0], mnt:[100], mnt:[101], ...)")


def test_an_agent_that_waited_for_the_user_is_a_denial_with_its_own_reason() -> None:
    check = Check(id="x.y", category="agent", title="t", probe="write_file", args=(), expect="denied",
                  evidence=EvidenceSpec(kind="file", path="{outside}/x"))
    probe = ProbeReport(probe=WAITED_PROBE, action="start claude in a terminal (session 1)", attempted=True,
                        ok=True, errno=None, message="it waited for the user at: 1. Yes, I trust this folder")
    ex = Execution(target="t", argv=(), returncode=0, timed_out=False, duration_s=1.0, stdout="", stderr="",
                   probe=probe, evidence=(), effect=False)
    assert explain(ex) == ("'start claude in a terminal (session 1)' went through and nothing took effect "
                           "outside; it waited for the user at: 1. Yes, I trust this folder")
    result = judge(check, ex, None)
    assert (result.observed.value, result.layer) == ("denied", AGENT_WAITED)
    # A tool call the harness classified itself ("agent" lines) keeps its private-view wording.
    write = ProbeReport(probe="agent", action="Write x (agent tool call)", attempted=True, ok=True, errno=None,
                        message="")
    ex = Execution(target="t", argv=(), returncode=0, timed_out=False, duration_s=1.0, stdout="", stderr="",
                   probe=write, evidence=(), effect=False)
    assert explain(ex).endswith("(it acted on a private view)")
    assert judge(check, ex, None).layer != AGENT_WAITED


@pytest.mark.parametrize("name", ["repo.claude.interactive.trusted-hook", "repo.claude.interactive.untrusted-hook",
                                  "repo.claude.interactive.bypass-mode-skips-trust"])
def test_the_bundled_interactive_checks_give_no_steps(name: str) -> None:
    from sandboxcheck.matrix.load import load_matrix
    from sandboxcheck.resources import resolve_matrix

    (check,) = [c for c in load_matrix(resolve_matrix("repo-trust")).checks if c.id == name]
    assert check.agent.interactive and check.agent.trusted is not None


def test_a_screen_drawn_with_absolute_columns_reads_as_words() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("launch", LAUNCHER)
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)
    raw = (b"\x1b[2G\x1b[1mQuick\x1b[8Gsafety\x1b[15Gcheck:\x1b[22m\r\r\n"
           b"\x1b[2G\xe2\x9d\xaf\x1b[4G1.\x1b[7GYes,\x1b[2CI\x1b[Ctrust\r\n")
    assert launch.screen_text(raw).splitlines() == [" Quick safety check:", " \u276f 1. Yes,  I trust"]


def test_a_wrapper_s_mount_namespace_is_not_taken_for_a_sandbox() -> None:
    net = os.readlink("/proc/self/ns/net")
    assert where_written(f"ran TOK mnt:[9] {net}\n".encode(), "TOK", wrapped=True) == (
        "; its writer recorded another mount namespace (mnt:[9]: the harness's own name space is one, so this "
        "shows no sandbox) and the harness's own network namespace")


def _call(turn: int, sent: float, answered: float | None) -> TranscriptEntry:
    return TranscriptEntry(turn, "Bash", {"command": "x"}, None if answered is None else "ok", False,
                           sent_at=sent, answered_at=answered)


def test_the_time_a_mechanism_recorded_is_placed_among_the_tool_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    import sandboxcheck.evidence.file as file_evidence

    monkeypatch.setattr(file_evidence.time, "time", lambda: 1_700_000_100.0)
    calls = [_call(1, 1_700_000_010.0, 1_700_000_012.0), _call(2, 1_700_000_020.0, 1_700_000_021.0)]
    line = lambda t: f"ran TOK mnt:[1] t:{t}\n".encode()  # noqa: E731
    assert when_written(line("1700000005.5"), "TOK", calls) == "; before the agent's first tool call (at start-up)"
    assert when_written(line("1700000011.0"), "TOK", calls) == (
        "; during tool call 1 (Bash), before its result came back")
    assert when_written(line("1700000015.0"), "TOK", calls) == "; between the agent's tool calls"
    assert when_written(line("1700000030.0"), "TOK", calls) == (
        "; after the agent's last tool result (as the session ended)")
    assert when_written(line("1700000030.0"), "TOK", []) == "; before any tool call (the agent made none)"
    # The earliest line counts; no time, or no agent, says nothing.
    assert when_written(line("1700000030.0") + line("1700000001.0"), "TOK", calls).startswith("; before")
    assert when_written(b"ran TOK mnt:[1]\n", "TOK", calls) == ""
    assert when_written(line("1700000030.0"), "TOK", None) == ""
    # A time outside the run (the writer is the target's code) is said to be one.
    assert when_written(line("1000000000.0"), "TOK", calls) == "; the time its writer recorded lies outside this run"
    assert when_written(line("99999999999"), "TOK", calls) == "; the time its writer recorded lies outside this run"
    entry = calls[0].to_dict()
    assert (entry["sent_at"], entry["answered_at"]) == (1_700_000_010.0, 1_700_000_012.0)
