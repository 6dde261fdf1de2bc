"""The run's throwaway roots: made ahead on a thread, recycled between checks, removed at the end."""
from __future__ import annotations

import os
import errno
import queue
import secrets
import tempfile
import threading
from pathlib import Path

from .. import safefs
from ..evidence.sinks import Sinks
from ..model import UNIX_SINKS
from .workspace import Retired, Root, RunFolder, new_token, reseed, seed

#: Longest root path that leaves room for run/ssh-agent.sock in a sockaddr_un (108 bytes).
MAX_ROOT = 107 - len("/run/ssh-agent.sock")


def check_temp_dir() -> str | None:
    """None when throwaway roots fit unix socket paths, else the problem and its fix."""
    longest = len(os.path.join(tempfile.gettempdir(), "sandboxcheck-" + "x" * 8, "x" * 16))
    if longest > MAX_ROOT:
        return (f"the temp folder {tempfile.gettempdir()!r} is too long for unix sockets in the "
                f"throwaway roots ({longest} > {MAX_ROOT} characters): set TMPDIR to a shorter folder")
    return None


class _Roots:
    """Throwaway roots for the checks: seeded ahead of use, recycled after it, off the checks' path.

    Every root of a run lives in the run's own folder under the temp folder
    (``sandboxcheck-XXXXXXXX/<16 hex>``), held by descriptor. The first roots
    are seeded by a helper thread while the sandboxes start. A used root goes
    to a second helper thread, which recycles it: renamed to a fresh name,
    everything the check changed put back, every dummy secret rewritten with
    a new token (``reseed``). That costs a fraction of removing a root and
    seeding a new one, and the next check still gets a root with a path and
    canaries of its own. A root that cannot be proven equal to a fresh seed
    (moved or swapped, an entry that cannot be removed, a seeded folder
    changed) is retired: removed, and what could not go is reported.
    """

    UNIX = UNIX_SINKS

    def __init__(self, run: RunFolder, sinks: Sinks, ahead: int) -> None:
        self.run = run
        self.sinks = sinks
        self.base = run.path
        self._ahead = max(1, ahead)
        self._made = 0
        self._made_lock = threading.Lock()
        self._names: set[str] = set()
        self._ready: queue.Queue[Root] = queue.Queue()
        self._trash: queue.Queue[Root | None] = queue.Queue()
        self._closing = threading.Event()
        #: Why roots were retired instead of recycled.
        self.retired: list[str] = []
        self._threads = [threading.Thread(target=self._produce, name="sandboxcheck-seed", daemon=True),
                         threading.Thread(target=self._clean, name="sandboxcheck-clean", daemon=True)]
        for t in self._threads:
            t.start()

    def listen(self, root: Root) -> Root:
        """Make sure both unix sinks listen in ``root``'s ``run/`` (again, if a check
        removed one or put a socket of its own in its place).

        Bound through a descriptor of ``run/`` (``/proc/self/fd/N/``), so nothing
        the target planted on the way is followed."""
        rfd = safefs.open_path(root.fd, "run")
        try:
            for name in self.UNIX:
                sock = f"{name}.sock"
                path = root.run / sock
                bound = root.sockets.get(name)
                try:
                    if bound is not None and safefs.lstat_at(rfd, sock).st_ino == bound[1]:
                        continue
                except OSError:
                    pass
                if bound is not None:
                    self.sinks.remove_unix(Path(bound[0]))
                if safefs.remove_at(rfd, sock):  # whatever took its place
                    raise Retired(errno.EPERM, f"run/{sock} cannot be replaced")
                self.sinks.add_unix(name, path, bind=f"/proc/self/fd/{rfd}/{sock}")
                root.sockets[name] = (str(path), safefs.lstat_at(rfd, sock).st_ino)
        finally:
            os.close(rfd)
        return root

    def _unlisten(self, root: Root) -> None:
        for path, _ in root.sockets.values():
            self.sinks.remove_unix(Path(path))
        root.sockets.clear()

    def _new_path(self) -> Path:
        """A name in the run's folder that no root of this run ever had (call with _made_lock)."""
        while True:
            name = secrets.token_hex(8)
            if name not in self._names:
                try:
                    safefs.lstat_at(self.run.fd, name)
                    continue
                except FileNotFoundError:
                    pass
                self._names.add(name)
                return self.base / name

    def _make(self) -> Root:
        with self._made_lock:
            self._made += 1
            path = self._new_path()
            os.mkdir(path.name, 0o700, dir_fd=self.run.fd)
        fd = safefs.open_dir(self.run.fd, path.name)
        try:
            root = seed(path, new_token(), fd=fd)
        finally:
            os.close(fd)
        try:
            return self.listen(root)
        except BaseException:
            self._remove(root)
            raise

    def _produce(self) -> None:
        # Only the first roots: after them, used ones come back recycled.
        while not self._closing.is_set() and self._made < self._ahead:
            try:
                root = self._make()
            except OSError:
                return  # take() falls back to seeding in the caller, which reports the error
            if self._closing.is_set():
                self._remove(root)
                return
            self._ready.put(root)

    def _clean(self) -> None:
        while True:
            root = self._trash.get()
            if root is None:
                return
            try:
                if not self._closing.is_set() and self._ready.qsize() < self._ahead:
                    fresh = self._recycle(root)
                    if fresh is not None:
                        self._ready.put(fresh)
                        continue
                self._remove(root)
            except Exception as exc:  # noqa: BLE001 - the thread must go on; the root is reported
                self.retired.append(f"{root.path.name}: {exc}")

    def _recycle(self, root: Root) -> Root | None:
        """``root`` at a new path with a new token; None if it had to be retired.

        Its unix sockets move with it and go on listening (a connection by the new
        path reaches them; their hits are told apart by sink name and token).
        """
        with self._made_lock:
            path = self._new_path()
        try:
            fresh = reseed(root, new_token(), path=path, parent_fd=self.run.fd)
            return self.listen(fresh)
        except OSError as exc:
            self.retired.append(f"{root.path.name}: {exc.strerror or exc}")
            self._remove(root)
            return None

    def _remove(self, root: Root) -> None:
        """Remove a root for good. One moved away or swapped by the code under test is
        emptied through its descriptor; the entry at its path (a symlink) only unlinked."""
        self._unlisten(root)
        try:
            if root.fd >= 0 and os.fstat(root.fd).st_nlink == 0:
                return  # removed already (by the code under test): nothing left to do
            if root.fd >= 0:
                try:
                    here = safefs.same_file(safefs.lstat_at(self.run.fd, root.path.name), os.fstat(root.fd))
                except OSError:
                    here = False
                if not here:
                    # Moved away by the code under test: emptied through its descriptor
                    # now, its empty folder removed (or reported) when the run ends.
                    self.run.moved_away(root.fd, str(root.path))
            self.run.remove(root.path.name)
        finally:
            root.close()

    def take(self) -> Root:
        """A freshly seeded or recycled root (its sockets listening), for one execution only."""
        while True:
            try:
                root = self._ready.get(timeout=0.1)
            except queue.Empty:
                return self._make()
            if root.path.parent == self.base and os.fstat(root.fd).st_nlink:
                return root
            self._remove(root)  # of a run folder the code under test removed or moved

    def switch(self, run: RunFolder) -> None:
        """Make new roots in ``run`` from now on (the old run folder was removed or moved)."""
        with self._made_lock:
            self.run = run
            self.base = run.path

    def discard(self, root: Root) -> None:
        """Hand a used root back (recycled or removed, asynchronously)."""
        self._trash.put(root)

    def keep(self, root: Root) -> None:
        """Leave a used root on disk (and the run's folder with it), but stop its sockets."""
        self._unlisten(root)
        root.close()
        self.run.kept = True

    def close(self) -> None:
        """Stop both threads and remove every root not in use."""
        self._closing.set()
        self._trash.put(None)
        for t in self._threads:
            t.join(30)
        while True:
            try:
                self._remove(self._ready.get_nowait())
            except queue.Empty:
                break
            except OSError:
                continue
