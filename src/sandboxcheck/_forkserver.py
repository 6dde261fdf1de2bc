"""Fork server for unsandboxed control runs (standard library only).

Started once per run with /usr/bin/python3. Each request forks a child that
runs a probe program exactly as the ``none`` target would (same interpreter,
same code, no confinement), without paying the interpreter's start-up again.

Protocol over the inherited unix socket (fd given in argv[2]): the harness
sends one JSON request ``{"argv", "env", "cwd"}`` with four file descriptors
(stdin, stdout, stderr, status); the server answers ``{"pid": N}\\n``. The
child writes its exit code to the status descriptor before it exits.
"""
import json
import os
import signal
import socket
import sys
import traceback

sys.path.insert(0, sys.argv[1])
# Warm the modules probes import, so each child starts with them loaded.
import _probe  # noqa: E402,F401
import errno  # noqa: E402,F401
import hashlib  # noqa: E402,F401
import struct  # noqa: E402,F401
import subprocess  # noqa: E402,F401
import tarfile  # noqa: E402,F401
import time  # noqa: E402,F401

sock = socket.socket(fileno=int(sys.argv[2]))
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel


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


def child(req, fds, code_obj):
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        for target, fd in zip((0, 1, 2), fds[:3]):
            os.dup2(fd, target)
        status = fds[3]
        os.set_inheritable(status, False)
        for fd in fds[:3]:
            os.close(fd)
        sock.close()
        os.chdir(req["cwd"])
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
        os.write(status, str(code).encode())
    finally:
        os._exit(code)


while True:
    try:
        msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 20, 4)
    except OSError:
        break
    if not msg:
        break
    req = json.loads(msg)
    try:
        code_obj = compiled(script_args(req["argv"])[0])
    except (OSError, IndexError, SyntaxError) as exc:
        code_obj = compile("raise SystemExit(%r)" % ("fork server: %s" % exc), "<error>", "exec")
    pid = os.fork()
    if pid == 0:
        child(req, fds, code_obj)
    for fd in fds:
        os.close(fd)
    sock.sendall(json.dumps({"pid": pid}).encode() + b"\n")
