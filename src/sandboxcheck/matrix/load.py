"""Load and validate check matrices, reporting every problem at once with its line."""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any


from .. import placeholders
from .lines import MatrixError, Lines, Path_, Problem, checked_schema_problems, compose, read_text, suggest  # noqa: F401  (MatrixError, Problem, compose, read_text: this module's interface)
from ..targets.agents.spec import parse_check_agent, semantic_problems as agent_semantic_problems
from ..network.contain import http_get_problems
from .conform_option import derived_checks, settings_file
from ..model import SETUP_ACTIONS, SINKS, Check, EvidenceSpec, Matrix, SetupStep, Waiver
from ..probes import PROBES
from ..safeyaml import format_path  # noqa: F401 - part of this module's interface (suite, tests)

DEFAULT_TIMEOUT = 10.0












@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    from .schema import matrix_schema

    return Draft202012Validator(matrix_schema())








def _evidence(raw: Any, probe: str) -> EvidenceSpec:
    base = PROBES[probe].evidence
    if raw is None:
        return base
    if isinstance(raw, str):
        return EvidenceSpec(kind=raw, sink=base.sink if raw == base.kind else None)
    return EvidenceSpec(kind=raw["kind"], path=raw.get("path"), contains=raw.get("contains"),
                        sink=raw.get("sink", base.sink if raw["kind"] == base.kind else None),
                        marker=raw.get("marker"), labels=tuple(raw.get("labels", ())))


def _strings(value: Any) -> Iterable[tuple[Path_, str]]:
    if isinstance(value, str):
        yield (), value
    elif isinstance(value, dict):
        for k, v in value.items():
            for sub, s in _strings(v):
                yield (k,) + sub, s
    elif isinstance(value, list):
        for i, v in enumerate(value):
            for sub, s in _strings(v):
                yield (i,) + sub, s


def _semantic_problems(data: dict[str, Any], ln: Lines) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, int] = {}

    def add(path: Path_, msg: str) -> None:
        problems.append(Problem(ln.file, ln.line(path), format_path(path), msg))

    # A wrong shape (checks: 3) is the schema's to report; only walk what is a list.
    for i, raw in enumerate(data["checks"] if isinstance(data.get("checks"), list) else []):
        if not isinstance(raw, dict):
            continue
        here: Path_ = ("checks", i)
        cid = raw.get("id")
        if isinstance(cid, str):
            if cid in seen:
                add(here + ("id",), f"duplicate id {cid!r} (first at line {seen[cid]})")
            else:
                seen[cid] = ln.line(here + ("id",))
        for sub, text in _strings({k: raw.get(k) for k in ("args", "argv", "evidence")}):
            for name in placeholders.names(text) - placeholders.MATRIX_PLACEHOLDERS:
                add(here + sub, f"unknown placeholder {{{name}}}"
                    f"{suggest(name, placeholders.MATRIX_PLACEHOLDERS)}")
        steps = raw.get("setup")
        fds = _setup_fds(steps)
        for sub, msg in _setup_problems(steps):
            add(here + ("setup",) + sub, msg)
        if not fds:
            for sub, text in _strings({k: raw.get(k) for k in ("args", "argv", "agent")}):
                if "fd" in placeholders.names(text):
                    add(here + sub, "{fd} needs a 'setup' step with 'pass_fd' (the descriptor to inherit)")
        agent = raw.get("agent")
        if agent is not None:
            for sub, msg in agent_semantic_problems(agent):
                add(here + ("agent",) + sub, msg)
        probe_name = raw.get("probe")
        probe = PROBES.get(probe_name) if isinstance(probe_name, str) else None
        if probe is None:
            continue
        args = raw.get("args") or {}
        if isinstance(args, dict):
            for name in sorted(set(args) - set(probe.required) - set(probe.optional)):
                add(here + ("args", name), f"probe {probe.name!r} takes no argument {name!r}"
                    f"{suggest(name, probe.required + probe.optional)}")
            for name in probe.required:
                if name not in args:
                    add(here + ("args",), f"probe {probe.name!r} needs argument {name!r}")
        if probe.passthrough and not raw.get("argv"):
            add(here, f"probe {probe.name!r} needs 'argv' (the program to run)")
        if not probe.passthrough and raw.get("argv"):
            add(here + ("argv",), f"probe {probe.name!r} takes no 'argv'")
        ev = raw.get("evidence")
        kind = ev if isinstance(ev, str) else (ev or {}).get("kind", probe.evidence.kind) \
            if isinstance(ev, (dict, type(None))) else None
        ev_map = ev if isinstance(ev, dict) else {}
        ev_at = here + ("evidence",) if ev is not None else here
        default = "" if ev is not None else f" (the default evidence of probe {probe.name!r}; add an 'evidence' mapping)"
        if kind == "file" and not ev_map.get("path"):
            add(ev_at, "file evidence needs 'path' (the host path to watch)" + default)
        if kind == "marker" and not ev_map.get("marker"):
            add(ev_at, "marker evidence needs 'marker'" + default)
        if kind == "sink" and not ev_map.get("sink") and not probe.evidence.sink:
            add(ev_at, f"sink evidence needs 'sink' ({', '.join(SINKS)})" + default)
        raw_labels = ev_map.get("labels")
        if isinstance(raw_labels, list) and raw_labels:
            for sub, msg in _label_problems(raw_labels, kind):
                add(ev_at + ("labels",) + sub, msg)
        if kind == "leak":
            for sub, text in _strings({"args": args, "argv": raw.get("argv"), "agent": agent}):
                if "token" in placeholders.names(text):
                    add(here + sub, "a leak check must not pass {token} to the probe: "
                        "the canary would be in its command line, not leaked")
        if isinstance(args, dict):
            for key, msg in _containment(probe.name, args):
                add(here + ("args", key), msg)
        if kind == "signal" and "witness_pid" not in placeholders.names(str(args.get("pid", ""))
                                                                         if isinstance(args, dict) else ""):
            add(ev_at, "signal evidence needs the probe to signal {witness_pid} (the harness's witness)")
        marker = ev_map.get("marker")
        if kind == "marker" and isinstance(marker, str) and marker:
            for sub, text in _strings({"args": args, "argv": raw.get("argv")}):
                if marker in text:
                    add(here + sub, f"the marker {marker!r} is written in the probe's arguments: "
                        "printing it would prove nothing")
    ids = set(seen)
    for i, w in enumerate(data["waivers"] if isinstance(data.get("waivers"), list) else []):
        if isinstance(w, dict) and isinstance(w.get("id"), str) and w["id"] not in ids:
            add(("waivers", i, "id"), f"waiver for unknown check id {w['id']!r}{suggest(w['id'], ids)}")
        if isinstance(w, dict) and isinstance(w.get("expires"), str):
            try:
                dt.date.fromisoformat(w["expires"])
            except ValueError:
                add(("waivers", i, "expires"), f"{w['expires']!r} is not a date (YYYY-MM-DD)")
    return problems


