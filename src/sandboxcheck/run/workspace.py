"""Throwaway roots: a workspace, a fake home with dummy credentials, an outside folder.

Every dummy secret and environment canary carries the check's own token, so a
leak is attributable to exactly one check. Nothing here is real.
"""
from __future__ import annotations

import errno
import io
import os
import secrets
import stat
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .. import placeholders, safefs
from ..model import SetupStep
from ..labels import CANARY_PREFIX
from ..labels import ENV_CANARIES
from ..labels import HOME_FILES
from ..labels import canary


def new_token() -> str:
    """A fresh random token (never part of any path the target is told about)."""
    return secrets.token_hex(8)


@dataclass(slots=True)
class Root:
    """One seeded throwaway root and the values its check can refer to.

    ``fd`` is a descriptor of the root's folder, taken when the harness made
    it: every host-side operation on the root goes through it (see
    ``safefs``), so a root renamed or swapped for a symlink by the code under
    test is noticed instead of followed.
    """

    path: Path
    token: str
    env_canaries: dict[str, str] = field(default_factory=dict)
    #: Unix-socket sinks listening in ``run/``: name -> (the path they were bound at,
    #: the socket file's inode). A recycled root keeps them listening under its new
    #: path; any other socket there (a check's own) is removed.
    sockets: dict[str, tuple[str, int]] = field(default_factory=dict)
    fd: int = -1

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

    def close(self) -> None:
        """Close the root's descriptor (the folder stays)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Retired(OSError):
    """A used root that cannot be proven equal to a fresh seed: it must be removed, not reused."""


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


_OWN_UID = os.geteuid()


def _open_dirs(root_fd: int, create: bool) -> dict[str, int]:
    """Descriptors of every seeded folder ("" is the root), created when ``create``."""
    fds: dict[str, int] = {"": os.dup(root_fd)}
    try:
        for rel in sorted(SEEDED_DIRS, key=lambda r: r.count("/")):
            parent, _, name = rel.rpartition("/")
            if create:
                try:
                    os.mkdir(name, 0o777, dir_fd=fds[parent])
                except FileExistsError:
                    pass
            fds[rel] = safefs.open_dir(fds[parent], name)
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    return fds


def _rewrite(dir_fd: int, name: str, data: bytes, mode: int) -> None:
    """Overwrite a seeded file in place, or create it when it is gone or not as seeded.

    In place, not with O_TRUNC: a canary file keeps its size from token to token,
    and truncating costs a journalled block release on ext4 (about 150 us
    against 3 us per file); only a longer leftover is cut. The file opened is
    checked on its descriptor (a regular file of the harness's, one link, the
    seeded mode), so nothing the code under test put in its place is written
    through; otherwise it is removed and created anew.
    """
    try:
        if not stat.S_ISREG(safefs.lstat_at(dir_fd, name).st_mode):
            raise IsADirectoryError(errno.EISDIR, "not a regular file")  # never opened: removed below
        fd = os.open(name, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK,
                     dir_fd=dir_fd)
    except FileNotFoundError:
        safefs.create_file(dir_fd, name, data, mode)
        return
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENXIO, errno.EISDIR, errno.EACCES, errno.ETXTBSY):
            raise Retired(exc.errno, f"{name}: {exc.strerror}") from None
        fd = -1
    if fd >= 0:
        st = os.fstat(fd)
        if (stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_uid == _OWN_UID
                and st.st_mode & 0o7777 == mode & ~_UMASK):
            try:
                os.write(fd, data)
                if st.st_size > len(data):
                    os.ftruncate(fd, len(data))
                return
            except OSError as exc:
                raise Retired(exc.errno, f"{name}: {exc.strerror}") from None
            finally:
                os.close(fd)
        os.close(fd)
    left = safefs.remove_at(dir_fd, name)
    if left:
        raise Retired(errno.EPERM, f"{name}: {left[0].reason}")
    safefs.create_file(dir_fd, name, data, mode)


def seed(path: Path, token: str, reseeding: bool = False, keep: frozenset[str] = frozenset(),
         unchanged: Iterable[str] = (), fd: int | None = None) -> Root:
    """Fill ``path`` (an empty folder) with the workspace, home, outside and run folders.

    ``fd`` is a descriptor of ``path`` the harness already holds (the root
    keeps a duplicate); without it ``path`` is opened here. ``reseeding`` (see
    ``reseed``) overwrites the files that are still there, except those in
    ``keep`` and ``unchanged`` (paths relative to ``path``: the latter hold
    their seeded content already), and creates the folders only when missing.
    Everything goes through descriptors: nothing is followed.
    """
    own = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC) if fd is None \
        else os.dup(fd)
    root = Root(path=path, token=token, fd=own)
    try:
        fds = _open_dirs(own, create=True)
    except BaseException:
        root.close()
        raise
    try:
        skip = set(keep)
        skip.update(unchanged)
        for name, content, mode in _files(".", token):
            rel = name[2:]
            if rel in skip:
                continue
            data = content.encode() if isinstance(content, str) else content
            parent, _, base = rel.rpartition("/")
            if reseeding:
                _rewrite(fds[parent], base, data, mode)
            else:
                safefs.create_file(fds[parent], base, data, mode)
        base = str(path)
        os.symlink(f"{base}/outside/secret.txt", "link-to-secret", dir_fd=fds["workspace"])
        os.symlink(f"{base}/outside/drop", "link-to-outside-dir", dir_fd=fds["workspace"])
    except BaseException:
        root.close()
        raise
    finally:
        for d in fds.values():
            os.close(d)
    root.env_canaries = {name: canary(token, "env-" + name.lower()) for name in ENV_CANARIES}
    return root


class SetupError(OSError):
    """A check's setup step could not be carried out in its root."""


