"""Shared output helper for sandboxcheck probes (standard library only).

Every probe prints exactly one line ``SANDBOXCHECK-PROBE {json}`` on stdout.
The line says what the probe tried and what it saw; the harness uses it only
to explain a result, never to prove one.

The line's fields: ``probe``, ``action``, ``attempted``, ``ok``, ``errno`` (the
failure's name, ``EACCES``), ``errno_number`` (13), ``message``, plus the
probe's own data. A probe whose action needs an earlier step (a symlink to
read through, a program to start, an archive to open) reports that step's
failure with ``precondition_failed``: ``attempted`` false and ``precondition``
naming the step. The action never ran, so that is not a denial.
"""
import errno as _errno
import os
import sys

# The C string encoder alone: importing the json package costs more start-up
# time (re, enum, ...) than the action of most probes.
from _json import encode_basestring_ascii as _quote

PREFIX = "SANDBOXCHECK-PROBE "


def emit(probe, action, ok, exc=None, **data):
    """Print the probe's one JSON line and exit 0 (the probe itself ran)."""
    rec = {"probe": probe, "action": action, "attempted": True, "ok": bool(ok),
           "errno": None, "errno_number": None, "message": ""}
    if exc is not None:
        num = getattr(exc, "errno", None)
        rec["errno"] = _errno.errorcode.get(num, str(num)) if num else type(exc).__name__
        if isinstance(num, int) and num < 0:
            # A name lookup's failure (socket.gaierror): its EAI_ name, not "-3".
            import socket
            rec["errno"] = next((n for n in dir(socket) if n.startswith("EAI_") and getattr(socket, n) == num),
                                rec["errno"])
        rec["errno_number"] = num if isinstance(num, int) else None
        rec["message"] = str(exc)[:300]
    rec.update(data)
    sys.stdout.write(PREFIX + _dumps(rec) + "\n")
    sys.stdout.flush()
    sys.exit(0)


def precondition_failed(probe, action, step, exc=None, **data):
    """Report that ``step``, which ``action`` needs, failed: the action never ran (exits 0)."""
    emit(probe, action, False, exc, attempted=False, precondition=step, **data)


def through_symlink(probe, action, link, target):
    """The path to act on: ``target``, or a new symlink ``link`` to it when ``link`` is given.

    Creating the link is a precondition: when the sandbox refuses it, the
    action through the link never happens, which proves nothing about it.
    """
    if not link:
        return target
    try:
        os.symlink(target, link)
    except OSError as exc:
        precondition_failed(probe, action, "symlink %s -> %s" % (link, target), exc)
    return link


def _dumps(obj):
    """Minimal JSON encoder for str, int, float, bool, None, list, tuple and dict."""
    if obj is None or obj is True or obj is False:
        return {None: "null", True: "true", False: "false"}[obj]
    if isinstance(obj, (int, float)):
        return repr(obj)
    if isinstance(obj, str):
        return _quote(obj)
    if isinstance(obj, dict):
        return "{" + ", ".join(_quote(str(k)) + ": " + _dumps(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ", ".join(_dumps(v) for v in obj) + "]"
    return _quote(str(obj))


def digest(value):
    """A short one-way digest, so environment values never cross in clear."""
    import hashlib

    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    return "sha256:" + hashlib.sha256(value).hexdigest()[:24]


def args(argv, spec):
    """Parse ``--name value`` pairs; ``spec`` maps names to defaults (None: required)."""
    out = dict(spec)
    rest = list(argv)
    while rest:
        key = rest.pop(0)
        if key == "--":
            out["--"] = rest
            break
        if not key.startswith("--") or key[2:] not in spec:
            sys.exit("probe: unknown argument %r" % key)
        out[key[2:]] = rest.pop(0) if rest else ""
    missing = [k for k, v in out.items() if v is None]
    if missing:
        sys.exit("probe: missing argument(s): %s" % ", ".join(missing))
    return out
