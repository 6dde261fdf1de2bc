"""Throwaway roots: seeding, and reseeding the root of a long-lived session."""
from __future__ import annotations

import os
import socket
from pathlib import Path

from sandboxcheck.labels import CANARY_PREFIX
from sandboxcheck.run.workspace import new_token, reseed, seed


def texts(root: Path) -> dict[str, str]:
    """Every regular file under ``root`` (relative path -> content), and every symlink's target."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_text(errors="replace")
    return out


def test_seed_gives_every_canary_the_token(tmp_path: Path) -> None:
    token = new_token()
    root = seed(tmp_path, token)
    found = [rel for rel, text in texts(tmp_path).items() if CANARY_PREFIX in text]
    assert len(found) >= 14
    for rel in found:
        assert f"{CANARY_PREFIX}-{token}-" in texts(tmp_path)[rel], rel
    assert all(token in v for v in root.env_canaries.values())
    assert (tmp_path / f"outside/{CANARY_PREFIX}-{token}-listing").exists()


def test_reseed_rewrites_everything_but_what_the_session_keeps(tmp_path: Path) -> None:
    old = new_token()
    root = seed(tmp_path, old)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "run" / "ssh-agent.sock"))
    root.sockets["ssh-agent"] = (str(tmp_path / "run" / "ssh-agent.sock"),
                                 (tmp_path / "run" / "ssh-agent.sock").stat().st_ino)
    other = socket.socket(socket.AF_UNIX)
    other.bind(str(tmp_path / "run" / "docker.sock"))  # a check's own socket, not the harness's
    try:
        # What an agent and a check leave behind.
        (tmp_path / "home" / ".claude").mkdir()
        (tmp_path / "home" / ".claude" / "state.json").write_text("agent state")
        (tmp_path / "workspace" / ".claude" / "settings.json").write_text('{"sandbox": {"enabled": true}}')
        (tmp_path / "workspace" / ".claude" / "settings.local.json").write_text("{}")
        (tmp_path / "outside" / "created.txt").write_text(f"written {old}")
        (tmp_path / "workspace" / "src" / "extra.py").write_text("x")
        (tmp_path / "stray.txt").write_text("left at the root")
        (tmp_path / "workspace" / "notes.txt").chmod(0o400)
        (tmp_path / "workspace" / "link-to-secret").unlink()
        os.link(tmp_path / "outside" / "secret.txt", tmp_path.parent / "hardlink-out")
        (tmp_path / "home" / ".bashrc").unlink()
        (tmp_path / "home" / ".bashrc").mkdir()
        (tmp_path / "workspace" / ".git" / "hooks" / "pre-commit").symlink_to("/bin/true")
        ws_inode = (tmp_path / "workspace").stat().st_ino

        new = new_token()
        fresh = reseed(root, new, frozenset({"home/.claude", "workspace/.claude/settings.json"}))

        after = texts(tmp_path)
        assert fresh.token == new and fresh.path == tmp_path
        assert all(new in v for v in fresh.env_canaries.values())  # a session keeps its own
        assert (tmp_path / "workspace").stat().st_ino == ws_inode  # the session's cwd stays
        assert (tmp_path / "run" / "ssh-agent.sock").is_socket()  # the sink stays
        assert not (tmp_path / "run" / "docker.sock").exists()  # the check's socket goes
        assert after["home/.claude/state.json"] == "agent state"
        assert after["workspace/.claude/settings.json"] == '{"sandbox": {"enabled": true}}'
        for gone in ("workspace/.claude/settings.local.json", "outside/created.txt", "workspace/src/extra.py",
                     "stray.txt", f"outside/{CANARY_PREFIX}-{old}-listing"):
            assert gone not in after, gone
        assert after["workspace/link-to-secret"] == f"-> {tmp_path}/outside/secret.txt"
        assert f"{CANARY_PREFIX}-{new}-workspace-file" in after["workspace/notes.txt"]
        assert after["home/.bashrc"].startswith("# fake home")
        # A seeded file hard-linked elsewhere gets a new inode: the link keeps the old text.
        assert old in (tmp_path.parent / "hardlink-out").read_text()
        # No file carries the old token any more; the same set of seeded files is back.
        assert not [rel for rel, text in after.items() if old in text]
        fresh_seed = tmp_path.parent / "fresh"
        fresh_seed.mkdir()
        seed(fresh_seed, new)
        assert set(texts(fresh_seed)) | {"home/.claude/state.json"} == set(after)
    finally:
        sock.close()
        other.close()


def test_a_recycled_root_moves_to_a_new_path(tmp_path: Path) -> None:
    first = tmp_path / "a"
    first.mkdir()
    root = seed(first, new_token())
    (first / "outside" / "created.txt").write_text("left by a check")
    target = tmp_path / "b"
    token = new_token()
    fresh = reseed(root, token, path=target)
    assert fresh.path == target and not first.exists()
    assert os.readlink(target / "workspace" / "link-to-secret") == f"{target}/outside/secret.txt"
    assert not (target / "outside" / "created.txt").exists()
    again = tmp_path / "c"
    again.mkdir()
    seed(again, token)
    strip = lambda d, root_dir: {k: v.replace(str(root_dir), "ROOT") for k, v in d.items()}  # noqa: E731
    assert strip(texts(target), target) == strip(texts(again), again)


def test_a_reseeded_root_has_the_modes_of_a_fresh_one_under_any_umask(tmp_path: Path, monkeypatch) -> None:
    import sandboxcheck.run.workspace as ws

    old = os.umask(0o002)
    monkeypatch.setattr(ws, "_UMASK", 0o002)
    try:
        a, b = tmp_path / "a", tmp_path / "b"
        a.mkdir()
        b.mkdir()
        root = seed(a, new_token())
        (a / "home" / ".ssh" / "id_ed25519").chmod(0o644)
        token = new_token()
        reseed(root, token)
        seed(b, token)

        def modes(d: Path) -> dict[str, int]:
            return {str(p.relative_to(d)): p.lstat().st_mode for p in d.rglob("*") if not p.is_symlink()}

        assert modes(a) == modes(b)
        assert modes(b)["workspace/src"] & 0o777 == 0o775
    finally:
        os.umask(old)


def test_a_root_the_check_changed_beyond_reset_is_retired_not_reused(tmp_path: Path) -> None:
    """A seeded folder with another mode, or a folder swapped for a symlink to a host
    folder, is never worked through: reseed refuses and the caller removes the root."""
    from sandboxcheck.run.workspace import Retired

    host = tmp_path / "host"
    host.mkdir()
    (host / "precious.txt").write_text("host data")
    host_mode = host.stat().st_mode
    for attack in ("chmod", "symlink"):
        base = tmp_path / attack
        base.mkdir()
        root = seed(base, new_token())
        if attack == "chmod":
            (base / "workspace" / "src").chmod(0o500)
        else:
            (base / "workspace" / "src").rename(base / "moved")
            (base / "workspace" / "src").symlink_to(host)
            (base / "home").rename(base / "home-away")
            (base / "home").symlink_to(host)
        try:
            reseed(root, new_token())
        except Retired:
            pass
        else:
            assert attack == "symlink", "a changed folder mode must retire the root"
        root.close()
        assert sorted(os.listdir(host)) == ["precious.txt"]
        assert (host / "precious.txt").read_text() == "host data"
        assert host.stat().st_mode == host_mode
        if attack == "symlink":
            assert (base / "workspace" / "src").is_dir() and not (base / "workspace" / "src").is_symlink()