#: The keys each setup action takes besides its own.
_SETUP_KEYS: dict[str, frozenset[str]] = {
    "file": frozenset({"content", "mode"}), "dir": frozenset({"mode"}),
    "hardlink": frozenset({"to"}), "symlink": frozenset({"to"}),
    "chmod": frozenset({"mode"}), "pass_fd": frozenset({"access", "fd"}),
}
#: The descriptor number of the first pass_fd step without one (then the next, ...).
FIRST_FD = 7


def _in_root(path: str) -> bool:
    """Whether a setup path names an entry inside the throwaway root (by its placeholders)."""
    start = next((r for r in placeholders.SETUP_ROOTS if path == r or path.startswith(r + "/")), None)
    return start is not None and ".." not in path.split("/") \
        and not (placeholders.names(path[len(start):]) - {"token"})


def _setup_fds(steps: Any) -> list[int]:
    """The descriptor numbers of a setup list's pass_fd steps (given, else FIRST_FD onwards)."""
    out: list[int] = []
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict) and "pass_fd" in step:
            n = step.get("fd")
            out.append(n if isinstance(n, int) and not isinstance(n, bool) else
                       max([FIRST_FD - 1, *out]) + 1)
    return out


def _setup_problems(steps: Any) -> list[tuple[Path_, str]]:
    """What is wrong in a setup list beyond its schema: one action a step, keys that fit it,
    paths inside the root, known placeholders, distinct descriptors."""
    out: list[tuple[Path_, str]] = []
    seen_fds: set[int] = set()
    for j, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        actions = [a for a in SETUP_ACTIONS if a in step]
        if len(actions) != 1:
            out.append(((j,), f"a setup step takes exactly one of: {', '.join(SETUP_ACTIONS)}"
                              + (f" (found {', '.join(actions)})" if actions else "")))
            continue
        action = actions[0]
        for key in sorted(set(step) - {action} - _SETUP_KEYS[action]):
            if key in {k for ks in _SETUP_KEYS.values() for k in ks}:
                out.append(((j, key), f"{action} takes no {key!r}"
                                      f"{' (only ' + ', '.join(sorted(_SETUP_KEYS[action])) + ')' if _SETUP_KEYS[action] else ''}"))
        path = step[action]
        if isinstance(path, str) and not _in_root(path):
            out.append(((j, action), f"{path!r}: setup acts only inside the throwaway root: start it with "
                                     f"{', '.join(placeholders.SETUP_ROOTS)} (no '..')"))
        if action in ("hardlink", "symlink") and "to" not in step:
            out.append(((j,), f"{action} needs 'to' (" + ("the existing file inside the root)" if action == "hardlink"
                                                           else "the link's target text)")))
        to = step.get("to")
        if action == "hardlink" and isinstance(to, str) and not _in_root(to):
            out.append(((j, "to"), f"{to!r}: both ends of a hard link are inside the throwaway root: start it "
                                   f"with {', '.join(placeholders.SETUP_ROOTS)} (no '..')"))
        if action == "chmod" and "mode" not in step:
            out.append(((j,), "chmod needs 'mode' (e.g. \"0600\")"))
        for key in ("content", "to"):
            text = step.get(key)
            if isinstance(text, str):
                for name in sorted(placeholders.names(text) - placeholders.MATRIX_PLACEHOLDERS):
                    out.append(((j, key), f"unknown placeholder {{{name}}}"
                                          f"{suggest(name, placeholders.MATRIX_PLACEHOLDERS)}"))
        if action == "pass_fd":
            n = _setup_fds(steps[:j + 1])[-1]
            if n in seen_fds:
                out.append(((j, "fd") if "fd" in step else (j,), f"descriptor {n} is passed twice"))
            seen_fds.add(n)
    return out


