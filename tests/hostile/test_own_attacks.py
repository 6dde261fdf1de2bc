"""Attacks beyond issue 9's table, each run as code inside the target.

Same rules as ``test_issue9_rows.py``: every run is judged from outside by
``Scene.assert_safe`` (decoys, TMPDIR mode, wall time, processes, RSS,
leftovers, the caller's secret), plus what each attack specifically aims at.
"""
from __future__ import annotations

import pytest

from hostile_kit import Scene, hello, hello_watching, read_notes, requires_bwrap, requires_mount, ssh_agent

WRAPS = ["none", pytest.param("bwrap-loose", marks=requires_bwrap)]


def test_hard_links_of_a_host_file_in_the_root_then_reseeded(scene: Scene) -> None:
    """Seeded files (notes.txt, .env, .git/config, a home credential) replaced by hard links
    of a host file; the roots are recycled for later checks (--jobs 1). Reseeding rewrites
    seeded files in place: it must never write into the host file's inode nor chmod it."""
    body = '''
for f in "$WS/notes.txt" "$WS/.env" "$WS/.git/config" "$FHOME/.ssh/id_ed25519" "$OUT/secret.txt"; do
  ln -f "$HOST/hard.txt" "$f" 2>>"$FIND/errors"
done
ln "$HOST/hard.txt" "$WS/extra-link" 2>>"$FIND/errors"
echo armed >>"$FIND/armed"
'''
    run = scene.run(scene.matrix([read_notes(i) for i in range(6)]), scene.target(body), "--timeout", "5")
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    errors = scene.find / "errors"
    assert not errors.exists() or not errors.read_text().strip(), "hard links failed: " + errors.read_text()
    scene.assert_safe(run)


@requires_mount
def test_bind_mount_of_a_host_folder_inside_the_root(scene: Scene) -> None:
    """A host folder bind-mounted over workspace/src and outside/drop (the target shares the
    host's mount namespace under `none`): reseed and removal must never delete or write
    through the mount; what cannot go is left and named."""
    body = '''
if once mount; then
  mount --bind "$HOST/mnt" "$WS/src" && mount --bind "$HOST/victim" "$OUT/drop" && echo armed >>"$FIND/armed"
fi
'''
    run = scene.run(scene.matrix([hello(1), read_notes(2), hello(3)]), scene.target(body), "--timeout", "5")
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run, tmp="reported")


def test_bounded_fork_bomb(scene: Scene) -> None:
    """200 processes (setsid'd, double-forked, nested) from one check: all gone at the end,
    the harness quick and small."""
    body = '''
if once bomb; then
  i=0
  while [ $i -lt 100 ]; do
    setsid bash -c 'exec -a "$0" sleep 300' "$MARK-bomb" </dev/null >/dev/null 2>&1 &
    ( bash -c 'exec -a "$0" sleep 300' "$MARK-bomb2" </dev/null >/dev/null 2>&1 & ) &
    i=$((i+1))
  done
  echo armed >>"$FIND/armed"
fi
'''
    run = scene.run(scene.matrix([hello(1), hello(2)]), scene.target(body), "--timeout", "10", timeout=60)
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run, max_seconds=30)


def test_run_folder_renamed_while_the_run_goes_on(scene: Scene) -> None:
    """The target renames the run's own folder (probe copy, every root) within TMPDIR and a
    background process keeps renaming it: no crash, nothing of it left behind unnamed."""
    body = '''
if once rename; then
  mv "$RUNF" "$SCTMP/renamed-$$" && echo armed >>"$FIND/armed"
  setsid sh -c '
    end=$(( $(date +%s) + 15 )); n=0
    while [ "$(date +%s)" -lt "$end" ]; do
      for d in "$1"/renamed-*; do [ -d "$d" ] && mv "$d" "$1/renamed-x$n" 2>/dev/null; n=$((n+1)); done
      sleep 0.05
    done' "$MARK-renamer" "$SCTMP" </dev/null >/dev/null 2>&1 &
fi
'''
    run = scene.run(scene.matrix([hello(i) for i in range(4)]), scene.target(body), "--timeout", "5")
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)


