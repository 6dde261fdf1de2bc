"""Issue 9, first table, rows 1-12: each attack replayed as code inside the target.

Every test runs the real harness (``python3 -m sandboxcheck run``) as a
subprocess with a TMPDIR of its own and decoy host files beside it, and then
asserts what must hold whatever a target does (``Scene.assert_safe``): decoy
bytes and modes unchanged, TMPDIR's mode unchanged, the run finished within its
bound, no attack process left, harness peak RSS under 100 MB, nothing left in
TMPDIR (or only what the report names as a leftover), and the caller's
GITHUB_TOKEN (a decoy) nowhere a target or a report could show it.
"""
from __future__ import annotations

import time

import pytest

from marks import requires_landlock
from hostile_kit import Scene, hello, hello_watching, read_notes, requires_bwrap, requires_chattr, spawn

WRAPS = ["none", pytest.param("bwrap-loose", marks=requires_bwrap)]


# ------------------------------------------------------------------ row 1
def test_row01_root_renamed_and_replaced_by_symlink_to_host_folder(scene: Scene) -> None:
    """Row 1: the target renames {root} away and puts a symlink to a host folder in its
    place; later checks reuse the root (--jobs 1). Reseed must not work through it."""
    body = '''
mv "$ROOT" "$ROOT.away-$$" && ln -s "$HOST/victim" "$ROOT" && echo swapped >>"$FIND/row1"
'''
    run = scene.run(scene.matrix([hello(i) for i in range(6)]), scene.target(body), "--timeout", "5")
    assert (scene.find / "row1").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)


# ------------------------------------------------------------------ row 2
def test_row02_keep_workspace_note_written_through_symlink(scene: Scene) -> None:
    """Row 2: with --keep-workspace the target puts a symlink at {root}/check.txt (and at
    the note's new place beside the root, <root>.check.txt) pointing at a host file."""
    body = '''
ln -sfn "$HOST/file.txt" "$ROOT/check.txt"
ln -sfn "$HOST/file.txt" "$ROOT.check.txt"
ln -sfn "$HOST/victim/a.txt" "$RUNF/check.txt"
echo planted >>"$FIND/row2"
'''
    run = scene.run(scene.matrix([hello(1), hello(2)]), scene.target(body), "--keep-workspace",
                    "--timeout", "5")
    assert (scene.find / "row2").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run, tmp="skip")  # the kept roots stay by request
    assert scene.tmp_entries(), "--keep-workspace kept nothing"


# ------------------------------------------------------------------ row 3
@pytest.mark.parametrize("wrap", WRAPS)
def test_row03_background_swapper_of_seeded_files(scene: Scene, wrap: str) -> None:
    """Row 3: a setsid'd background process keeps swapping .env, notes.txt and .git/config
    for symlinks to a host file while later checks reuse the root."""
    body = '''
setsid sh -c '
  end=$(( $(date +%s) + 20 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    for f in .env notes.txt .git/config; do
      ln -sfn "$1/file.txt" "$f.swap" 2>/dev/null && mv -Tf "$f.swap" "$f" 2>/dev/null
    done
  done' "$MARK-swapper" "$HOST" </dev/null >/dev/null 2>&1 &
echo started >>"$FIND/row3"
sleep 0.2
'''
    run = scene.run(scene.matrix([read_notes(i) for i in range(8)]), scene.target(body, wrap),
                    "--timeout", "5")
    assert (scene.find / "row3").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)


# ------------------------------------------------------------------ row 4
@requires_chattr
@pytest.mark.parametrize("wrap", WRAPS)
def test_row04_immutable_file_blocks_removal(scene: Scene, wrap: str) -> None:
    """Row 4: the target makes a file immutable so the final removal fails. TMPDIR must
    keep mode 1777; what is left is named (report `leftovers`), nothing else stays."""
    body = '''
if once row4; then
  echo stuck >"$WS/immutable.txt" && chattr +i "$WS/immutable.txt" && echo made >>"$FIND/row4"
fi
'''
    run = scene.run(scene.matrix([hello(1), hello(2), hello(3)]), scene.target(body, wrap), "--timeout", "5")
    if not (scene.find / "row4").exists():
        pytest.skip("chattr +i did not work inside the target here: " + run.brief())
    scene.assert_safe(run, tmp="reported")
    assert any("immutable.txt" in x for x in run.leftovers()), (
        f"the immutable file is not named in the report's leftovers: {run.leftovers()}")
    assert "immutable.txt" in run.stderr, "the leftover is not named on stderr"


