"""Landlock launcher: restrict this process with Landlock, then exec a command.

Usage: _landlock.py [--read PATH]... [--write PATH]... [--deny-tcp] [--scope]
                    [--abi] -- CMD...
Reads are allowed beneath each --read path, reads and writes beneath each
--write path, nothing else. --deny-tcp handles TCP bind/connect with no allow
rule (kernel ABI >= 4). --scope blocks signals and abstract unix sockets to
processes outside the domain (ABI >= 6). --abi prints the kernel's ABI.
Missing paths are skipped. Standard library only (ctypes), x86_64/aarch64.
"""
import ctypes
import os
import platform
import sys

NR = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}
CREATE, ADD_RULE, RESTRICT = NR.get(platform.machine(), (444, 445, 446))
PR_SET_NO_NEW_PRIVS = 38
RULE_PATH_BENEATH, RULE_NET_PORT = 1, 2

# Filesystem rights, in the order the kernel defines them; ABI adds the later ones.
FS = [1 << i for i in range(16)]
FS_ABI = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16, 6: 16, 7: 16}
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = FS[0], FS[1], FS[2], FS[3]
TRUNCATE, IOCTL_DEV = 1 << 14, 1 << 15
FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
NET_BIND_TCP, NET_CONNECT_TCP = 1, 2
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1, 2


class RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]


libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def fail(what):
    err = ctypes.get_errno()
    sys.stderr.write("landlock: %s failed: %s\n" % (what, os.strerror(err)))
    sys.exit(126)


def abi():
    return libc.syscall(CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))


def main(argv):
    reads, writes, deny_tcp, scope = [], [], False, False
    while argv and argv[0] != "--":
        opt = argv.pop(0)
        if opt == "--abi":
            print(abi())
            return 0
        if opt in ("--read", "--write"):
            (reads if opt == "--read" else writes).append(argv.pop(0))
        elif opt == "--deny-tcp":
            deny_tcp = True
        elif opt == "--scope":
            scope = True
        else:
            sys.exit("landlock: unknown option " + opt)
    cmd = argv[1:]
    if not cmd:
        sys.exit("landlock: no command after --")
    version = abi()
    if version < 1:
        fail("landlock_create_ruleset(VERSION)")
    all_fs = sum(FS[: FS_ABI.get(version, 16)])
    read_rights = EXECUTE | READ_FILE | READ_DIR
    attr = RulesetAttr(all_fs, 0, 0)
    size = 8
    if deny_tcp and version >= 4:
        attr.net, size = NET_BIND_TCP | NET_CONNECT_TCP, 16
    if scope and version >= 6:
        attr.scoped, size = SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL, 24
    ruleset = libc.syscall(CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        fail("landlock_create_ruleset")
    for paths, rights in ((reads, read_rights), (writes, all_fs)):
        for path in paths:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            allowed = rights if os.path.isdir(path) else rights & FILE_ONLY
            rule = PathBeneath(allowed & all_fs, fd)
            if libc.syscall(ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
                fail("landlock_add_rule " + path)
            os.close(fd)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        fail("prctl(NO_NEW_PRIVS)")
    if libc.syscall(RESTRICT, ruleset, 0) != 0:
        fail("landlock_restrict_self")
    os.close(ruleset)
    try:
        os.execv(cmd[0], cmd)
    except OSError as exc:
        sys.stderr.write("landlock: exec %s: %s\n" % (cmd[0], exc))
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