def test_symlink_at_watched_file_path(scene: Scene) -> None:
    """Symlinks to host files planted at `file` evidence paths (and over .git/config): the
    harness must not follow them, write through them, or copy the host file into a report."""
    body = '''
ln -sfn "$HOST/file.txt" "$OUT/created.txt"
ln -sfn "$HOST/victim/a.txt" "$WS/src/generated.txt"
rm -f "$WS/.git/config" && ln -s "$HOST/file.txt" "$WS/.git/config"
echo armed >>"$FIND/armed"
'''
    checks = [hello_watching(1), hello_watching(2, "{workspace}/src/generated.txt"),
              hello_watching(3, "{workspace}/.git/config"), hello(4)]
    run = scene.run(scene.matrix(checks), scene.target(body), "--timeout", "5")
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)
    copied = [name for name, text in {"stdout": run.stdout, **run.report_texts}.items()
              if scene.host_content in text]
    assert not copied, f"the host file's content was copied into {copied}"


def test_writes_into_harness_file_descriptors(scene: Scene) -> None:
    """The target appends junk to every descriptor of the harness and of its own keeper
    through /proc/PID/fd (pipes, files): the harness must not hang, crash or leak."""
    body = '''
if once fds; then
  H=$(harness_pid)
  P=$PPID
  for pid in $H $P; do
    for f in /proc/$pid/fd/*; do
      printf 'JUNK %s {"probe": "forged"}\\n' "$MARK" >>"$f" 2>/dev/null
    done
  done
  echo "$H $P" >>"$FIND/armed"
fi
'''
    run = scene.run(scene.matrix([hello(1), read_notes(2), hello(3)]), scene.target(body), "--timeout", "5")
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    assert len((scene.find / "armed").read_text().split()) == 2, "the attack did not find the harness"
    scene.assert_safe(run)


def test_target_closes_stdout_and_keeps_running(scene: Scene) -> None:
    """The target closes stdout and stderr and then sleeps far beyond --timeout: the check
    must end at its timeout, the process killed."""
    body = '''
echo armed >>"$FIND/armed"
exec >&- 2>&-
exec bash -c 'exec -a "$0" sleep 300' "$MARK-closed"
'''
    run = scene.run(scene.matrix([hello(1), hello(2)]), scene.target(body), "--timeout", "3", timeout=45)
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run, max_seconds=25)


@pytest.mark.parametrize("wrap", WRAPS)
def test_processes_that_ignore_sigterm(scene: Scene, wrap: str) -> None:
    """The target and a setsid'd child ignore SIGTERM, SIGINT and SIGHUP and sleep past
    --timeout: killed anyway, in bounded time."""
    body = '''
echo armed >>"$FIND/armed"
setsid bash -c 'trap "" TERM INT HUP; exec -a "$0" sleep 300' "$MARK-stubborn" </dev/null >/dev/null 2>&1 &
trap '' TERM INT HUP
exec bash -c 'exec -a "$0" sleep 300' "$MARK-stubborn-main"
'''
    run = scene.run(scene.matrix([hello(1)]), scene.target(body, wrap), "--timeout", "3", timeout=45)
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run, max_seconds=25)


def test_huge_stderr(scene: Scene) -> None:
    """300 MB on stderr (lines): harness RSS < 100 MB, the report stays small."""
    body = '''
echo armed >>"$FIND/armed"
yes 'EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE' | head -c 300000000 >&2
'''
    run = scene.run(scene.matrix([hello(1)]), scene.target(body), "--timeout", "20", timeout=60)
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)
    sizes = {name: len(text) for name, text in run.report_texts.items()}
    assert all(n < 4 << 20 for n in sizes.values()), f"reports grew with the target's output: {sizes}"


def test_very_long_line_without_newline(scene: Scene) -> None:
    """300 MB on stdout in one line with no newline, then the probe's own output glued to
    it: RSS < 100 MB, no hang."""
    body = '''
echo armed >>"$FIND/armed"
head -c 300000000 /dev/zero | tr '\\0' 'A'
'''
    run = scene.run(scene.matrix([hello(1)]), scene.target(body), "--timeout", "20", timeout=60)
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)


