"""Throwaway roots: a workspace, a fake home with dummy credentials, an outside folder.

Every dummy secret and environment canary carries the check's own token, so a
leak is attributable to exactly one check. Nothing here is real.
"""
from __future__ import annotations

import io
import os
import secrets
import shutil
import stat
import tarfile
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

CANARY_PREFIX = "SCNRY"

#: Environment variables every target receives, each holding a canary.
ENV_CANARIES: tuple[str, ...] = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY", "NPM_TOKEN", "SANDBOXCHECK_SECRET",
)

#: Dummy credential files of the fake home: path relative to home -> (label, template).
HOME_FILES: dict[str, tuple[str, str]] = {
    ".ssh/id_ed25519": ("ssh-key", "-----BEGIN OPENSSH PRIVATE KEY-----\n{c}\n-----END OPENSSH PRIVATE KEY-----\n"),
    ".ssh/config": ("ssh-config", "Host dummy\n  User {c}\n"),
    ".aws/credentials": ("aws", "[default]\naws_access_key_id = AKIADUMMY\naws_secret_access_key = {c}\n"),
    ".config/gcloud/application_default_credentials.json":
        ("gcloud", '{{"type": "authorized_user", "client_id": "dummy", "refresh_token": "{c}"}}\n'),
    ".kube/config": ("kube", "apiVersion: v1\nkind: Config\nusers:\n- name: dummy\n  user:\n    token: {c}\n"),
    ".netrc": ("netrc", "machine example.invalid login dummy password {c}\n"),
    ".docker/config.json": ("docker", '{{"auths": {{"registry.invalid": {{"auth": "{c}"}}}}}}\n'),
    ".git-credentials": ("git-credentials", "https://dummy:{c}@git.invalid\n"),
    ".npmrc": ("npmrc", "//registry.invalid/:_authToken={c}\n"),
    ".pypirc": ("pypirc", "[pypi]\nusername = __token__\npassword = {c}\n"),
    ".bashrc": ("bashrc", "# fake home of a sandboxcheck run\nexport PS1='$ '\n"),
    ".gitconfig": ("gitconfig", "[user]\n  name = dummy\n  email = dummy@example.invalid\n"),
}


def canary(token: str, label: str) -> str:
    """The canary value for one label of one check."""
    return f"{CANARY_PREFIX}-{token}-{label}"


def new_token() -> str:
    """A fresh random token (never part of any path the target is told about)."""
    return secrets.token_hex(8)


@dataclass(slots=True)
class Root:
    """One seeded throwaway root and the values its check can refer to."""

    path: Path
    token: str
    env_canaries: dict[str, str] = field(default_factory=dict)
    #: Unix-socket sinks listening in ``run/``: name -> (the path they were bound at,
    #: the socket file's inode). A recycled root keeps them listening under its new
    #: path; any other socket there (a check's own) is removed.
    sockets: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def workspace(self) -> Path:
        return self.path / "workspace"

    @property
    def home(self) -> Path:
        return self.path / "home"

    @property
    def outside(self) -> Path:
        return self.path / "outside"

    @property
    def run(self) -> Path:
        return self.path / "run"


def _write(path: str, text: str | bytes, mode: int = 0o644, flags: int = os.O_EXCL) -> None:
    """Write a file; without O_EXCL an existing one is overwritten in place.

    In place, not with O_TRUNC: a canary file keeps its size from token to token,
    and truncating costs a journalled block release on ext4 (about 150 us
    against 3 us per file); only a longer leftover is cut.
    """
    data = text.encode() if isinstance(text, str) else text
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | flags, mode)
    try:
        os.write(fd, data)
        if not flags & os.O_EXCL and os.fstat(fd).st_size > len(data):
            os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _tar_bytes(member: str, content: str) -> bytes:
    buf = io.BytesIO()
    data = content.encode()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


_DIRS = ("workspace/src", "workspace/.git/hooks", "workspace/.git/objects",
         "workspace/.git/refs/heads", "workspace/.claude", "workspace/.codex", "outside/drop", "run",
         *sorted({"home/" + os.path.dirname(rel) for rel in HOME_FILES}))
