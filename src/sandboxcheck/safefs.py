"""File operations on trees that hostile code may have touched.

Everything inside a throwaway root is the target's to change while a check
runs: any file may have become a symlink to a host file, a FIFO, a device, a
hard link of a host file, a bind mount of a host folder or an immutable file.
The harness runs as root, so a plain ``open(path)`` or ``chmod(path)`` there
would let the code under test use the harness against the host. Every
host-side operation on such a tree therefore goes through directory
descriptors, one path component at a time: nothing follows a symlink, nothing
crosses a mount point (``openat2`` with ``RESOLVE_NO_XDEV`` where the kernel
has it, a device check where it does not), only regular files are read and
never more than a cap, and nothing is chmodded that the harness did not reach
through such descriptors inside its own folder.
"""
from __future__ import annotations

import ctypes
import errno
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass

_RESOLVE_NO_XDEV = 0x01
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_NO_SYMLINKS = 0x04
_RESOLVE_BENEATH = 0x08
_SYS_OPENAT2 = 437  # the same number on every architecture (new syscall table)

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK


class UnsafeEntry(OSError):
    """An entry that is not what the harness may act on (a symlink, a mount point, a FIFO...)."""


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _libc() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.syscall.restype = ctypes.c_long
        return lib
    except (OSError, AttributeError):
        return None


_LIBC = _libc()
_HAVE_OPENAT2: bool | None = None


def _openat2(dir_fd: int, name: str, flags: int, mode: int = 0) -> int:
    """``openat2`` beneath ``dir_fd``: no symlink, no magic link, no mount crossing.

    Falls back to ``openat`` with ``O_NOFOLLOW`` plus a device check where the
    kernel has no ``openat2`` (name is always one component, so ``O_NOFOLLOW``
    covers every symlink).
    """
    global _HAVE_OPENAT2
    if _HAVE_OPENAT2 is not False and _LIBC is not None:
        how = _OpenHow(flags, mode, _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS
                       | _RESOLVE_NO_XDEV)
        fd = _LIBC.syscall(_SYS_OPENAT2, ctypes.c_int(dir_fd), os.fsencode(name), ctypes.byref(how),
                           ctypes.c_size_t(ctypes.sizeof(how)))
        if fd >= 0:
            _HAVE_OPENAT2 = True
            return int(fd)
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EPERM) or _HAVE_OPENAT2:
            if err == errno.EXDEV:
                raise UnsafeEntry(err, "a mount point", name)
            if err == errno.ELOOP:
                raise UnsafeEntry(err, "a symlink", name)
            raise OSError(err, os.strerror(err), name)
        _HAVE_OPENAT2 = False  # seccomp or an old kernel: ENOSYS (EPERM under some filters)
    try:
        fd = os.open(name, flags, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeEntry(exc.errno, "a symlink", name) from None
        raise
    if os.fstat(fd).st_dev != os.fstat(dir_fd).st_dev:
        os.close(fd)
        raise UnsafeEntry(errno.EXDEV, "a mount point", name)
    return fd


def _check_name(name: str) -> None:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"not a single path component: {name!r}")


def open_dir(dir_fd: int, name: str) -> int:
    """A descriptor of the folder ``name`` in ``dir_fd`` (never a symlink, never another mount)."""
    _check_name(name)
    return _openat2(dir_fd, name, _DIR_FLAGS)


def open_path(dir_fd: int, rel: str) -> int:
    """A descriptor of the folder at ``rel`` (components separated by /) beneath ``dir_fd``."""
    return mkdirs(dir_fd, rel, create=False)


