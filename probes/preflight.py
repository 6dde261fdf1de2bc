"""Report the isolation this process sees: namespaces, seccomp, privileges, what is visible."""
import os
import sys
from _probe import args, emit

a = args(sys.argv[1:], {"workspace": None, "home": None})
ns = {}
for name in ("user", "pid", "net", "mnt", "ipc", "uts", "cgroup"):
    try:
        ns[name] = os.readlink("/proc/self/ns/" + name)
    except OSError as exc:
        ns[name] = "unreadable: " + type(exc).__name__
status = {}
try:
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("Seccomp", "NoNewPrivs", "CapEff", "Uid"):
                status[key] = value.strip()
except OSError as exc:
    status["error"] = str(exc)
try:
    procs = sum(1 for d in os.listdir("/proc") if d.isdigit())
except OSError:
    procs = -1
uname = os.uname()
emit("preflight", "report isolation", True, namespaces=ns, status=status, processes=procs,
     kernel={"release": uname.release, "version": uname.version},
     workspace_visible=os.path.isdir(a["workspace"]),
     home_visible=os.path.exists(os.path.join(a["home"], ".bashrc")))