def _setup(raw: list[dict[str, Any]] | None, ln: Lines, base: Path_) -> tuple[SetupStep, ...]:
    """Setup steps from validated YAML data."""
    steps = raw or []
    fds = iter(_setup_fds(steps))
    out = []
    for j, step in enumerate(steps):
        action = next(a for a in SETUP_ACTIONS if a in step)
        mode = step.get("mode")
        out.append(SetupStep(action=action, path=step[action], to=step.get("to"),
                             content=step.get("content", ""), mode=int(mode, 8) if mode else None,
                             access=step.get("access", "read"),
                             fd=next(fds) if action == "pass_fd" else None, line=ln.line(base + (j,))))
    return tuple(out)


def _label_problems(raw: list[Any], kind: Any) -> list[tuple[Path_, str]]:
    """Evidence labels that no canary of the root carries: such a check would pass whatever leaked."""
    from ..labels import LABELS, suggest  # imports the workspace: only for matrices that name labels

    if kind != "leak":
        return [((), f"labels only apply to leak evidence, not {kind!r}")]
    out: list[tuple[Path_, str]] = []
    for j, label in enumerate(raw):
        if isinstance(label, str) and label not in LABELS:
            close = suggest(label)
            hint = f"did you mean {close!r}?" if close else f"known: {', '.join(LABELS)}"
            out.append(((j,), f"{label!r} is not a label the workspace seeds; {hint}"))
    return out


#: Where a probe may write: inside the throwaway root, or a /tmp name carrying the check's token.
_WRITE_ROOTS = ("{root}", "{workspace}", "{home}", "{outside}", "{run}", "/proc/self/root{")


def _contained_path(path: str) -> bool:
    if path.startswith(_WRITE_ROOTS):
        return ".." not in path.split("/")
    if path.startswith(("/tmp/", "{tmp}/")):
        return "{token}" in path and ".." not in path.split("/")
    if path.startswith("/"):
        return False
    # Relative to the workspace: at most one level up stays inside the root.
    parts = path.split("/")
    ups = 0
    for i, part in enumerate(parts):
        if part == "..":
            ups += 1
            if ups > 1 or any(p not in ("..", ".") for p in parts[:i]):
                return False
    return True