def mkdirs(dir_fd: int, rel: str, mode: int = 0o777, create: bool = True) -> int:
    """Create the folders of ``rel`` beneath ``dir_fd`` as needed (unless not ``create``);
    a descriptor of the last, each component entered through ``open_dir``."""
    fd = os.dup(dir_fd)
    try:
        for part in rel.split("/"):
            if part in ("", "."):
                continue
            if create:
                try:
                    os.mkdir(part, mode, dir_fd=fd)
                except FileExistsError:
                    pass
            nxt = open_dir(fd, part)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(dir_fd: int, name: str) -> int:
    """A read descriptor of the regular file ``name`` in ``dir_fd``; refuses anything else.

    ``O_NONBLOCK`` keeps a FIFO from blocking the open, ``O_NOCTTY`` a terminal
    from becoming the harness's; the fstat afterwards refuses both, and devices.
    """
    _check_name(name)
    # Looked at before it is opened: opening some devices does something by itself.
    if not stat.S_ISREG(lstat_at(dir_fd, name).st_mode):
        raise UnsafeEntry(errno.EINVAL, "not a regular file", name)
    fd = _openat2(dir_fd, name, _READ_FLAGS)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafeEntry(errno.EINVAL, "not a regular file", name)
    return fd


def open_file(dir_fd: int, name: str, access: int = os.O_RDONLY) -> int:
    """A descriptor of the regular file ``name`` in ``dir_fd``, opened with ``access``
    (``O_RDONLY``, ``O_WRONLY`` or ``O_RDWR``; inheritable, never truncating); refuses anything else."""
    _check_name(name)
    if not stat.S_ISREG(lstat_at(dir_fd, name).st_mode):
        raise UnsafeEntry(errno.EINVAL, "not a regular file", name)
    fd = _openat2(dir_fd, name, (_READ_FLAGS & ~os.O_RDONLY & ~os.O_CLOEXEC) | access)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafeEntry(errno.EINVAL, "not a regular file", name)
    return fd


def chmod_at(dir_fd: int, name: str, mode: int) -> None:
    """Set the mode of the folder or regular file ``name`` in ``dir_fd`` on a descriptor of it
    (never a symlink's target, never across a mount)."""
    _check_name(name)
    st = lstat_at(dir_fd, name)
    if stat.S_ISDIR(st.st_mode):
        fd = open_dir(dir_fd, name)
    elif stat.S_ISREG(st.st_mode):
        fd = open_file(dir_fd, name)
    else:
        raise UnsafeEntry(errno.EINVAL, "neither a folder nor a regular file", name)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def link_at(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str) -> None:
    """A hard link ``dst`` in ``dst_dir_fd`` to the regular file ``src`` in ``src_dir_fd``
    (the source itself, never what a symlink there names)."""
    _check_name(src)
    _check_name(dst)
    st = lstat_at(src_dir_fd, src)
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeEntry(errno.EINVAL, "not a regular file", src)
    if st.st_dev != os.fstat(dst_dir_fd).st_dev:
        raise UnsafeEntry(errno.EXDEV, "on another file system", src)
    os.link(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, follow_symlinks=False)


def read_fd(fd: int, cap: int) -> bytes:
    """At most ``cap`` bytes from ``fd``."""
    chunks, left = [], cap
    while left > 0:
        try:
            data = os.read(fd, min(left, 1 << 16))
        except BlockingIOError:
            break
        if not data:
            break
        chunks.append(data)
        left -= len(data)
    return b"".join(chunks)


def read_regular(dir_fd: int, name: str, cap: int) -> bytes:
    """The first ``cap`` bytes of the regular file ``name`` in ``dir_fd``."""
    fd = open_regular(dir_fd, name)
    try:
        return read_fd(fd, cap)
    finally:
        os.close(fd)


