"""Launch server: every target process starts here, under a keeper of its own (standard library only).

Started once per run with /usr/bin/python3. For each request it forks a
*keeper*: a child subreaper (``PR_SET_CHILD_SUBREAPER``) that starts the
target (``exec`` of an argv, or for a control run the probe's code in a
plain fork, which saves the interpreter's start-up) and stays its ancestor.
Whatever the target starts, double-forked or setsid'd daemons included,
stays a descendant of the keeper, so the launch's processes are known
exactly: the keeper lists them when asked, and kills and reaps every one of
them when told to end, or when the harness goes (its control socket closes).

Protocol: the harness sends one JSON request ``{"argv", "env", "cwd",
"fork": bool, "pass": [N, ...]}`` with four file descriptors (stdin, stdout,
stderr, and the keeper's end of a SOCK_SEQPACKET control socket) followed by
one for each number in ``pass`` (inherited by the target as that number:
a check's ``pass_fd`` setup); the server answers
``{"keeper": PID}``. On the control socket the keeper sends ``{"pid": N}``
once the target started and ``{"exit": CODE}`` when it exited (-SIG when a
signal ended it); it answers ``survivors`` with ``{"survivors": [[pid,
cmdline], ...]}`` and ``end`` with ``{"ended": COUNT}`` before it exits.
"""
import ctypes
import fcntl
import gc
import json
import os
import select
import signal
import socket
import sys
import time
import traceback

sys.path.insert(0, sys.argv[1])
# Warm the modules probes import, so each forked control starts with them loaded.

sock = socket.socket(fileno=int(sys.argv[2]))
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # keepers are reaped by the kernel
_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_CHILD_SUBREAPER = 36

_code = {}


def script_args(argv):
    """The probe script and its arguments, without the interpreter and its options."""
    args = list(argv[1:])
    while args and args[0].startswith("-"):
        args.pop(0)
    return args


def compiled(path):
    """The probe's code object, compiled once in the server (before forking)."""
    if path not in _code:
        with open(path, "rb") as fh:
            _code[path] = compile(fh.read(), path, "exec")
    return _code[path]


def _read_small(path):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 65536)
    finally:
        os.close(fd)


def children(pid):
    """The children of ``pid`` (of all its threads), from /proc."""
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            out.extend(int(k) for k in _read_small("/proc/%d/task/%s/children" % (pid, tid)).split())
        except (OSError, ValueError):
            continue
    return out


def descendants(pid):
    """Every living descendant of ``pid``, read from /proc's children lists."""
    out, stack = [], [pid]
    while stack:
        kids = children(stack.pop())
        out.extend(kids)
        stack.extend(kids)
    return out


def alive(pid):
    """Whether ``pid`` is a live process (not a zombie, not being torn down)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            data = fh.read(512)
    except OSError:
        return False
    state = data[data.rfind(b")") + 2:data.rfind(b")") + 3]
    return state not in (b"Z", b"X", b"x")


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            return fh.read(4096).replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def reap():
    """Reap every exited child; (pid, exit code) of each."""
    done = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done.append((pid, os.waitstatus_to_exitcode(status)))


def end_all(me):
    """Stop, then kill and reap every descendant (a fork bomb is frozen before it is killed)."""
    killed = 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        procs = descendants(me)
        if not procs:
            break
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for p in procs:
                try:
                    os.kill(p, sig)  # a descendant of this keeper: listed through its own parents
                except OSError:
                    pass
        killed += len(procs)
        reap()
        time.sleep(0.001)
    reap()
    return killed


#: Descriptors passed on to a target beyond the four of every launch, at most.
MAX_PASS = 8
#: Passed descriptors are moved this high in the keeper first, so no dup2 onto a
#: wanted number (below it) overwrites another passed descriptor.
_PASS_BASE = 100


def passed(req, fds):
    """(number the target gets, descriptor held here) for the request's passed descriptors."""
    return list(zip(req.get("pass") or [], fds[4:]))


def run_child(req, fds, code_obj):
    code = 1
    try:
        os.setsid()
        for target, fd in zip((0, 1, 2), fds[:3]):
            os.dup2(fd, target)
        for fd in fds[:4]:
            if fd > 2:
                os.close(fd)
        for number, fd in passed(req, fds):
            os.dup2(fd, number)  # not close-on-exec: a probe may exec a program that uses it
            os.close(fd)
        os.chdir(req["cwd"])
        if code_obj is None:
            os.execve(req["argv"][0], req["argv"], req["env"])
        os.environ.clear()
        os.environ.update(req["env"])
        sys.argv = script_args(req["argv"])
        sys.path[0] = os.path.dirname(sys.argv[0])
        try:
            exec(code_obj, {"__name__": "__main__", "__file__": sys.argv[0],  # noqa: S102
                            "__builtins__": __builtins__})
            code = 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:
                sys.stderr.write(str(exc.code) + "\n")
                code = 1
        except BaseException:  # noqa: BLE001 - report like an interpreter would
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        try:
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
        code = 127
    finally:
        os._exit(code)


def send(ctl, obj):
    try:
        ctl.send(json.dumps(obj).encode())
    except OSError:
        pass


