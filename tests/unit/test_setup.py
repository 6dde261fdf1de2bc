"""A check's setup steps: carried out inside the root through descriptors, never outside it."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sandboxcheck.matrix.load import parse_matrix
from sandboxcheck.model import SetupStep
from sandboxcheck.run.workspace import SetupError, apply_setup, new_token, seed


def values(root: Path, token: str) -> dict[str, str]:
    return {"root": str(root), "workspace": f"{root}/workspace", "home": f"{root}/home",
            "outside": f"{root}/outside", "run": f"{root}/run", "token": token, "fd": "7"}


@pytest.fixture
def root(tmp_path: Path):
    r = seed(tmp_path, new_token())
    yield r
    r.close()


def test_parse_setup_steps_with_defaults_and_modes() -> None:
    m = parse_matrix("""\
checks:
  - id: fs.read.fds
    category: fs-read
    title: two descriptors
    setup:
      - file: "{workspace}/a.txt"
        content: "x {token}"
        mode: "0600"
      - pass_fd: "{workspace}/a.txt"
      - pass_fd: "{outside}/secret.txt"
        access: read-write
    probe: read_fd
    args: {fd: "{fd}"}
    expect: denied
""", "m.yaml")
    steps = m.checks[0].setup
    assert [s.action for s in steps] == ["file", "pass_fd", "pass_fd"]
    assert steps[0].mode == 0o600 and steps[0].content == "x {token}" and steps[0].line == 6
    assert [s.fd for s in steps] == [None, 7, 8]
    assert steps[2].access == "read-write"
    assert sorted(m.checks[0].passed_fds) == [7, 8]


def test_every_action_inside_the_root(root) -> None:
    v = values(root.path, root.token)
    steps = (
        SetupStep("dir", "{workspace}/sub/deeper", mode=0o700),
        SetupStep("file", "{workspace}/sub/deeper/f.txt", content="hello {token}", mode=0o640),
        SetupStep("hardlink", "{workspace}/hl", to="{outside}/secret.txt"),
        SetupStep("symlink", "{workspace}/sl", to="/etc/{token}"),
        SetupStep("chmod", "{outside}/.env", mode=0o606),
        SetupStep("pass_fd", "{outside}/secret.txt", access="read", fd=7),
        SetupStep("pass_fd", "{workspace}/sub/deeper/f.txt", access="write", fd=8),
    )
    fds = apply_setup(root, steps, v)
    try:
        ws = root.path / "workspace"
        assert stat.S_IMODE((ws / "sub/deeper").stat().st_mode) == 0o700
        f = ws / "sub/deeper/f.txt"
        assert f.read_text() == f"hello {root.token}" and stat.S_IMODE(f.stat().st_mode) == 0o640
        assert os.path.samefile(ws / "hl", root.path / "outside/secret.txt")
        assert os.readlink(ws / "sl") == f"/etc/{root.token}"
        assert stat.S_IMODE((root.path / "outside/.env").stat().st_mode) == 0o606
        assert sorted(fds) == [7, 8]
        assert os.read(fds[7], 100).startswith(b"outside secret SCNRY-")
        assert os.get_inheritable(fds[7])
        os.write(fds[8], b"via fd")
        assert f.read_text().startswith("via fd")
        with pytest.raises(OSError):
            os.write(fds[7], b"x")  # opened for reading only
    finally:
        for fd in fds.values():
            os.close(fd)


def test_a_file_step_replaces_a_symlink_instead_of_writing_through_it(root, tmp_path_factory) -> None:
    host = tmp_path_factory.mktemp("host") / "victim"
    host.write_text("host file")
    (root.path / "workspace/planted").symlink_to(host)
    apply_setup(root, (SetupStep("file", "{workspace}/planted", content="new"),), values(root.path, root.token))
    assert host.read_text() == "host file"
    assert not (root.path / "workspace/planted").is_symlink()
    assert (root.path / "workspace/planted").read_text() == "new"


@pytest.mark.parametrize("step", [
    SetupStep("file", "{workspace}/hop/x", content="x"),          # a symlinked folder on the way
    SetupStep("chmod", "{workspace}/hop", mode=0o777),            # chmod of a symlink
    SetupStep("hardlink", "{workspace}/hl", to="{workspace}/hop"),  # hard link to a symlink
    SetupStep("hardlink", "{workspace}/hl", to="{workspace}/hop/victim"),
    SetupStep("pass_fd", "{workspace}/hop/victim", fd=7),
    SetupStep("pass_fd", "{workspace}/hop", fd=7),
    SetupStep("file", "/etc/sandboxcheck-never", content="x"),     # outside the root by its text
    SetupStep("dir", "{root}/../escape"),
], ids=lambda s: f"{s.action}:{s.path}:{s.to}")
def test_refuses_to_follow_a_symlink_or_leave_the_root(root, tmp_path_factory, step: SetupStep) -> None:
    host_dir = tmp_path_factory.mktemp("hostdir")
    (host_dir / "victim").write_text("host")
    os.chmod(host_dir, 0o755)
    (root.path / "workspace/hop").symlink_to(host_dir)
    before = sorted(os.listdir(host_dir)), os.stat(host_dir).st_mode
    with pytest.raises(SetupError):
        fds = apply_setup(root, (step,), values(root.path, root.token))
        for fd in fds.values():
            os.close(fd)
    assert (sorted(os.listdir(host_dir)), os.stat(host_dir).st_mode) == before
    assert (host_dir / "victim").read_text() == "host"
    assert not Path("/etc/sandboxcheck-never").exists()
    assert not (root.path.parent / "escape").exists()


def test_descriptors_opened_before_a_failing_step_are_closed(root) -> None:
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(SetupError, match="missing"):
        apply_setup(root, (SetupStep("pass_fd", "{outside}/secret.txt", fd=7),
                           SetupStep("pass_fd", "{outside}/missing", fd=8)), values(root.path, root.token))
    assert set(os.listdir("/proc/self/fd")) == before