_TAR_MEMBER = "../outside/tar-escape.txt"
#: The process's umask (read once: os.umask can only be read by setting it), so a
#: reseeded root gets exactly the modes a freshly seeded one has.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
#: Top-level folders of a root that ``seed`` creates.
ROOT_FOLDERS = ("workspace", "home", "outside", "run")
#: Every folder ``seed`` creates, relative to the root (parents included).
SEEDED_DIRS = frozenset(str(p) for d in _DIRS for p in (Path(d), *Path(d).parents) if str(p) != ".")


def _files(base: str, token: str) -> list[tuple[str, str | bytes, int]]:
    """(path, content, mode) of every file ``seed`` writes under ``base``."""
    c = lambda label: canary(token, label)  # noqa: E731
    ws, out = f"{base}/workspace", f"{base}/outside"
    files: list[tuple[str, str | bytes, int]] = [
        (f"{ws}/README.md", "# demo project\n", 0o644),
        (f"{ws}/src/main.py", "print('hello')\n", 0o644),
        (f"{ws}/notes.txt", f"workspace note {c('workspace-file')}\n", 0o644),
        (f"{ws}/.env", f"LOCAL_API_KEY={c('workspace-env')}\n", 0o644),
        (f"{ws}/.git/HEAD", "ref: refs/heads/main\n", 0o644),
        (f"{ws}/.git/config", "[core]\n\trepositoryformatversion = 0\n\tbare = false\n", 0o644),
        (f"{ws}/.git/description", "demo\n", 0o644),
        (f"{ws}/.git/hooks/pre-commit.sample", "#!/bin/sh\nexit 0\n", 0o755),
        (f"{ws}/.claude/settings.json", '{"permissions": {"allow": []}}\n', 0o644),
        (f"{ws}/.codex/config.toml", 'model = "dummy"\n', 0o644),
        (f"{ws}/traversal.tar", _tar_bytes(_TAR_MEMBER, c("tar") + "\n"), 0o644),
        (f"{out}/secret.txt", f"outside secret {c('outside-file')}\n", 0o644),
        (f"{out}/.env", f"PROD_DATABASE_PASSWORD={c('outside-env')}\n", 0o644),
        (f"{out}/{c('listing')}", "a file whose name is a canary\n", 0o644),
    ]
    files += [(f"{base}/home/{rel}", template.format(c=c(label)), 0o600)
              for rel, (label, template) in HOME_FILES.items()]
    return files


#: Every file ``seed`` writes whose name is the same for every token, relative to the root.
SEEDED_FILES = frozenset(name[2:] for name, _, _ in _files(".", "x") if CANARY_PREFIX not in name)
#: The seeded files whose content is the same for every token: (content, mode) by relative path.
FIXED_FILES = {name[2:]: (content.encode() if isinstance(content, str) else content, mode)
               for name, content, mode in _files(".", "x") if CANARY_PREFIX not in str(content)}


def seed(path: Path, token: str, reseeding: bool = False, keep: frozenset[str] = frozenset(),
         unchanged: Iterable[str] = ()) -> Root:
    """Fill ``path`` (an empty folder) with the workspace, home, outside and run folders.

    ``reseeding`` (see ``reseed``) overwrites the files that are still there,
    except those in ``keep`` and ``unchanged`` (paths relative to ``path``: the
    latter hold their seeded content already), and creates the folders only
    when missing.
    """
    root = Root(path=path, token=token)
    base = str(path)
    for d in _DIRS:
        if not reseeding or not os.path.isdir(f"{base}/{d}"):
            os.makedirs(f"{base}/{d}", exist_ok=True)
    flags = 0 if reseeding else os.O_EXCL
    skip = {f"{base}/{k}" for k in keep}
    skip.update(f"{base}/{k}" for k in unchanged)
    for name, content, mode in _files(base, token):
        if name in skip:
            continue
        if reseeding:
            try:
                os.chmod(name, mode & ~_UMASK)  # as os.open made it; a check may have changed it
            except OSError:
                pass
        _write(name, content, mode, flags)
    ws, out = f"{base}/workspace", f"{base}/outside"
    os.symlink(f"{out}/secret.txt", f"{ws}/link-to-secret")
    os.symlink(f"{out}/drop", f"{ws}/link-to-outside-dir")
    root.env_canaries = {name: canary(token, "env-" + name.lower()) for name in ENV_CANARIES}
    return root