_FD_ACCESS = {"read": os.O_RDONLY, "write": os.O_WRONLY, "read-write": os.O_RDWR}


def _rel_in_root(root: Root, path: str) -> str:
    """``path`` relative to the root; SetupError unless it lies beneath it (by its text)."""
    norm, base = os.path.normpath(path), os.path.normpath(str(root.path))
    if not norm.startswith(base + "/") or ".." in path.split("/"):
        raise SetupError(errno.EXDEV, f"{path}: not inside the throwaway root")
    return norm[len(base) + 1:]


def _parent(root: Root, rel: str, create: bool) -> tuple[int, str]:
    """A descriptor of ``rel``'s folder (entered component by component) and its last name."""
    parent, _, name = rel.rpartition("/")
    return (safefs.mkdirs(root.fd, parent, create=create) if parent else os.dup(root.fd)), name


def apply_setup(root: Root, steps: Sequence[SetupStep], values: Mapping[str, str]) -> dict[int, int]:
    """Carry out a check's ``setup`` steps in ``root``, on the host, before the target starts.

    Every path is a template (``values``) that must name an entry beneath the
    root; each is reached through the root's descriptor, one component at a
    time (``safefs``): nothing is followed, nothing outside the root is
    touched. An entry already at a created path is replaced. Returns the
    ``pass_fd`` descriptors, number the target inherits -> descriptor held
    here (the caller closes them); SetupError when a step cannot be done.
    """
    opened: dict[int, int] = {}
    try:
        for step in steps:
            path = placeholders.expand(step.path, values)
            rel = _rel_in_root(root, path)
            try:
                pfd, name = _parent(root, rel, create=step.action in ("file", "dir", "hardlink", "symlink"))
            except OSError as exc:
                raise SetupError(exc.errno or errno.EIO, f"{step.action} {path}: {exc.strerror or exc}") from None
            try:
                _setup_step(root, step, pfd, name, values, opened)
            except SetupError:
                raise
            except (OSError, ValueError) as exc:
                why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise SetupError(getattr(exc, "errno", None) or errno.EIO, f"{step.action} {path}: {why}") from None
            finally:
                os.close(pfd)
    except BaseException:
        for fd in opened.values():
            os.close(fd)
        raise
    return opened