def read_host_file(path: str, cap: int) -> bytes:
    """The first ``cap`` bytes of a regular file named by an absolute path, never blocking.

    For paths the harness does not own (a watched path outside its roots):
    the final component is not followed; only regular files are read.
    """
    fd = os.open(path, _READ_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeEntry(errno.EINVAL, "not a regular file", path)
        return read_fd(fd, cap)
    finally:
        os.close(fd)


def create_file(dir_fd: int, name: str, data: bytes, mode: int = 0o644) -> None:
    """Create ``name`` in ``dir_fd`` with ``data``; fails if anything is there already."""
    _check_name(name)
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY,
                 mode, dir_fd=dir_fd)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def lstat_at(dir_fd: int, name: str) -> os.stat_result:
    """``lstat`` of ``name`` in ``dir_fd``."""
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    """Whether two stat results are of the same inode."""
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@dataclass(frozen=True, slots=True)
class Leftover:
    """Something the harness could not remove, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


#: Names read from a folder at once while emptying it (bounds memory for huge folders).
_CHUNK = 4096
#: Entries removed at most by one call (a target that keeps creating files cannot stall the harness).
MAX_REMOVALS = 2_000_000


def _names(fd: int, skip: set[str]) -> list[tuple[str, bool]]:
    """Up to ``_CHUNK`` (name, is a folder) of ``fd``, the type from the directory entry
    itself (no stat; a wrong hint only costs a retry, never a followed link)."""
    out = []
    with os.scandir(fd) as it:
        for entry in it:
            if entry.name not in skip:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                out.append((entry.name, is_dir))
                if len(out) >= _CHUNK:
                    break
    return out


def _why(exc: OSError) -> str:
    if isinstance(exc, UnsafeEntry):
        return exc.strerror or "refused"
    if exc.errno == errno.EPERM:
        return "operation not permitted (immutable or append-only?)"
    return os.strerror(exc.errno) if exc.errno else str(exc)


def _unlink(fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=fd)
    except PermissionError as exc:
        # Without root a read-only folder of the tree blocks its entries: make it
        # writable. ``fd`` was reached through no-follow descriptors inside the
        # harness's own folder, so this cannot touch anything outside it.
        if os.geteuid() == 0 or exc.errno != errno.EACCES:
            raise
        os.fchmod(fd, stat.S_IRWXU)
        os.unlink(name, dir_fd=fd)


def remove_at(dir_fd: int, name: str, label: str | None = None, deadline: float | None = None
              ) -> list[Leftover]:
    """Remove ``name`` (a file or a whole tree) in ``dir_fd``; what could not go, and why.

    Never follows a symlink, never enters another mount, never leaves the tree
    (a folder moved away while it is emptied is left, and said so), holds one
    descriptor whatever the depth, and gives up after ``MAX_REMOVALS`` entries
    or at ``deadline`` (``time.monotonic()``).
    """
    _check_name(name)
    label = label or name
    try:
        st = lstat_at(dir_fd, name)
    except FileNotFoundError:
        return []
    except OSError as exc:
        return [Leftover(label, _why(exc))]
    if not stat.S_ISDIR(st.st_mode):
        try:
            _unlink(dir_fd, name)
            return []
        except FileNotFoundError:
            return []
        except OSError as exc:
            return [Leftover(label, _why(exc))]
    try:
        top = open_dir(dir_fd, name)
    except OSError as exc:
        if os.geteuid() != 0 and exc.errno == errno.EACCES:
            top = _open_unreadable(dir_fd, name)
            if top is None:
                return [Leftover(label, _why(exc))]
        else:
            return [Leftover(label, _why(exc))]
    leftovers = _empty(top, label, deadline)
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if not leftovers:
            leftovers.append(Leftover(label, _why(exc)))
    return leftovers


def _open_unreadable(dir_fd: int, name: str) -> int | None:
    """Without root: a folder of the tree whose mode shuts the harness out, opened after
    giving it back owner rights through an ``O_PATH`` descriptor (no path is followed)."""
    try:
        pfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        if os.fstat(pfd).st_dev != os.fstat(dir_fd).st_dev:
            return None
        os.chmod(f"/proc/self/fd/{pfd}", stat.S_IRWXU)
        return open_dir(dir_fd, name)
    except OSError:
        return None
    finally:
        os.close(pfd)


def _empty(top: int, label: str, deadline: float | None) -> list[Leftover]:
    """Empty the folder ``top`` (a descriptor this call owns and closes)."""
    leftovers: list[Leftover] = []
    # One frame per level below ``top``: (name in the parent, parent's identity,
    # parent's names still to do, parent's names given up on).
    frames: list[tuple[str, tuple[int, int], list[str], set[str]]] = []
    cur = top
    ident = _ident(cur)
    skip: set[str] = set()
    todo = _names(cur, skip)
    removals = 0

    def where(name: str = "") -> str:
        parts = [label, *(f[0] for f in frames)] + ([name] if name else [])
        return "/".join(parts)

    try:
        while True:
            if removals > MAX_REMOVALS or (deadline is not None and time.monotonic() > deadline):
                leftovers.append(Leftover(where(), "gave up: too many entries or out of time"))
                return leftovers
            if not todo:
                todo = _names(cur, skip)
                if not todo:
                    if not frames:
                        return leftovers
                    name, parent_ident, todo, skip = frames.pop()
                    try:
                        parent = os.open("..", _DIR_FLAGS, dir_fd=cur)
                    except OSError as exc:
                        leftovers.append(Leftover(where(name), f"cannot go back up: {_why(exc)}"))
                        return leftovers
                    if _ident(parent) != parent_ident:
                        os.close(parent)
                        leftovers.append(Leftover(where(name), "moved away while it was removed"))
                        return leftovers
                    os.close(cur)
                    cur, ident = parent, parent_ident
                    try:
                        os.rmdir(name, dir_fd=cur)
                        removals += 1
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        skip.add(name)
                        if not any(lo.path.startswith(where(name)) for lo in leftovers):
                            leftovers.append(Leftover(where(name), _why(exc)))
                    continue
            name, is_dir = todo.pop()
            if not is_dir:
                try:
                    _unlink(cur, name)
                    removals += 1
                    continue
                except FileNotFoundError:
                    continue
                except IsADirectoryError:
                    is_dir = True  # replaced by a folder since it was listed
                except OSError as exc:
                    skip.add(name)
                    leftovers.append(Leftover(where(name), _why(exc)))
                    continue
            if is_dir:
                try:
                    os.rmdir(name, dir_fd=cur)  # empty already: no need to go in
                    removals += 1
                    continue
                except OSError:
                    pass
                try:
                    child = open_dir(cur, name)
                except OSError as exc:
                    child = None
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        try:  # not a folder (any more): a symlink or file is only unlinked
                            _unlink(cur, name)
                            removals += 1
                            continue
                        except FileNotFoundError:
                            continue
                        except OSError:
                            pass
                    if os.geteuid() != 0 and exc.errno == errno.EACCES:
                        child = _open_unreadable(cur, name)
                    if child is None:
                        skip.add(name)
                        leftovers.append(Leftover(where(name), _why(exc)))
                        continue
                frames.append((name, ident, todo, skip))
                os.close(cur)  # one descriptor at a time: the way back up is ".."
                cur, ident, skip = child, _ident(child), set()
                todo = _names(cur, skip)
                continue
    finally:
        os.close(cur)


def _ident(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


#: Folder depth a walk goes to at most (the harness's seeded trees are 4 deep).
MAX_DEPTH = 64


def walk(top: int, max_entries: int = 100_000, max_depth: int = MAX_DEPTH
         ) -> Iterator[tuple[str, int, str, os.stat_result]]:
    """(relative path, parent descriptor, name, lstat) of every entry beneath ``top``.

    Depth first, descending only into real folders on the same mount (no
    symlink followed), each opened once from its parent's descriptor (so the
    cost is linear in the entries, not in depth times entries); at most
    ``max_entries`` entries and ``max_depth`` levels (as many descriptors).
    The parent descriptor is valid only until the next item.
    """
    seen = 0

    def listing(fd: int) -> list[str]:
        nonlocal seen
        names: list[str] = []
        try:
            with os.scandir(fd) as it:
                for entry in it:  # lazily: a folder of a million entries costs no memory
                    seen += 1
                    if seen > max_entries:
                        break
                    names.append(entry.name)
        except OSError:
            pass
        names.reverse()  # popped from the end: listing order
        return names

    first = os.dup(top)
    frames: list[tuple[int, str, list[str]]] = [(first, "", listing(first))]
    try:
        while frames:
            fd, rel, names = frames[-1]
            if not names:
                os.close(fd)
                frames.pop()
                continue
            name = names.pop()
            try:
                st = lstat_at(fd, name)
            except OSError:
                continue
            sub = f"{rel}/{name}" if rel else name
            yield sub, fd, name, st
            if stat.S_ISDIR(st.st_mode) and len(frames) < max_depth and seen <= max_entries:
                try:
                    child = open_dir(fd, name)
                except OSError:
                    continue
                frames.append((child, sub, listing(child)))
    finally:
        for fd, _, _ in frames:
            os.close(fd)


def remove_contents(fd: int, label: str, deadline: float | None = None) -> list[Leftover]:
    """Empty the folder ``fd`` refers to (wherever it is now); the folder itself stays."""
    return _empty(os.dup(fd), label, deadline)


def _split_beneath(root: str, path: str) -> tuple[int, str]:
    """A descriptor of ``root`` (its last component not followed) and ``path`` relative to it."""
    root_n, path_n = os.path.normpath(root), os.path.normpath(path)
    if not path_n.startswith(root_n + "/"):
        raise UnsafeEntry(errno.EXDEV, "not beneath the throwaway root", path)
    fd = os.open(root_n, _DIR_FLAGS)
    return fd, path_n[len(root_n) + 1:]


def write_beneath(root: str, path: str, data: bytes, mode: int = 0o644) -> None:
    """Write ``path`` (beneath the folder ``root``) as a new file, replacing what is there.

    The folders on the way are created or entered through descriptors (no
    symlink followed, no mount crossed); the file is written under a fresh
    name and renamed over ``path``, so a symlink or FIFO planted there is
    replaced, never written through.
    """
    fd, rel = _split_beneath(root, path)
    try:
        parent, _, name = rel.rpartition("/")
        pfd = mkdirs(fd, parent) if parent else os.dup(fd)
        try:
            tmp = f".{name}.sandboxcheck-{os.getpid()}-{time.monotonic_ns()}"
            create_file(pfd, tmp, data, mode)
            try:
                os.rename(tmp, name, src_dir_fd=pfd, dst_dir_fd=pfd)
            except IsADirectoryError:
                os.unlink(tmp, dir_fd=pfd)
                left = remove_at(pfd, name)
                if left:
                    raise UnsafeEntry(errno.EPERM, left[0].reason, path) from None
                create_file(pfd, name, data, mode)
        finally:
            os.close(pfd)
    finally:
        os.close(fd)


def read_beneath(root: str, path: str, cap: int = 4 << 20) -> bytes | None:
    """The first ``cap`` bytes of the regular file ``path`` beneath ``root``; None if there is none."""
    try:
        fd, rel = _split_beneath(root, path)
    except OSError:
        return None
    try:
        parent, _, name = rel.rpartition("/")
        pfd = open_path(fd, parent) if parent else os.dup(fd)
        try:
            return read_regular(pfd, name, cap)
        finally:
            os.close(pfd)
    except OSError:
        return None
    finally:
        os.close(fd)


def snapshot_beneath(root: str, rel: str, file_cap: int = 1 << 20, total_cap: int = 8 << 20,
                     max_entries: int = 2000) -> dict[str, bytes | None]:
    """What is at ``rel`` beneath ``root``: relative path -> content (a file), ``symlink:TARGET``,
    ``special`` (a FIFO, device or socket), or None (unreadable); nothing followed, all bounded."""
    out: dict[str, bytes | None] = {}
    try:
        fd, sub = _split_beneath(root, os.path.join(root, rel))
    except OSError:
        return out
    budget = [total_cap]

    def one(dir_fd: int, name: str, path: str, st: os.stat_result) -> None:
        if stat.S_ISLNK(st.st_mode):
            try:
                out[path] = b"symlink:" + os.fsencode(os.readlink(name, dir_fd=dir_fd))
            except OSError:
                out[path] = None
        elif stat.S_ISREG(st.st_mode):
            try:
                data = read_regular(dir_fd, name, min(file_cap, max(0, budget[0])))
                budget[0] -= len(data)
                out[path] = data
            except OSError:
                out[path] = None
        elif not stat.S_ISDIR(st.st_mode):
            out[path] = b"special"

    try:
        parent, _, name = sub.rpartition("/")
        try:
            pfd = open_path(fd, parent) if parent else os.dup(fd)
        except OSError:
            return out
        try:
            try:
                st = lstat_at(pfd, name)
            except OSError:
                return out
            one(pfd, name, rel, st)
            if stat.S_ISDIR(st.st_mode):
                try:
                    top = open_dir(pfd, name)
                except OSError:
                    return out
                try:
                    for path, dfd, entry, est in walk(top, max_entries):
                        one(dfd, entry, f"{rel}/{path}", est)
                finally:
                    os.close(top)
        finally:
            os.close(pfd)
    finally:
        os.close(fd)
    return out