def test_socket_of_the_target_replaces_ssh_agent_sink(scene: Scene) -> None:
    """The target replaces run/ssh-agent.sock with a listening socket of its own (held by a
    setsid'd process). Later checks (recycled roots, --jobs 1) must reach the harness's
    sink again: under `none` each of them is observed `allowed`."""
    body = '''
if once sock; then
  rm -f "$RUNS/ssh-agent.sock"
  setsid python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8); time.sleep(300)' \
    "$RUNS/ssh-agent.sock" "$MARK-fakeagent" </dev/null >/dev/null 2>&1 &
  i=0; while [ ! -S "$RUNS/ssh-agent.sock" ] && [ $i -lt 50 ]; do sleep 0.05; i=$((i+1)); done
  echo armed >>"$FIND/armed"
fi
'''
    run = scene.run(scene.matrix([ssh_agent(i) for i in range(4)]), scene.target(body), "--timeout", "5")
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)
    later = [r for r in run.results() if r.get("id") != "hostile.ssh-agent-0"]
    assert later and all(r.get("observed") == "allowed" for r in later), (
        "after the socket was replaced, later checks no longer reach the ssh-agent sink: "
        + str([(r.get("id"), r.get("observed"), r.get("reason")) for r in later]))


def test_chmod_000_on_seeded_folders(scene: Scene) -> None:
    """Seeded folders and files made mode 000 (and the root itself): the root is retired or
    reset, never left, never a crash."""
    body = '''
chmod 000 "$FHOME/.ssh" "$WS/.git" "$WS/src" "$OUT" "$RUNS" "$WS/notes.txt" "$FHOME/.aws/credentials"
chmod 000 "$FHOME" && echo armed >>"$FIND/armed"
'''
    run = scene.run(scene.matrix([read_notes(i) for i in range(5)]), scene.target(body), "--timeout", "5")
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)


def test_names_with_newlines_and_invalid_utf8(scene: Scene) -> None:
    """Files and folders whose names hold newlines, invalid UTF-8 and terminal escapes, at a
    watched path's folder too; output with invalid UTF-8. No crash, reports parse."""
    body = '''
touch "$WS/$(printf 'new\\nline')" "$WS/$(printf 'bad\\377\\376utf8')" "$OUT/$(printf 'esc\\033[31mred')"
mkdir -p "$WS/$(printf 'dir\\nwith\\377')/$(printf '\\001\\002')" "$FHOME/.ssh/$(printf '\\377')"
touch "$WS/$(printf 'dir\\nwith\\377')/$(printf '\\001\\002')/$(printf 'x\\ny')"
printf 'bytes \\377\\376\\375 and \\033]0;title\\007\\n'
printf 'err \\377\\376\\n' >&2
echo armed >>"$FIND/armed"
'''
    run = scene.run(scene.matrix([hello(1), read_notes(2), hello_watching(3)]), scene.target(body),
                    "--timeout", "5")
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)
    assert run.report is not None, "the JSON report is missing or does not parse"


def test_very_deep_folder_tree(scene: Scene) -> None:
    """3000 nested folders in the workspace (deeper than PATH_MAX and Python's recursion
    limit): removal and reseed must cope (no RecursionError exit 4, nothing left)."""
    body = '''
if once deep; then
  ( cd "$WS" && i=0 && while [ $i -lt 3000 ]; do mkdir d && cd d || break; i=$((i+1)); done
    echo "$i" >>"$FIND/armed" )
fi
'''
    run = scene.run(scene.matrix([hello(1), hello(2), hello(3)]), scene.target(body), "--timeout", "10",
                    timeout=60)
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)


def test_target_kills_its_keeper(scene: Scene) -> None:
    """The target SIGKILLs its own parent (the harness's per-launch keeper) after starting a
    setsid'd child: the child must not escape to init and outlive the run."""
    body = '''
if once keeper; then
  msleep_bg 300
  ( setsid bash -c 'exec -a "$0" sleep 300' "$MARK-escapee" </dev/null >/dev/null 2>&1 & )
  P=$PPID
  tr '\\0' ' ' <"/proc/$P/cmdline" >>"$FIND/armed"; echo >>"$FIND/armed"
  tr '\\0' ' ' <"/proc/$P/cmdline" | grep -q -- "$MARK" && kill -9 "$P"
  sleep 0.5
fi
'''
    run = scene.run(scene.matrix([hello(1), hello(2)]), scene.target(body), "--timeout", "5")
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    assert scene.mark in (scene.find / "armed").read_text(), "the target's parent is not the run's: not killed"
    scene.assert_safe(run)