def _setup_step(root: Root, step: SetupStep, pfd: int, name: str, values: Mapping[str, str],
                opened: dict[int, int]) -> None:
    if step.action in ("file", "hardlink", "symlink"):
        left = safefs.remove_at(pfd, name)
        if left:
            raise SetupError(errno.EPERM, f"{left[0]}")
    if step.action == "file":
        mode = 0o644 if step.mode is None else step.mode
        safefs.create_file(pfd, name, placeholders.expand(step.content, values).encode(), mode)
        safefs.chmod_at(pfd, name, mode)  # exactly the mode asked for, whatever the umask
    elif step.action == "dir":
        try:
            os.mkdir(name, 0o777, dir_fd=pfd)
        except FileExistsError:
            pass
        if step.mode is not None:
            safefs.chmod_at(pfd, name, step.mode)
    elif step.action == "hardlink":
        src_rel = _rel_in_root(root, placeholders.expand(step.to or "", values))
        spfd, sname = _parent(root, src_rel, create=False)
        try:
            safefs.link_at(spfd, sname, pfd, name)
        finally:
            os.close(spfd)
    elif step.action == "symlink":
        os.symlink(placeholders.expand(step.to or "", values), name, dir_fd=pfd)
    elif step.action == "chmod":
        safefs.chmod_at(pfd, name, step.mode or 0)
    elif step.action == "pass_fd":
        assert step.fd is not None
        opened[step.fd] = safefs.open_file(pfd, name, _FD_ACCESS[step.access])


#: Entries of one folder that reseeding goes through at most; a root with more is retired.
MAX_PRUNE = 10_000


def reseed(root: Root, token: str, keep: frozenset[str] = frozenset(), path: Path | None = None,
           parent_fd: int | None = None) -> Root:
    """The root of one check made ready for another: as ``seed`` leaves it, with ``token``.

    Everything a check may have changed goes back: whatever is not part of the
    seeded tree is removed (files it created, symlinks it planted, the old
    canary-named file), every seeded file is rewritten with the new token, a
    missing folder is created again. The seeded folders themselves stay,
    which is what makes this much cheaper than removing the root and seeding
    a new one. Kept as they are: the paths in ``keep`` (relative to the root,
    such as ``home/.claude``, an agent's own state) and the sink sockets of
    ``root.sockets`` in ``run/`` (still listening; told by their inode from a
    socket a check bound in their place). ``path`` (which must not exist, in
    the folder ``parent_fd`` holds) moves the root there first, so a recycled
    root never has the path of the check before.

    Anything that a fresh seed would not have and that cannot simply be
    removed raises ``Retired``: the root's folder moved or replaced, a seeded
    folder that is no longer a plain folder of the harness's with its mode, a
    mount point, an entry that cannot be removed (an immutable file). The
    caller then removes the root instead of reusing it. ``root`` is consumed:
    its descriptor moves to the returned root.
    """
    base = root.path
    if path is not None:
        own_parent = parent_fd is None
        pfd = os.open(base.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) if own_parent else parent_fd
        try:
            os.rename(base.name, path.name, src_dir_fd=pfd, dst_dir_fd=pfd)
            moved = safefs.lstat_at(pfd, path.name)
        finally:
            if own_parent:
                os.close(pfd)
        if not safefs.same_file(moved, os.fstat(root.fd)):
            raise Retired(errno.ESTALE, "the root's folder was moved or replaced")
        base = path
    if os.fstat(root.fd).st_nlink == 0:
        raise Retired(errno.ESTALE, "the root's folder was removed")
    parents = {str(p) for k in keep for p in Path(k).parents if str(p) != "."}
    unchanged: list[str] = []
    sinks = {ino for _, ino in root.sockets.values()}

    def prune(fd: int, rel: str) -> None:
        names = []
        with os.scandir(fd) as it:
            for entry in it:
                names.append(entry.name)
                if len(names) > MAX_PRUNE:
                    raise Retired(errno.EFBIG, f"{rel or 'the root'}: more than {MAX_PRUNE} entries")
        for name in names:
            sub = f"{rel}/{name}" if rel else name
            if sub in keep:
                continue
            st = safefs.lstat_at(fd, name)
            if stat.S_ISDIR(st.st_mode) and (sub in SEEDED_DIRS or sub in parents):
                if st.st_uid != _OWN_UID or (sub in SEEDED_DIRS and st.st_mode & 0o7777 != 0o777 & ~_UMASK):
                    raise Retired(errno.EPERM, f"{sub}: owner or mode changed")
                try:
                    child = safefs.open_dir(fd, name)
                except OSError as exc:
                    raise Retired(exc.errno or errno.EPERM, f"{sub}: {exc.strerror}") from None
                try:
                    prune(child, sub)
                finally:
                    os.close(child)
            elif sub in SEEDED_FILES and stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                # Rewritten in place by seed (a hard-linked one gets a new inode), unless
                # its content is the same for every token and still as seeded.
                fixed = FIXED_FILES.get(sub)
                if fixed is not None and st.st_mode & 0o7777 == fixed[1] & ~_UMASK \
                        and st.st_size == len(fixed[0]) and st.st_uid == _OWN_UID:
                    try:
                        if safefs.read_regular(fd, name, len(fixed[0]) + 1) == fixed[0]:
                            unchanged.append(sub)
                    except OSError:
                        pass
            elif rel == "run" and st.st_ino in sinks and stat.S_ISSOCK(st.st_mode):
                continue  # a sink of the harness, still listening
            else:
                left = safefs.remove_at(fd, name, sub)
                if left:
                    raise Retired(errno.EPERM, str(left[0]))

    try:
        prune(root.fd, "")
        fresh = seed(base, token, reseeding=True, keep=keep, unchanged=unchanged, fd=root.fd)
    except Retired:
        root.path = base
        raise
    except OSError as exc:
        root.path = base
        raise Retired(exc.errno or errno.EIO, f"could not reset the root: {exc}") from None
    root.close()
    fresh.sockets = dict(root.sockets)
    return fresh