def test_row04_process_keeps_creating_files(scene: Scene) -> None:
    """Row 4, second form: a background process keeps creating files so removal never ends."""
    body = '''
if once row4b; then
  setsid sh -c '
    i=0; end=$(( $(date +%s) + 25 ))
    while [ "$(date +%s)" -lt "$end" ]; do
      i=$((i+1)); : >"f$i"; mkdir -p "d$i/x" 2>/dev/null
    done' "$MARK-creator" </dev/null >/dev/null 2>&1 &
  echo started >>"$FIND/row4b"
  sleep 0.3
fi
'''
    run = scene.run(scene.matrix([hello(1), hello(2), hello(3)]), scene.target(body), "--timeout", "5")
    assert (scene.find / "row4b").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run, max_seconds=40)


# ------------------------------------------------------------------ row 5
@requires_chattr
def test_row05_run_folder_swapped_for_symlink(scene: Scene) -> None:
    """Row 5: the run folder is swapped for a symlink to a host folder (and an immutable
    file makes the removal fail, the path on which the old error handler chmodded)."""
    body = '''
if once row5; then
  echo stuck >"$WS/immutable.txt" && chattr +i "$WS/immutable.txt"
  mv "$RUNF" "$RUNF.moved" && ln -s "$HOST/victim" "$RUNF" && echo swapped >>"$FIND/row5"
fi
'''
    run = scene.run(scene.matrix([hello(1), hello(2), hello(3)]), scene.target(body), "--timeout", "5")
    assert (scene.find / "row5").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run, tmp="reported")


@requires_chattr
def test_row05_folder_on_removal_path_swapped_during_removal(scene: Scene) -> None:
    """Row 5, racing form: a background process keeps swapping workspace/src (which holds
    an immutable file) with a symlink to a host folder while the harness removes the root."""
    body = '''
if once row5b; then
  echo stuck >"$WS/src/immutable.txt" && chattr +i "$WS/src/immutable.txt"
  setsid sh -c '
    end=$(( $(date +%s) + 20 ))
    while [ "$(date +%s)" -lt "$end" ]; do
      mv -T src src.real 2>/dev/null; ln -sfn "$1/victim" src 2>/dev/null
      rm -f src 2>/dev/null; mv -T src.real src 2>/dev/null
    done' "$MARK-racer" "$HOST" </dev/null >/dev/null 2>&1 &
  echo started >>"$FIND/row5b"
  sleep 0.2
fi
'''
    run = scene.run(scene.matrix([hello(1), hello(2), hello(3)]), scene.target(body), "--timeout", "5")
    assert (scene.find / "row5b").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run, tmp="reported")


# ------------------------------------------------------------------ row 6
FIFO_BODY = '''
mkfifo "$WS/fifo" "$OUT/created.txt" "$WS/src/generated.txt" 2>/dev/null
rm -f "$WS/.env" && mkfifo "$WS/.env"
echo armed >>"$FIND/armed"
'''


@pytest.mark.parametrize("wrap", WRAPS)
def test_row06_fifo_in_workspace_and_at_watched_path(scene: Scene, wrap: str) -> None:
    """Row 6: FIFOs in the workspace, at a seeded file and at a watched `file` evidence path:
    the harness must never block on them."""
    checks = [hello_watching(1), read_notes(2), hello_watching(3, "{workspace}/src/generated.txt"), hello(4)]
    run = scene.run(scene.matrix(checks), scene.target(FIFO_BODY, wrap), "--timeout", "5", timeout=45)
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run, max_seconds=40)


def test_row06_fifo_then_ctrl_c_exits_130_clean(scene: Scene) -> None:
    """Row 6: SIGINT while FIFOs sit in the root: exit 130 within seconds, everything removed."""
    body = FIFO_BODY + 'sleep 1\n'
    checks = [hello_watching(i) for i in range(30)]
    armed = scene.find / "armed"
    run = scene.run(scene.matrix(checks), scene.target(body), "--timeout", "5", timeout=60,
                    interrupt_when=lambda: armed.exists() and time.sleep(1.5) is None)
    assert armed.exists(), "the attack did not run: " + run.brief()
    assert run.stopped_by == "SIGINT", f"SIGINT did not stop the harness (needed {run.stopped_by})"
    scene.assert_safe(run, rcs=(130,))


# ------------------------------------------------------------------ row 7
HOLD_STDOUT = '''
setsid bash -c 'exec -a "$0" sleep 300' "$MARK-holder" </dev/null 2>/dev/null &
echo armed >>"$FIND/armed"
'''
# Landlock form: the child closes what it inherited and reopens the parent's stdout by /proc.
HOLD_STDOUT_PROC = '''
PP=$PPID
setsid bash -c 'exec >"/proc/$1/fd/1"; exec -a "$2" sleep 300' x "$PP" "$MARK-holder" </dev/null >/dev/null 2>&1 &
echo armed >>"$FIND/armed"
'''