def _parent_of(var: str, child: str) -> str:
    return f"{var}=$(awk '/^PPid:/ {{print $2}}' \"/proc/{child}/status\")"


def test_target_stops_the_launch_server(scene: Scene) -> None:
    """SIGSTOP to the launch server (two levels up): the next launch must not wait forever;
    the stopped server is replaced and ended."""
    body = f'''
if once stopsrv; then
  {_parent_of("K", "$PPID")}; {_parent_of("S", "$K")}
  kill -STOP "$S" && echo "$S" >"$FIND/stopped"
fi
'''
    run = scene.run(scene.matrix([hello(1), read_notes(2), hello(3)]), scene.target(body), "--timeout", "5",
                    timeout=40)
    assert (scene.find / "stopped").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run, max_seconds=30)


def test_target_kills_its_keeper_and_the_launch_server(scene: Scene) -> None:
    """A setsid'd child, then SIGKILL to both subreapers above it: the child lands on the
    harness, which ends it."""
    body = f'''
if once both; then
  ( setsid bash -c 'exec -a "$0" sleep 300' "$MARK-escapee" </dev/null >/dev/null 2>&1 & )
  sleep 0.2
  {_parent_of("K", "$PPID")}; {_parent_of("S", "$K")}
  echo "$K $S" >"$FIND/armed"
  kill -9 "$S" "$K"
  sleep 0.5
fi
'''
    run = scene.run(scene.matrix([hello(1), hello(2)]), scene.target(body), "--timeout", "5")
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)


def test_target_stops_its_keeper(scene: Scene) -> None:
    """SIGSTOP to the keeper after starting a daemon: the check ends soon after its timeout,
    the keeper is killed and the daemon with it."""
    body = f'''
if once stopkeeper; then
  msleep_bg 300
  {_parent_of("K", "$PPID")}
  kill -STOP "$K" && echo "$K" >"$FIND/stopped"
fi
'''
    run = scene.run(scene.matrix([hello(1), hello(2)]), scene.target(body), "--timeout", "3", timeout=40)
    assert (scene.find / "stopped").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run, max_seconds=25)


def test_a_hopping_process_and_its_killed_subreapers(scene: Scene) -> None:
    """A process that forks and exits in a loop (each child orphaned at once), then SIGKILL
    to its keeper and the launch server: every pass of the sweeps must catch the next hop."""
    body = f'''
if once hopper; then
  /usr/bin/python3 -c "
import os, sys, time
end = time.time() + 20
while time.time() < end:
    if os.fork():
        os._exit(0)
" "$MARK-hopper" </dev/null >/dev/null 2>&1 &
  sleep 0.3
  {_parent_of("K", "$PPID")}; {_parent_of("S", "$K")}
  echo "$K $S" >"$FIND/armed"
  kill -9 "$K" "$S"
fi
'''
    run = scene.run(scene.matrix([hello(1), hello(2)]), scene.target(body), "--timeout", "5", timeout=60)
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run, max_seconds=40)  # the hopper carries the marker: none may be left


def test_deep_and_wide_tree_with_long_names(scene: Scene) -> None:
    """800 levels, each with 8 empty folders of 250-byte names: the workspace scans and the
    removal stay linear, bounded in memory and well inside the check's time."""
    body = '''
/usr/bin/python3 - "$WS" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
for i in range(800):
    for j in range(8):
        os.mkdir(chr(97 + j) * 250, dir_fd=fd)
    os.mkdir("z" * 250, dir_fd=fd)
    nxt = os.open("z" * 250, os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = nxt
PY
'''
    run = scene.run(scene.matrix([read_notes(1), read_notes(2)]), scene.target(body), "--timeout", "20",
                    "--jobs", "1", timeout=90)
    scene.assert_safe(run, max_seconds=60)