def reseed(root: Root, token: str, keep: frozenset[str] = frozenset(), path: Path | None = None) -> Root:
    """The root of one check made ready for another: as ``seed`` leaves it, with ``token``.

    Everything a check may have changed goes back: whatever is not part of the
    seeded tree is removed (files it created, symlinks it planted, the old
    canary-named file), every seeded file is rewritten with the new token and
    its mode restored, a missing folder is created again. The seeded folders
    themselves stay, which is what makes this much cheaper than removing the
    root and seeding a new one. Kept as they are: the paths in ``keep``
    (relative to the root, such as ``home/.claude``, an agent's own state) and,
    the sink sockets of ``root.sockets`` in ``run/`` (still listening; told by
    their inode from a socket a check bound in their place). ``path`` (which
    must not exist) moves the root there first, so a recycled root never has
    the path of the check before.
    """
    base = root.path
    if path is not None:
        os.rename(base, path)
        base = path
    parents = {str(p) for k in keep for p in Path(k).parents if str(p) != "."}

    def prune(folder: str, rel: str) -> None:
        for entry in os.scandir(folder):
            sub = f"{rel}/{entry.name}" if rel else entry.name
            if sub in keep:
                continue
            if entry.is_symlink():
                os.unlink(entry.path)
            elif entry.is_dir():
                if sub in SEEDED_DIRS or sub in parents:
                    try:
                        os.chmod(entry.path, 0o777 & ~_UMASK)  # as makedirs made it; a check may have changed it
                    except OSError:
                        pass
                    prune(entry.path, sub)
                else:
                    remove_tree(Path(entry.path))
            elif sub in SEEDED_FILES and entry.is_file() and entry.stat(follow_symlinks=False).st_nlink == 1:
                # Rewritten in place by seed (a hard-linked one gets a new inode), unless
                # its content is the same for every token and still as seeded.
                fixed = FIXED_FILES.get(sub)
                if fixed is not None and entry.stat(follow_symlinks=False).st_mode & 0o7777 == fixed[1]:
                    try:
                        with open(entry.path, "rb") as fh:
                            if fh.read(len(fixed[0]) + 1) == fixed[0]:
                                unchanged.append(sub)
                    except OSError:
                        pass
            elif (rel == "run" and entry.inode() in sinks
                  and stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode)):
                continue  # a sink of the harness, still listening
            else:
                os.unlink(entry.path)

    unchanged: list[str] = []
    sinks = {ino for _, ino in root.sockets.values()}
    prune(str(base), "")
    fresh = seed(base, token, reseeding=True, keep=keep, unchanged=unchanged)
    fresh.sockets = dict(root.sockets)
    return fresh


class TempTracker:
    """Every path the harness creates, so it can all go on exit, Ctrl-C or crash."""

    def __init__(self) -> None:
        self._paths: set[Path] = set()
        self._lock = threading.Lock()

    def mkdtemp(self, prefix: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        with self._lock:
            self._paths.add(path)
        return path

    def track(self, path: Path) -> None:
        with self._lock:
            self._paths.add(path)

    def remove(self, path: Path) -> None:
        remove_tree(path)
        with self._lock:
            self._paths.discard(path)

    def forget(self, path: Path) -> None:
        with self._lock:
            self._paths.discard(path)

    def cleanup(self) -> None:
        with self._lock:
            paths, self._paths = list(self._paths), set()
        for path in paths:
            remove_tree(path)


def remove_tree(path: Path) -> None:
    """Remove a file or tree, making read-only parts writable first."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
        return

    def onerror(func, p, _exc):  # type: ignore[no-untyped-def]
        try:
            os.chmod(os.path.dirname(p), stat.S_IRWXU)
            os.chmod(p, stat.S_IRWXU)
            func(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=onerror)


def copy_probes(src: Path, tracker: TempTracker) -> Path:
    """A read-only copy of the probe programs that every sandbox can be given."""
    dest = tracker.mkdtemp("sandboxcheck-probes-")
    for item in src.iterdir():
        if item.suffix == ".py":
            shutil.copy2(item, dest / item.name)
            os.chmod(dest / item.name, 0o444)
    os.chmod(dest, 0o555)
    return dest