@pytest.mark.parametrize("wrap", [*WRAPS, pytest.param("landlock", marks=requires_landlock)])
def test_row07_setsid_child_holds_stdout(scene: Scene, wrap: str) -> None:
    """Row 7: a setsid'd child keeps the target's stdout open (under landlock by reopening
    /proc/$PPID/fd/1): each check must still end within --timeout."""
    body = HOLD_STDOUT_PROC if wrap == "landlock" else HOLD_STDOUT
    run = scene.run(scene.matrix([hello(1), hello(2)]), scene.target(body, wrap), "--timeout", "4",
                    timeout=40)
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run, max_seconds=30)


def test_row07_held_stdout_then_ctrl_c_exits_130_clean(scene: Scene) -> None:
    """Row 7: SIGINT while a child holds the target's stdout: exit 130 within seconds."""
    armed = scene.find / "armed"
    body = HOLD_STDOUT + 'bash -c \'exec -a "$0" sleep 10\' "$MARK-foreground"\n'
    run = scene.run(scene.matrix([hello(1), hello(2), hello(3)]), scene.target(body), "--timeout", "20",
                    timeout=60, interrupt_when=lambda: armed.exists() and time.sleep(1.0) is None)
    assert armed.exists(), "the attack did not run: " + run.brief()
    assert run.stopped_by == "SIGINT", f"SIGINT did not stop the harness (needed {run.stopped_by})"
    scene.assert_safe(run, rcs=(130,))


# ------------------------------------------------------------------ row 8
def test_row08_one_gigabyte_file_in_workspace(scene: Scene) -> None:
    """Row 8: a 1 GB file in the workspace (and one at a watched path): RSS stays < 100 MB."""
    body = '''
truncate -s 1G "$WS/big.txt" "$OUT/created.txt" && echo armed >>"$FIND/armed"
printf '%s' "$GITHUB_TOKEN" | dd of="$WS/big.txt" bs=1 seek=900000000 conv=notrunc 2>/dev/null
'''
    run = scene.run(scene.matrix([read_notes(1), hello_watching(2)]), scene.target(body), "--timeout", "10",
                    timeout=60)
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)


def test_row08_400mb_on_stdout(scene: Scene) -> None:
    """Row 8: 400 MB on stdout (in lines): RSS stays < 100 MB."""
    body = '''
echo armed >>"$FIND/armed"
yes 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' | head -c 400000000
'''
    run = scene.run(scene.matrix([hello(1)]), scene.target(body), "--timeout", "20", timeout=60)
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)


def test_row08_character_device_in_workspace(scene: Scene) -> None:
    """Row 8: a character device (mknod c 1 5, like /dev/zero) in the workspace, at a
    seeded file and at a watched path: never read, RSS < 100 MB, no MemoryError."""
    body = '''
mknod "$WS/zero" c 1 5 && mknod "$OUT/created.txt" c 1 5 && echo armed >>"$FIND/armed"
rm -f "$WS/.env" && mknod "$WS/.env" c 1 5
mknod "$WS/src/generated.txt" c 1 5
'''
    checks = [read_notes(1), hello_watching(2), hello_watching(3, "{workspace}/src/generated.txt"), hello(4)]
    run = scene.run(scene.matrix(checks), scene.target(body), "--timeout", "5")
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)


# ------------------------------------------------------------------ row 9
def test_row09_background_sleep_in_control_run(scene: Scene) -> None:
    """Row 9: `sleep &` from the probe itself, so it also runs in the unsandboxed control
    (the fork-server path): nothing may outlive the harness."""
    shell = (f"setsid bash -c 'exec -a \"$0\" sleep 300' {scene.mark}-ctl </dev/null >/dev/null 2>&1 & "
             f"(bash -c 'exec -a \"$0\" sleep 300' {scene.mark}-ctl2 </dev/null >/dev/null 2>&1 &)")
    run = scene.run(scene.matrix([spawn(1, shell), spawn(2, shell)]), "none", "--timeout", "5")
    assert [r.get("observed") for r in run.results()] == ["allowed", "allowed"], (
        "the spawn probes did not run: " + run.brief())
    scene.assert_safe(run)


@pytest.mark.parametrize("wrap", WRAPS)
def test_row09_setsid_and_double_forked_processes(scene: Scene, wrap: str) -> None:
    """Row 9: setsid'd and double-forked processes started by the target."""
    body = '''
msleep_bg 300
( setsid bash -c 'exec -a "$0" sleep 300' "$MARK-dfork" </dev/null >/dev/null 2>&1 & ) &
( ( bash -c 'trap "" HUP; exec -a "$0" sleep 300' "$MARK-orphan" </dev/null >/dev/null 2>&1 & ) & )
echo armed >>"$FIND/armed"
'''
    run = scene.run(scene.matrix([hello(1), hello(2)]), scene.target(body, wrap), "--timeout", "5")
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)