def keeper(req, fds, code_obj):
    """One launch: start the target, report on it, end everything it left."""
    try:
        sock.close()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        ctl = socket.socket(fileno=fds[3])
        ctl.set_inheritable(False)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # before the child exists: no exit is missed
        if len(fds) > 4:
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _PASS_BASE) for fd in fds[4:]]
            for fd in fds[4:]:
                os.close(fd)
            fds = fds[:4] + high
        if code_obj is None:
            # An exec: posix_spawn (vfork and exec in C) is much cheaper than forking this
            # interpreter or running subprocess's Python. The keeper's own cwd is the
            # target's: nothing else here looks at it.
            try:
                os.chdir(req["cwd"])
                pid = os.posix_spawn(req["argv"][0], req["argv"], req["env"], setsid=True, file_actions=[
                    *((os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(fds[:3])),
                    *((os.POSIX_SPAWN_CLOSE, fd) for fd in fds[:3] if fd > 2),
                    *((os.POSIX_SPAWN_DUP2, fd, number) for number, fd in passed(req, fds))])
            except OSError as exc:
                os.write(fds[2], ("cannot start %s: %s\n" % (req["argv"][0], exc)).encode())
                pid = os.fork()
                if pid == 0:
                    os._exit(127)
        else:
            pid = os.fork()
            if pid == 0:
                run_child(req, fds, code_obj)
        for fd in [*fds[:3], *fds[4:]]:
            os.close(fd)
        me = os.getpid()
        send(ctl, {"pid": pid})
        poller = select.poll()
        poller.register(ctl, select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        exited = False
        while True:
            for p, code in reap():
                if p == pid and not exited:
                    exited = True
                    if not descendants(me):
                        # Nothing left (every orphan would be a child of this keeper by now):
                        # the launch is over, no "end" round trip needed.
                        send(ctl, {"exit": code, "ended": 0})
                        return
                    send(ctl, {"exit": code})
            ready = [fd for fd, _ in poller.poll(5000)]  # poll: descriptors may be above 1024
            if wake_r in ready:
                try:
                    os.read(wake_r, 4096)
                except OSError:
                    pass
            if ctl.fileno() in ready:
                try:
                    msg = ctl.recv(4096)
                except OSError:
                    msg = b""
                if msg == b"survivors":
                    living = [[p, cmdline(p)] for p in descendants(me) if alive(p)]
                    send(ctl, {"survivors": living[:1000]})
                elif msg == b"end" or not msg:
                    n = end_all(me)
                    if not exited:
                        for p, code in reap():
                            if p == pid:
                                exited = True
                                send(ctl, {"exit": code})
                    send(ctl, {"ended": n})
                    break
    finally:
        os._exit(0)


def end_orphans(keepers):
    """Kill the server's children that are not keepers: what a killed keeper left.

    The server is a subreaper too, so a target that kills its own keeper lands
    here instead of escaping to init; the launch is over then, so all of it goes.
    """
    stop = time.monotonic() + 5
    while time.monotonic() < stop:
        kids = set(children(os.getpid()))
        keepers &= kids  # the ones that ended are no children any more
        orphans = kids - keepers
        if not orphans:
            return
        # Pass after pass: a process that forks and exits hands its child back here.
        for pid in orphans:
            tree = [pid, *descendants(pid)]
            for sig in (signal.SIGSTOP, signal.SIGKILL):  # frozen first: a fork bomb stops growing
                for p in tree:
                    try:
                        os.kill(p, sig)
                    except OSError:
                        pass
        time.sleep(0.001)


def code_for(req):
    """The code object a fork-mode request runs (None for an exec)."""
    if not req.get("fork"):
        return None
    try:
        return compiled(script_args(req["argv"])[0])
    except (OSError, IndexError, SyntaxError) as exc:
        return compile("raise SystemExit(%r)" % ("launch server: %s" % exc), "<error>", "exec")


def spare():
    """A keeper forked ahead of its request, so that no launch waits for a fork of this
    interpreter: it blocks until the server hands it one request, then keeps that launch."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            sock.close()
            ours.close()
            msg, fds, _flags, _addr = socket.recv_fds(theirs, 1 << 20, 4 + MAX_PASS)
            theirs.close()
            if msg:
                req = json.loads(msg)
                keeper(req, fds, code_for(req))
        finally:
            os._exit(0)
    theirs.close()
    return pid, ours


# Every probe compiled once, before any keeper is forked: forked controls start warm.
for _name in sorted(os.listdir(sys.argv[1])):
    if _name.endswith(".py"):
        try:
            compiled(os.path.join(sys.argv[1], _name))
        except (OSError, SyntaxError):
            pass

# What exists now is never collected: forked keepers do not copy pages for the collector.
gc.freeze()
_libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
keepers = set()
server_poll = select.poll()
server_poll.register(sock, select.POLLIN)
next_keeper = spare()
keepers.add(next_keeper[0])
while True:
    ready = server_poll.poll(500)
    if not ready:
        end_orphans(keepers)
        continue
    try:
        msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 4 + MAX_PASS)
    except OSError:
        break
    if not msg:
        break
    # The reply first: handing the request over wakes the spare, which may take the CPU.
    kpid, chan = next_keeper
    sock.sendall(json.dumps({"keeper": kpid}).encode() + b"\n")
    try:
        socket.send_fds(chan, [msg], fds)
    except OSError:
        # That spare is gone (killed by a target): a keeper forked now takes the launch.
        keepers.discard(kpid)
        req = json.loads(msg)
        code_obj = code_for(req)
        pid = os.fork()
        if pid == 0:
            chan.close()
            keeper(req, fds, code_obj)
        keepers.add(pid)
    chan.close()
    for fd in fds:
        os.close(fd)
    next_keeper = spare()  # after the reply: the launch does not wait for this fork
    keepers.add(next_keeper[0])
    end_orphans(keepers)
