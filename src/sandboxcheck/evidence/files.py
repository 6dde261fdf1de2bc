"""Host-side observers: network and unix-socket sinks, a witness process, snapshots.

Everything here runs outside the sandbox and is owned by the harness. Sinks
listen on loopback or on unix sockets inside the throwaway root only.
"""
from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path


from .. import safefs


# Handlers only record: a handler can run inside another one (Python checks
# signals between bytecodes), so all output happens in the main flow. SIGTERM
# (the harness's stop) stays blocked and is waited for, so the witness ends the
# moment it is told to, after the handlers of anything already delivered.
_WITNESS = (
    "import signal,sys\n"
    "got=[]\n"
    "def h(n,f): got.append(n)\n"
    "for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP): signal.signal(s, h)\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])\n"
    "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
    "signal.sigtimedwait([signal.SIGTERM], float(sys.argv[2]))\n"
    "sys.stdout.write(''.join('SIGNAL %d\\n' % n for n in got) + 'END\\n')\n"
)


@dataclass(frozen=True, slots=True)
class FileState:
    """A host path's state: whether it exists and a digest of its content."""

    exists: bool
    digest: str | None


#: Bytes of a watched file hashed at most (its size and mtime stand for the rest).
HASH_CAP = 16 << 20


def _digest_fd(fd: int, st: os.stat_result) -> str:
    h = hashlib.sha256()
    left = HASH_CAP
    while left > 0:
        data = os.read(fd, min(left, 1 << 16))
        if not data:
            break
        h.update(data)
        left -= len(data)
    if st.st_size > HASH_CAP:
        return f"{h.hexdigest()}:{st.st_size}:{st.st_mtime_ns}"
    return h.hexdigest()


def _state_at(dir_fd: int, name: str) -> FileState:
    try:
        st = safefs.lstat_at(dir_fd, name)
    except FileNotFoundError:
        return FileState(False, None)
    except OSError as exc:
        return FileState(True, f"unreadable:{exc.errno}")
    try:
        if stat.S_ISLNK(st.st_mode):
            return FileState(True, "symlink:" + os.readlink(name, dir_fd=dir_fd))
        if stat.S_ISDIR(st.st_mode):
            fd = safefs.open_dir(dir_fd, name)
            try:
                names = []
                with os.scandir(fd) as it:
                    for entry in it:
                        names.append(entry.name)
                        if len(names) > 10_000:
                            break
            finally:
                os.close(fd)
            return FileState(True, "dir:" + ",".join(sorted(names)))
        if not stat.S_ISREG(st.st_mode):
            return FileState(True, f"special:{stat.S_IFMT(st.st_mode):o}:{st.st_ino}")
        fd = safefs.open_regular(dir_fd, name)
        try:
            return FileState(True, _digest_fd(fd, st))
        finally:
            os.close(fd)
    except OSError as exc:
        return FileState(True, f"unreadable:{exc.errno}")


def file_state(path: Path, root_fd: int | None = None, root: Path | None = None) -> FileState:
    """Current state of ``path``: never following a symlink, never blocking, bounded.

    Inside a throwaway root (``root_fd`` and ``root`` given) every component
    is resolved through descriptors: a folder on the way replaced by a
    symlink is the state "missing" (the target cannot redirect the harness's
    reads). Elsewhere only the final component is not followed. A FIFO or a
    device is described, never opened.
    """
    rel = _relative(path, root) if root_fd is not None else None
    if rel is not None:
        parent, _, name = rel.rpartition("/")
        try:
            pfd = safefs.open_path(root_fd, parent) if parent else os.dup(root_fd)  # type: ignore[arg-type]
        except FileNotFoundError:
            return FileState(False, None)
        except OSError as exc:
            return FileState(False, None) if isinstance(exc, safefs.UnsafeEntry) else \
                FileState(True, f"unreadable:{exc.errno}")
        try:
            return _state_at(pfd, name) if name else FileState(True, "dir:root")
        finally:
            os.close(pfd)
    try:
        pfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return FileState(False, None)
    except OSError as exc:
        return FileState(True, f"unreadable:{exc.errno}")
    try:
        return _state_at(pfd, path.name)
    finally:
        os.close(pfd)


def _relative(path: Path, root: Path | None) -> str | None:
    if root is None:
        return None
    text, base = os.path.normpath(str(path)), str(root)
    if text == base:
        return ""
    if text.startswith(base + "/"):
        return text[len(base) + 1:]
    return None


def read_file(path: Path, cap: int, root_fd: int | None = None, root: Path | None = None) -> bytes | None:
    """The first ``cap`` bytes of a regular file (resolved like ``file_state``), None if not one."""
    rel = _relative(path, root) if root_fd is not None else None
    try:
        if rel:
            parent, _, name = rel.rpartition("/")
            pfd = safefs.open_path(root_fd, parent) if parent else os.dup(root_fd)  # type: ignore[arg-type]
            try:
                return safefs.read_regular(pfd, name, cap)
            finally:
                os.close(pfd)
        return safefs.read_host_file(str(path), cap)
    except OSError:
        return None


def tree_state(root_fd: int, rel: str) -> dict[str, tuple[int, int, int]]:
    """(size, mtime_ns, inode) of every regular file under ``rel`` of a root (nothing followed)."""
    out: dict[str, tuple[int, int, int]] = {}
    try:
        top = safefs.open_path(root_fd, rel)
    except OSError:
        return out
    try:
        for sub, _fd, _name, st in safefs.walk(top, max_entries=20_000):
            if stat.S_ISREG(st.st_mode):
                out[f"{rel}/{sub}"] = (st.st_size, st.st_mtime_ns, st.st_ino)
    finally:
        os.close(top)
    return out