# ------------------------------------------------------------------ row 10
ENV_HUNT = '''
# every ancestor that belongs to this run (its argv carries the marker): its environment
P=$PPID
while [ -n "$P" ] && [ "$P" -gt 1 ] 2>/dev/null; do
  tr '\\0' ' ' <"/proc/$P/cmdline" 2>/dev/null | grep -q -- "$MARK" || break
  echo "== ancestor $P" >>"$FIND/ancestors.txt"
  tr '\\0' '\\n' <"/proc/$P/environ" >>"$FIND/ancestors.txt" 2>/dev/null
  P=$(awk '/^PPid:/ {print $2}' "/proc/$P/status" 2>/dev/null)
done
# every process on the machine: only the decoy's shape is kept, nothing else
for e in /proc/[0-9]*/environ; do
  tr '\\0' '\\n' <"$e" 2>/dev/null | grep -a -o 'decoy-[0-9a-f]*' | sed "s|^|$e |"
done >>"$FIND/scan.txt" 2>/dev/null
echo scanned >>"$FIND/armed"
H=$(harness_pid)
tr '\\0' ' ' <"/proc/$H/environ" >&2
'''


def test_row10_target_reads_harness_environ(scene: Scene) -> None:
    """Row 10: the target reads /proc/PID/environ of the harness and of every ancestor
    (and scans every process): the caller's GITHUB_TOKEN must be nowhere it can read,
    nor in the table, the JSON/markdown/JUnit reports or stderr."""
    run = scene.run(scene.matrix([hello(1), read_notes(2)]), scene.target(ENV_HUNT), "--timeout", "5",
                    reports=("json", "markdown", "junit", "sarif"))
    assert (scene.find / "armed").exists(), "the attack did not run: " + run.brief()
    assert (scene.find / "ancestors.txt").exists(), "the attack found no ancestor of the run"
    scene.assert_safe(run)


def test_row10_passed_secret_printed_to_stderr_is_redacted(scene: Scene) -> None:
    """Row 10: a target given the caller's GITHUB_TOKEN (pass_env) prints it as its first
    stderr line and fails: the reason copied into every report must be redacted."""
    body = '''
echo "leak $GITHUB_TOKEN $SCHX_DECOY_SECRET" >&2
echo "second line $GITHUB_TOKEN" >&2
echo "stdout $GITHUB_TOKEN"
exit 3
'''
    target = scene.target(body, pass_env=["GITHUB_TOKEN", "SCHX_DECOY_SECRET"])
    run = scene.run(scene.matrix([hello(1), read_notes(2)]), target, "--timeout", "5",
                    reports=("json", "markdown", "junit", "sarif"))
    assert run.report is not None, "no JSON report: " + run.brief()
    scene.assert_safe(run)


# ------------------------------------------------------------------ row 11
def test_row11_target_removes_the_run_folder(scene: Scene) -> None:
    """Row 11: `rm -rf $(dirname {root})` (the run's folder, probes and sockets included)."""
    body = '''
rm -rf "$RUNF" && echo removed >>"$FIND/row11"
'''
    run = scene.run(scene.matrix([hello(i) for i in range(4)]), scene.target(body), "--timeout", "5")
    assert (scene.find / "row11").exists(), "the attack did not run: " + run.brief()
    scene.assert_safe(run)


# ------------------------------------------------------------------ row 12
def test_row12_target_sigkills_the_harness(scene: Scene) -> None:
    """Row 12: the target SIGKILLs the harness. Its processes (the attack's sleeper too)
    must go with it, and the next run must remove the dead run's folder and say so."""
    body = '''
if once row12; then
  msleep_bg 300
  H=$(harness_pid)
  echo "$H" >"$FIND/row12"
  [ -n "$H" ] && kill -9 "$H"
  sleep 2
fi
'''
    run = scene.run(scene.matrix([hello(i) for i in range(4)]), scene.target(body), "--timeout", "5",
                    timeout=30)
    assert (scene.find / "row12").read_text().strip(), "the attack found no harness: " + run.brief()
    assert run.rc == -9, f"the harness was not killed by the attack: {run.brief()}"
    scene.assert_host_unchanged()
    scene.assert_no_process_left(grace=5.0)
    stale = [e for e in scene.tmp_entries() if "/" not in e]
    assert stale, "nothing of the killed run in TMPDIR (the test did not exercise the clean-up)"
    # a later run (an ordinary one) removes the dead harness's folder and says so
    again = scene.run(scene.matrix([hello(9)]), "none", "--timeout", "5")
    scene.assert_safe(again)
    said = again.stderr + " ".join(map(str, (again.report or {}).get("removed_stale_run_folders", [])))
    assert all(name in said for name in stale), f"the later run did not say it removed {stale}: {again.brief()}"