#: The file in a run's folder that names the harness process owning it.
OWNER_FILE = "owner"
RUN_PREFIX = "sandboxcheck-"


def _start_time(pid: int) -> str | None:
    """A process's start time in clock ticks since boot (tells a reused pid apart), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read(4096)
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    return fields[19].decode() if len(fields) > 19 else None


class RunFolder:
    """The one folder of a run under the temp folder, held by descriptor.

    Made by ``mkdtemp`` (mode 0700, the harness's own), checked on its
    descriptor, and marked with the owner's pid and start time so that a
    later run can remove it if this harness dies without cleaning up
    (SIGKILL, power loss). Everything the run creates (roots, the probe copy,
    notes about kept roots) lives inside it and is reached through its
    descriptor, never by path.
    """

    def __init__(self, tmp: str | None = None) -> None:
        self.stale_problems: list[str] = []
        self.removed_stale = remove_stale(tmp, self.stale_problems)
        self.path = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir=tmp))
        self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        st = os.fstat(self.fd)
        if st.st_uid != os.geteuid() or st.st_mode & 0o777 != 0o700:
            os.close(self.fd)
            raise OSError(errno.EPERM, f"{self.path}: not the folder just created (owner or mode differ)")
        pid = os.getpid()
        safefs.create_file(self.fd, OWNER_FILE, f"{pid} {_start_time(pid) or 0}\n".encode(), 0o444)
        self._lock = threading.Lock()
        self.kept = False
        self.leftovers: list[safefs.Leftover] = []
        self._moved: list[tuple[int, str]] = []

    def moved_away(self, fd: int, label: str) -> None:
        """A root (``fd``) that the code under test moved from its place: emptied now,
        its folder removed at ``close`` wherever it is then."""
        left = safefs.remove_contents(fd, f"{label} (moved away by the code under test)")
        with self._lock:
            self.leftovers.extend(left)
            self._moved.append((os.dup(fd), label))

    def _remove_moved(self) -> None:
        for fd, label in self._moved:
            try:
                problem = _rmdir_held(fd)
                if problem:
                    self.leftovers.append(safefs.Leftover(label, f"moved by the code under test: {problem}"))
            finally:
                os.close(fd)
        self._moved = []

    def where(self) -> str:
        """Where the folder is now (the code under test may have moved it)."""
        if self.fd >= 0:
            try:
                return os.readlink(f"/proc/self/fd/{self.fd}").removesuffix(" (deleted)")
            except OSError:
                pass
        return str(self.path)

    def intact(self) -> bool:
        """Whether the folder is still at its path (not removed, moved or swapped)."""
        try:
            return os.fstat(self.fd).st_nlink > 0 and safefs.same_file(os.lstat(self.path), os.fstat(self.fd))
        except OSError:
            return False

    def remove(self, name: str) -> list[safefs.Leftover]:
        """Remove the entry ``name`` of the run's folder; what was left, recorded and returned."""
        left = safefs.remove_at(self.fd, name, f"{self.where()}/{name}", deadline=time.monotonic() + 60)
        if left:
            with self._lock:
                self.leftovers.extend(left)
        return left

    def note(self, name: str, text: str) -> str | None:
        """Write a note of the harness's (a file the targets never got a path to); an error or None."""
        try:
            safefs.create_file(self.fd, name, text.encode(), 0o444)
            return None
        except OSError as exc:
            return f"{self.path}/{name}: {exc.strerror or exc}"

    def close(self) -> list[safefs.Leftover]:
        """Remove the whole folder (unless a root was kept); what could not go."""
        if self.fd < 0:
            return self.leftovers
        if not self.kept:
            try:
                names = [e.name for e in os.scandir(self.fd)]
            except OSError:
                names = []
            for name in names:
                if name != OWNER_FILE:
                    self.remove(name)
            self._remove_moved()
            self._remove_self()
        for fd, _ in self._moved:
            os.close(fd)
        self._moved = []
        os.close(self.fd)
        self.fd = -1
        return self.leftovers

    def _remove_self(self) -> None:
        if os.fstat(self.fd).st_nlink == 0:
            return  # removed already (by the code under test)
        try:
            if any(e.name != OWNER_FILE for e in os.scandir(self.fd)):
                return  # the owner file stays: a later run retries when this process is gone
        except OSError:
            return
        try:
            os.unlink(OWNER_FILE, dir_fd=self.fd)
        except OSError:
            pass
        problem = _rmdir_held(self.fd)
        if problem:
            self.leftovers.append(safefs.Leftover(self.where(), problem))


def _rmdir_held(fd: int) -> str | None:
    """Remove the empty folder ``fd`` holds, wherever it is now; None when done (or gone), else why not.

    Its place is read from ``/proc/self/fd``; the entry found there is removed only if
    it is exactly that folder, whatever the path led through.
    """
    try:
        if os.fstat(fd).st_nlink == 0:
            return None
        where = os.readlink(f"/proc/self/fd/{fd}")
        parent, name = os.path.split(where)
        pfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if not safefs.same_file(safefs.lstat_at(pfd, name), os.fstat(fd)):
                return f"not found where the kernel says it is ({where})"
            os.rmdir(name, dir_fd=pfd)
            return None
        finally:
            os.close(pfd)
    except OSError as exc:
        return exc.strerror or str(exc)


def remove_stale(tmp: str | None = None, problems: list[str] | None = None) -> list[str]:
    """Remove the run folders of harnesses that are gone; their paths.

    Only folders named like a run's, owned by this user, not symlinks, whose
    owner file names a process that no longer exists (or a reused pid); what
    could not be removed goes to ``problems``. At most 30 seconds in all.
    """
    tmp = tmp or tempfile.gettempdir()
    removed: list[str] = []
    stop = time.monotonic() + 30
    try:
        tfd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return removed
    try:
        for entry in os.scandir(tfd):
            if not entry.name.startswith(RUN_PREFIX) or len(entry.name) != len(RUN_PREFIX) + 8:
                continue
            try:
                st = safefs.lstat_at(tfd, entry.name)
                if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                    continue
                dfd = safefs.open_dir(tfd, entry.name)
                try:
                    owner = safefs.read_regular(dfd, OWNER_FILE, 64).decode("ascii", "replace").split()
                finally:
                    os.close(dfd)
                pid, started = int(owner[0]), owner[1]
            except (OSError, ValueError, IndexError):
                continue
            if pid > 0 and _start_time(pid) == started:
                continue  # its harness still runs
            if time.monotonic() > stop:
                if problems is not None:
                    problems.append(f"{tmp}/{entry.name}: left for a later run (out of time)")
                continue
            left = safefs.remove_at(tfd, entry.name, f"{tmp}/{entry.name}", deadline=stop)
            if not left:
                removed.append(f"{tmp}/{entry.name}")
            elif problems is not None:
                problems.extend(f"stale run folder: {lo}" for lo in left)
    finally:
        os.close(tfd)
    return removed


def copy_probes(src: Path, run: RunFolder) -> Path:
    """A read-only copy of the probe programs, in the run's folder, that every sandbox can be given."""
    os.mkdir("probes", 0o755, dir_fd=run.fd)
    fd = safefs.open_dir(run.fd, "probes")
    try:
        for item in sorted(src.iterdir()):
            if item.suffix == ".py":
                safefs.create_file(fd, item.name, item.read_bytes(), 0o444)
        os.fchmod(fd, 0o555)  # the folder this call just made
    finally:
        os.close(fd)
    return run.path / "probes"
