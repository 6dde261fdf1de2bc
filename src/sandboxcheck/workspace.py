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
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | flags, mode)
    try:
        os.write(fd, text.encode() if isinstance(text, str) else text)
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


def seed(path: Path, token: str, reseeding: bool = False, keep: frozenset[str] = frozenset()) -> Root:
    """Fill ``path`` (an empty folder) with the workspace, home, outside and run folders.

    ``reseeding`` (see ``reseed``) overwrites files that are still there, except
    those in ``keep`` (paths relative to ``path``).
    """
    root = Root(path=path, token=token)
    c = lambda label: canary(token, label)  # noqa: E731
    base = str(path)
    for d in _DIRS:
        os.makedirs(f"{base}/{d}", exist_ok=True)
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
    flags = os.O_TRUNC if reseeding else os.O_EXCL
    skip = {f"{base}/{k}" for k in keep}
    for name, content, mode in files:
        if name in skip:
            continue
        if reseeding:
            try:
                os.chmod(name, mode)  # a check may have left it read-only
            except OSError:
                pass
        _write(name, content, mode, flags)
    os.symlink(f"{out}/secret.txt", f"{ws}/link-to-secret")
    os.symlink(f"{out}/drop", f"{ws}/link-to-outside-dir")
    root.env_canaries = {name: c("env-" + name.lower()) for name in ENV_CANARIES}
    return root


#: Top-level folders of a root that ``seed`` creates.
ROOT_FOLDERS = ("workspace", "home", "outside", "run")


def reseed(root: Root, token: str, keep: frozenset[str] = frozenset()) -> Root:
    """The same root for another check: every seeded file rewritten with ``token``.

    A long-lived agent session keeps its cwd (the workspace folder), its HOME and
    the unix sockets in ``run/``, so those folders stay and their contents go:
    everything under the root is removed except the folders themselves, the
    sockets, and the paths in ``keep`` (relative to the root, such as
    ``home/.claude``: the agent's own state, or its settings file, which is
    never rewritten: an agent that watches it would see it change). Then
    ``seed`` writes a fresh set of files carrying the new token, so evidence
    stays attributable to one check. The environment canaries are the caller's
    to keep (a running process keeps its environment).
    """
    base = root.path
    parents = {str(p) for k in keep for p in Path(k).parents if str(p) != "."}

    def prune(folder: Path, rel: str) -> None:
        for entry in os.scandir(folder):
            sub = f"{rel}/{entry.name}" if rel else entry.name
            if sub in keep or (rel == "run" and stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode)):
                continue
            if (sub in parents or (not rel and entry.name in ROOT_FOLDERS)) and entry.is_dir(follow_symlinks=False):
                prune(Path(entry.path), sub)
            else:
                remove_tree(Path(entry.path))

    prune(base, "")
    fresh = seed(base, token, reseeding=True, keep=keep)
    fresh.env_canaries = dict(root.env_canaries)
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
