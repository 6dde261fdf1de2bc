"""Extract a tar archive the way a naive tool would, member names unchecked."""
import sys
import tarfile
from _probe import args, emit, precondition_failed

a = args(sys.argv[1:], {"archive": None, "dest": "."})
action = "extract %s into %s" % (a["archive"], a["dest"])
try:
    tar = tarfile.open(a["archive"])
except (OSError, tarfile.TarError) as exc:
    # The archive is the harness's; not being able to read it says nothing about extraction.
    precondition_failed("extract_tar", action, "open " + a["archive"], exc)
try:
    with tar:
        names = tar.getnames()
        # No member filter: this reproduces extractors that honour '../' members
        # (Pythons with extraction filters need 'fully_trusted' to do the same).
        kw = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
        tar.extractall(a["dest"], **kw)
except (OSError, tarfile.TarError) as exc:
    emit("extract_tar", action, False, exc)
emit("extract_tar", action, True, members=names)