def _containment(probe: str, args: dict[str, Any]) -> list[tuple[str, str]]:
    """Arguments that would make a probe act outside what the harness owns.

    A check runs for real wherever the sandbox does not stop it (and always in
    its unsandboxed control), so the matrix itself must keep probes inside
    the throwaway root and the harness's own sinks and processes.
    """
    out = []
    where = "probes act only inside the throwaway root"
    spec = PROBES.get(probe)
    if spec is None:
        return out
    for key in spec.contained:
        value = args.get(key)
        if isinstance(value, str) and value and not _contained_path(value):
            out.append((key, f"{value!r}: {where}: start it with {{workspace}}, {{home}}, {{outside}}, "
                             "{run} or {root} (or /tmp/...{token})"))
    for key, only, why in spec.fixed:
        if str(args.get(key, "")) != only:
            out.append((key, why))
    if spec.sink is not None:
        host_arg, port_arg, port = spec.sink
        host = str(args.get(host_arg, "127.0.0.1"))
        if host != "127.0.0.1":
            out.append((host_arg, f"{host!r}: network probes only reach the harness's sinks on 127.0.0.1"))
        if str(args.get(port_arg, "")) != port:
            out.append((port_arg, f"network probes only reach the harness's sinks: use port {port}"))
    if probe in ("http_get", "relay_get"):
        out += http_get_problems(args)
    return out


def parse_waivers(raw: list[dict[str, Any]], file: str, ln: Lines | None = None,
                  base: Path_ = ("waivers",)) -> tuple[Waiver, ...]:
    """Waivers from validated YAML data."""
    return tuple(Waiver(id=w["id"], reason=w["reason"], expires=w["expires"], target=w.get("target"),
                        source=file, line=ln.line(base + (i,)) if ln else 0)
                 for i, w in enumerate(raw or []))


def parse_matrix(text: str, file: str = "<matrix>") -> Matrix:
    """Parse and validate matrix text; raises MatrixError listing every problem."""
    node = compose(text, file)
    if node is None:
        raise MatrixError([Problem(file, 0, "", "the matrix is empty")])
    ln = Lines(file)
    data = ln.convert(node)
    problems = list(ln.problems)
    if not isinstance(data, dict):
        raise MatrixError(problems + [Problem(file, 1, "", "a matrix is a mapping with a 'checks' list")])
    from .schema import _matrix_schema

    problems += checked_schema_problems(data, ln, _matrix_schema(), _validator)
    problems += _semantic_problems(data, ln)
    conformed, conform_file = (), ""
    if isinstance(data.get("conform"), str):
        own = {c["id"] for c in data.get("checks") or [] if isinstance(c, dict) and isinstance(c.get("id"), str)}
        try:
            conformed = derived_checks(data["conform"], file, ln.line(("conform",)), own)
            conform_file = str(settings_file(data["conform"], file))
        except MatrixError as exc:
            problems += exc.problems
    elif "checks" not in data and "conform" not in data:
        # The schema's wording for a missing key: 'checks' may be left out only when 'conform' derives them.
        problems.append(Problem(file, 1, "", "missing required key 'checks'"))
    if problems:
        problems.sort(key=lambda p: (p.line, p.where))
        raise MatrixError(problems)
    defaults = data.get("defaults") or {}
    checks = []
    for i, raw in enumerate(data.get("checks") or []):
        args = dict(raw.get("args") or {})
        if raw.get("argv"):
            args["--"] = list(raw["argv"])
        first, last = ln.lines[("checks", i)]
        checks.append(Check(
            id=raw["id"], category=raw["category"], title=raw["title"], probe=raw["probe"],
            args=tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in args.items()),
            expect=raw["expect"], evidence=_evidence(raw.get("evidence"), raw["probe"]),
            severity=raw.get("severity", defaults.get("severity", "medium")),
            timeout=float(raw.get("timeout", defaults.get("timeout", DEFAULT_TIMEOUT))),
            skip=raw.get("skip"),
            tags=tuple(dict.fromkeys([*defaults.get("tags", []), *raw.get("tags", [])])),
            control="no_control" not in raw, control_reason=raw.get("no_control"),
            description=raw.get("description", ""), fix=raw.get("fix", ""),
            source=file, line=first, end_line=last, agent=parse_check_agent(raw["agent"]) if raw.get("agent") is not None else None,
            setup=_setup(raw.get("setup"), ln, ("checks", i, "setup")),
        ))
    return Matrix(name=data.get("name") or Path(file).stem, path=file, checks=(*checks, *conformed),
                  description=data.get("description", ""),
                  waivers=parse_waivers(data.get("waivers") or [], file, ln), conform=conform_file)


def load_matrix(path: str | Path) -> Matrix:
    """Load a matrix file; raises MatrixError (with file and line) on any problem."""
    return parse_matrix(read_text(path, "matrix"), str(path))


_KEYWORDS = ("and", "or", "not")
