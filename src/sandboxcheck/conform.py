"""Declared versus observed: read a sandbox's own settings, derive checks from them, say which rules held.

A settings file (srt's JSON, Claude Code's ``sandbox.*`` / ``permissions.*``
JSON, Codex's ``config.toml``) becomes a ``Policy``: the paths and domains it
declares, each with where it was declared. ``derive`` turns every declared
rule, plus a few the policy implies (a domain in neither list, a path no rule
names, the files srt always protects), into a ``Rule`` with the expectation
the policy gives it and, where the harness can test it, a check of a
generated matrix. After the run, ``judge_rules`` reports each rule as
honoured, violated, or could not test (and why).

Only what the harness owns is ever touched: a path is tested when it lies in
the throwaway root (``~`` is the fake home, ``.`` the workspace, or a
``{home}`` / ``{workspace}`` placeholder), a domain when it is under
``sandboxcheck.test``. Anything else is reported as not testable, never guessed.
"""
from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .model import RunReport, Status
from .network.contain import DOMAIN
from .run.workspace import SEEDED_FILES

VERDICTS = ("honoured", "violated", "could not test")
_ROOTS = ("{workspace}", "{home}", "{outside}", "{root}")
#: Files srt (and Claude Code's sandbox, built on it) always keeps read-only, on Linux when they exist.
SRT_PROTECTED = ("{workspace}/.git/config", "{workspace}/.git/hooks/pre-commit", "{workspace}/.bashrc")


class PolicyError(ValueError):
    """A settings file that cannot be read as any known sandbox's policy."""


@dataclass(frozen=True, slots=True)
class Declared:
    """One value of a settings file and where it was declared (``filesystem.denyRead[0]``)."""

    value: str
    where: str


@dataclass(frozen=True, slots=True)
class Policy:
    """What a sandbox's settings declare, in srt's terms.

    ``network`` is ``allowlist`` (only ``allowed_domains``, minus
    ``denied_domains``), ``all`` or ``none``. ``srt_settings`` is the srt
    settings mapping that enforces this policy (for srt and Claude Code, whose
    sandbox is srt), None when the policy is not srt's (Codex).
    """

    source: str
    deny_read: tuple[Declared, ...] = ()
    allow_read: tuple[Declared, ...] = ()
    allow_write: tuple[Declared, ...] = ()
    deny_write: tuple[Declared, ...] = ()
    allowed_domains: tuple[Declared, ...] = ()
    denied_domains: tuple[Declared, ...] = ()
    network: str = "allowlist"
    notes: tuple[str, ...] = ()
    srt_settings: dict[str, Any] | None = field(default=None, hash=False)


@dataclass(frozen=True, slots=True)
class Rule:
    """A declared (or implied) rule, its expectation, and the check testing it (or why none can)."""

    id: str
    kind: str
    subject: str
    declared: str
    expect: str
    check: dict[str, Any] | None = field(default=None, hash=False)
    untestable: str | None = None


@dataclass(frozen=True, slots=True)
class RuleResult:
    """A rule and what was observed."""

    rule: Rule
    verdict: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {"id": self.rule.id, "kind": self.rule.kind, "subject": self.rule.subject,
                "declared": self.rule.declared, "expect": self.rule.expect, "verdict": self.verdict,
                "detail": self.detail}


# -- reading settings ---------------------------------------------------------
def _strings(value: Any, where: str) -> tuple[Declared, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: expected a list of strings")
    return tuple(Declared(v, f"{where}[{i}]") for i, v in enumerate(value))


def _srt_policy(data: dict[str, Any], source: str, prefix: str = "") -> Policy:
    net = {} if data.get("network") is None else data["network"]
    fs = {} if data.get("filesystem") is None else data["filesystem"]
    if not isinstance(net, dict) or not isinstance(fs, dict):
        raise PolicyError(f"{prefix}network and {prefix}filesystem must be mappings")
    return Policy(
        source=source,
        deny_read=_strings(fs.get("denyRead"), f"{prefix}filesystem.denyRead"),
        allow_read=_strings(fs.get("allowRead"), f"{prefix}filesystem.allowRead"),
        allow_write=_strings(fs.get("allowWrite"), f"{prefix}filesystem.allowWrite"),
        deny_write=_strings(fs.get("denyWrite"), f"{prefix}filesystem.denyWrite"),
        allowed_domains=_strings(net.get("allowedDomains"), f"{prefix}network.allowedDomains"),
        denied_domains=_strings(net.get("deniedDomains"), f"{prefix}network.deniedDomains"),
        srt_settings={"network": dict(net), "filesystem": dict(fs)})


_TOOL_RULE = re.compile(r"^(Read|Edit|Write|WebFetch)\((.*)\)$")


def _claude_policy(data: dict[str, Any]) -> Policy:
    """Claude Code: ``sandbox.filesystem`` / ``sandbox.network`` as srt's, plus ``permissions`` rules
    that its sandbox turns into srt rules: Read(path) denies reads, Edit(path) allows or denies
    writes, WebFetch(domain:NAME) allows or denies a domain."""
    sandbox = data.get("sandbox") or {}
    if not isinstance(sandbox, dict):
        raise PolicyError("sandbox must be a mapping")
    base = _srt_policy({"network": sandbox.get("network") or {}, "filesystem": sandbox.get("filesystem") or {}},
                       "claude-code", "sandbox.")
    extra: dict[str, list[Declared]] = {k: [] for k in ("deny_read", "allow_write", "deny_write",
                                                        "allowed_domains", "denied_domains")}
    perms = data.get("permissions") or {}
    notes = []
    for mode in ("allow", "deny"):
        for i, entry in enumerate(perms.get(mode) or []):
            m = _TOOL_RULE.match(str(entry))
            where = f"permissions.{mode}[{i}]: {entry}"
            if not m:
                continue
            tool, arg = m.groups()
            if tool == "WebFetch" and arg.startswith("domain:"):
                key = "allowed_domains" if mode == "allow" else "denied_domains"
                extra[key].append(Declared(arg[len("domain:"):], where))
            elif tool == "Read" and mode == "deny":
                extra["deny_read"].append(Declared(arg, where))
            elif tool in ("Edit", "Write"):
                extra["allow_write" if mode == "allow" else "deny_write"].append(Declared(arg, where))
            else:
                notes.append(f"{where}: no sandbox rule follows from it")
    if sandbox.get("enabled") is not True:
        notes.append("sandbox.enabled is not true: Claude Code runs commands unsandboxed")
    net = dict((base.srt_settings or {}).get("network") or {})
    fs = dict((base.srt_settings or {}).get("filesystem") or {})
    for key, srt_key, table in (("allowed_domains", "allowedDomains", net), ("denied_domains", "deniedDomains", net),
                                ("deny_read", "denyRead", fs), ("allow_write", "allowWrite", fs),
                                ("deny_write", "denyWrite", fs)):
        table[srt_key] = [*table.get(srt_key, []), *(d.value for d in extra[key])]
    # Claude Code always lets its sandbox write the working folder.
    fs["allowWrite"] = [".", *fs.get("allowWrite", [])]
    return Policy(
        source="claude-code", deny_read=base.deny_read + tuple(extra["deny_read"]), allow_read=base.allow_read,
        allow_write=(Declared(".", "Claude Code's sandbox: the working folder is writable"),)
        + base.allow_write + tuple(extra["allow_write"]),
        deny_write=base.deny_write + tuple(extra["deny_write"]),
        allowed_domains=base.allowed_domains + tuple(extra["allowed_domains"]),
        denied_domains=base.denied_domains + tuple(extra["denied_domains"]),
        notes=tuple(notes), srt_settings={"network": net, "filesystem": fs})


def _codex_policy(data: dict[str, Any]) -> Policy:
    mode = data.get("sandbox_mode", "read-only")
    ww = data.get("sandbox_workspace_write") or {}
    where = f"sandbox_mode = {mode!r}"
    if mode == "danger-full-access":
        return Policy(source="codex", allow_write=(Declared("{outside}", where),), network="all",
                      notes=("danger-full-access: no sandbox at all",))
    if mode == "read-only":
        return Policy(source="codex", network="none",
                      notes=("read-only: no writes anywhere, no network",))
    if mode != "workspace-write":
        raise PolicyError(f"sandbox_mode {mode!r} is not one of read-only, workspace-write, danger-full-access")
    writes = [Declared(".", where)]
    writes += [Declared(p, f"sandbox_workspace_write.writable_roots[{i}]")
               for i, p in enumerate(ww.get("writable_roots") or [])]
    if not (ww.get("exclude_slash_tmp") is True and ww.get("exclude_tmpdir_env_var") is True):
        # /tmp and $TMPDIR stay writable unless both are excluded, and the throwaway root lies there.
        writes.append(Declared("{root}", "sandbox_workspace_write: /tmp and $TMPDIR writable "
                               "(exclude_slash_tmp and exclude_tmpdir_env_var not both true)"))
    network = "all" if ww.get("network_access") is True else "none"
    return Policy(source="codex", allow_write=tuple(writes), network=network,
                  notes=("Codex has no domain allowlist: network_access is all or nothing",))


def parse_settings(text: str, name: str = "settings") -> Policy:
    """The policy of a settings file: srt JSON, Claude Code JSON or Codex TOML (told apart by content)."""
    if name.endswith(".toml"):
        try:
            return _codex_policy(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"{name}: not TOML: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{name}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{name}: the settings must be a JSON object")
    if "sandbox" in data or "permissions" in data:
        return _claude_policy(data)
    if "network" in data or "filesystem" in data:
        return _srt_policy(data, "srt")
    raise PolicyError(f"{name}: neither srt settings (network, filesystem) nor Claude Code settings "
                      "(sandbox, permissions)")


def load_settings(path: str | Path) -> Policy:
    """``parse_settings`` of a file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise PolicyError(f"{path}: {exc.strerror}") from None
    return parse_settings(text, p.name)


# -- deriving rules -----------------------------------------------------------
def path_template(path: str) -> str | None:
    """``path`` as a template inside the throwaway root, or None when it lies outside it or is a glob."""
    p = re.sub(r"/\*\*?$", "", path.strip())
    if any(c in p for c in "*?["):
        return None
    if p.startswith(_ROOTS):
        out = p
    elif p == "~" or p.startswith("~/"):
        out = "{home}" + p[1:]
    elif p.startswith("/"):
        return None
    else:
        rel = p[2:] if p.startswith("./") else "" if p == "." else p
        out = "{workspace}" + ("/" + rel if rel else "")
    out = out.rstrip("/")
    return None if ".." in out.split("/") else out


def _canon(path: str) -> str:
    # The root's folders spelled through {root}, so that {outside}/x lies under {root}.
    for name in ("workspace", "home", "outside"):
        if path == "{" + name + "}" or path.startswith("{" + name + "}/"):
            return "{root}/" + name + path[len(name) + 2:]
    return path


def _under(path: str, base: str) -> bool:
    path, base = _canon(path), _canon(base)
    return path == base or path.startswith(base.rstrip("/") + "/")


#: The port of a ``host:port`` entry: digits, or the harness's own ``{net_port}`` (a settings file may name it).
_PORT = re.compile(r"^(?P<host>[^:\[\]]+):(?P<port>\d{1,5}|\{net_port\})$")


def split_port(entry: str) -> tuple[str, str | None]:
    """``host:port`` as (host, port); an entry without a port (or an IPv6 literal) as (entry, None)."""
    m = _PORT.match(entry)
    return (m["host"], m["port"]) if m else (entry, None)


def _host_matches(pattern: str, host: str, port: str | None = None) -> bool:
    # An entry with a port matches that port only; one without matches every port (srt's rule).
    name, scoped = split_port(pattern)
    if scoped is not None and port is not None and scoped != port:
        return False
    pat, h = name.lower().rstrip("."), host.lower().rstrip(".")
    if pat.startswith("*."):
        return h.endswith(pat[1:])
    return h == pat


def domain_expectation(policy: Policy, host: str, port: str | None = None) -> str:
    """``allowed`` or ``denied``, as the policy decides for ``host`` (on ``port``, when given)."""
    if policy.network == "all":
        return "allowed"
    if policy.network == "none":
        return "denied"
    if any(_host_matches(d.value, host, port) for d in policy.denied_domains):
        return "denied"
    return "allowed" if any(_host_matches(d.value, host, port) for d in policy.allowed_domains) else "denied"


def _templates(items: tuple[Declared, ...]) -> list[str]:
    return [t for t in (path_template(d.value) for d in items) if t]


def read_expectation(policy: Policy, path: str) -> str:
    """Reads are allowed unless a denyRead covers the path and no allowRead re-allows it (srt's rule)."""
    denied = any(_under(path, d) for d in _templates(policy.deny_read))
    return "denied" if denied and not any(_under(path, a) for a in _templates(policy.allow_read)) else "allowed"


def write_expectation(policy: Policy, path: str) -> str:
    """Writes are denied unless an allowWrite covers the path and no denyWrite does (srt's rule)."""
    if any(_under(path, d) for d in _templates(policy.deny_write)):
        return "denied"
    return "allowed" if any(_under(path, a) for a in _templates(policy.allow_write)) else "denied"


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower().replace("{", "").replace("}", "")).strip("-")
    return s[:48] or "root"


def seeded_file(path: str) -> bool:
    """Whether ``path`` (a template) names a file every throwaway root holds (~/.bashrc, ./.env, ...)."""
    root, _, rest = path.partition("/")
    folder = {"{workspace}": "workspace", "{home}": "home", "{outside}": "outside"}.get(root)
    return folder is not None and f"{folder}/{rest}" in SEEDED_FILES


def _read_check(path: str) -> dict[str, Any]:
    # A rule naming a file is tested on that file, not on a file inside it (ENOTDIR: proves nothing).
    file = path if seeded_file(path) else f"{path}/conform-read.txt"
    return {"category": "fs-read", "probe": "read_file", "args": {"path": file},
            "setup": [{"file": file, "content": "SCNRY-{token}-conform\n"}]}


def _write_check(path: str, existing: bool = False) -> dict[str, Any]:
    file = path if existing else f"{path}/conform-write.txt"
    setup = ([{"file": file, "content": "# sandboxcheck\n"}] if existing
             else [] if path == "{root}" else [{"dir": path}])
    check = {"category": "tamper" if existing else "fs-write", "probe": "write_file",
             "args": {"path": file, "content": "conform {token}"},
             "evidence": {"kind": "file", "path": file, "contains": "{token}"}}
    return {**check, "setup": setup} if setup else check


def _domain_check(host: str, port: str = "{net_port}") -> dict[str, Any]:
    return {"category": "network", "probe": "http_get", "args": {"url": f"http://{host}:{port}/{{token}}"}}


def _test_host(pattern: str) -> str | None:
    host = ("conform." + pattern[2:]) if pattern.startswith("*.") else pattern
    h = host.lower().rstrip(".")
    return host if h == DOMAIN or h.endswith("." + DOMAIN) else None


def derive(policy: Policy) -> list[Rule]:
    """Every rule the policy declares or implies, with its expectation and check (or why none)."""
    rules: list[Rule] = []
    seen: set[str] = set()

    def add(kind: str, subject: str, declared: str, expect: str, check: dict[str, Any] | None,
            untestable: str | None = None) -> None:
        # Paths are named by where they lie in the root (~/.ssh: home-ssh, .: workspace).
        named = subject if kind.endswith(("domain", "port")) else path_template(subject) or subject
        base = f"conform.{kind}.{_slug(named)}"
        rid, n = base, 2
        while rid in seen:
            rid, n = f"{base}-{n}", n + 1
        seen.add(rid)
        rules.append(Rule(rid, kind, subject, declared, expect, check, untestable))

    outside = ("path outside the throwaway root (or a glob): the harness plants canaries only in the "
               "workspace, the fake home and the outside folder; write it as ~/..., ./... or {home}/...")
    for kind, items in (("deny-read", policy.deny_read), ("allow-read", policy.allow_read)):
        for d in items:
            t = path_template(d.value)
            add(kind, d.value, d.where, read_expectation(policy, t) if t else "denied" if kind == "deny-read"
                else "allowed", _read_check(t) if t else None, None if t else outside)
    for kind, items in (("allow-write", policy.allow_write), ("deny-write", policy.deny_write)):
        for d in items:
            t = path_template(d.value)
            add(kind, d.value, d.where, write_expectation(policy, t) if t else "allowed" if kind == "allow-write"
                else "denied", _write_check(t, existing=seeded_file(t)) if t else None, None if t else outside)
    add("default-read", "{outside}", "no rule names it: reads follow the default",
        read_expectation(policy, "{outside}"), _read_check("{outside}"))
    add("default-write", "{outside}", "no rule names it: writes follow the default",
        write_expectation(policy, "{outside}"), _write_check("{outside}"))
    if policy.source in ("srt", "claude-code"):
        for path in SRT_PROTECTED:
            add("protected", path, "always read-only in srt (vendor documentation), when the file exists",
                "denied", _write_check(path, existing=True))
    not_ours = f"not a name under {DOMAIN}: the harness never addresses a name it does not own"
    for kind, items in (("allow-domain", policy.allowed_domains), ("deny-domain", policy.denied_domains)):
        for d in items:
            name, port = split_port(d.value)
            host = _test_host(name)
            if host and port not in (None, "{net_port}"):
                add(kind, d.value, d.where, domain_expectation(policy, host, port), None,
                    f"port {port}: the harness's sinks listen on {{net_port}}; write {name}:{{net_port}} to test it")
            else:
                add(kind, d.value, d.where, domain_expectation(policy, host or name, "{net_port}"),
                    _domain_check(host) if host else None, None if host else not_ours)
            if host and port is not None and kind == "allow-domain":
                # A port-scoped entry leaves the host's other ports to the default.
                add("other-port", f"{host}:{{net_alt_port}}", f"{d.where}: {d.value} names port {port} only",
                    domain_expectation(policy, host, "{net_alt_port}"), _domain_check(host, "{net_alt_port}"))
    unlisted = f"unlisted.conform.{DOMAIN}"
    add("unlisted-domain", unlisted, f"in no list (network: {policy.network})",
        domain_expectation(policy, unlisted), _domain_check(unlisted))
    return rules


def matrix_text(policy: Policy, rules: list[Rule], source: str) -> str:
    """A matrix with one check per testable rule."""
    checks = []
    for r in rules:
        if r.check is None:
            continue
        checks.append({"id": r.id, "title": f"{r.kind} {r.subject} ({r.declared})", **r.check,
                       "expect": r.expect, "severity": "high"})
    doc = {"version": 1, "name": "conform",
           "description": f"Checks derived from {source} ({policy.source} settings)", "checks": checks}
    return yaml.safe_dump(doc, sort_keys=False, width=200)


def run_settings(policy: Policy, allow_addresses: tuple[str, ...] = ("{net_allowed_ip}", "{net_other_ip}")
                 ) -> dict[str, Any] | None:
    """The srt settings to run the policy with: as declared, plus the harness's sink addresses on a
    non-empty allowlist (srt >= 0.0.76 refuses a name resolving to loopback unless its address is
    allowed; the derived checks never address those literals)."""
    if policy.srt_settings is None:
        return None
    settings = json.loads(json.dumps(policy.srt_settings))
    net = settings.setdefault("network", {})
    if net.get("allowedDomains"):
        net["allowedDomains"] = [*net["allowedDomains"], *allow_addresses]
    return settings


def judge_rules(rules: list[Rule], report: RunReport | None) -> list[RuleResult]:
    """Each rule's verdict from the run's results."""
    results = {r.id: r for r in report.results} if report else {}
    out = []
    for rule in rules:
        if rule.untestable:
            out.append(RuleResult(rule, "could not test", rule.untestable))
            continue
        res = results.get(rule.id)
        if res is None:
            out.append(RuleResult(rule, "could not test", "not run"))
        elif res.status is Status.PASS:
            out.append(RuleResult(rule, "honoured", res.reason))
        elif res.status is Status.FAIL:
            out.append(RuleResult(rule, "violated", res.reason))
        else:
            out.append(RuleResult(rule, "could not test", res.reason))
    return out


# -- running ------------------------------------------------------------------
#: Targets whose settings file the harness can replace with the derived one.
SRT_TARGETS = ("srt", "srt-settings", "srt-net")


@dataclass(frozen=True, slots=True)
class ConformReport:
    """The outcome of ``conform``: each rule's verdict, and what the run could not apply."""

    settings: str
    source: str
    target: str
    notes: tuple[str, ...]
    results: tuple[RuleResult, ...]

    def exit_code(self) -> int:
        """1 when a declared rule was violated, else 0."""
        return 1 if any(r.verdict == "violated" for r in self.results) else 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        counts = {v: sum(r.verdict == v for r in self.results) for v in VERDICTS}
        return {"schema_version": 1, "command": "conform", "settings": self.settings, "source": self.source,
                "target": self.target, "notes": list(self.notes), "counts": counts,
                "rules": [r.to_dict() for r in self.results]}


def srt_target_file(folder: Path, target_ref: str, settings: dict[str, Any]) -> str:
    """A target file running srt (the release ``target_ref`` names) with the derived settings."""
    from .targets.pinning import split_ref
    from .resources import presets_dir

    name, version = split_ref(target_ref)
    data = yaml.safe_load((presets_dir() / "srt-settings.yaml").read_text())
    data["name"] = f"{name}-conform"
    data["description"] = "srt with the settings under test (derived by sandboxcheck conform)"
    data["options"] = {"settings": "{root}/conform-settings.json"}
    data["files"] = {"{root}/conform-settings.json": json.dumps(settings)}
    path = folder / "srt-conform.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return f"{path}@{version}" if version else str(path)


def conform(settings_path: str, target_ref: str, options: Any = None) -> ConformReport:
    """Derive checks from ``settings_path`` and run them against ``target_ref``.

    An srt target (srt, srt-settings, srt-net, at any release) runs with the
    derived settings; any other target runs with its own configuration, and the
    report says so.
    """
    import dataclasses
    import tempfile

    from .matrix.load import parse_matrix
    from .run.options import RunOptions
    from .run.schedule import run_matrix
    from .targets.base import TargetError
    from .targets.pinning import split_ref
    from .targets.registry import load_target

    policy = load_settings(settings_path)
    rules = derive(policy)
    matrix = parse_matrix(matrix_text(policy, rules, settings_path), "<conform>")
    notes = list(policy.notes)
    with tempfile.TemporaryDirectory(prefix="sandboxcheck-conform-") as folder:
        settings = run_settings(policy)
        if split_ref(target_ref)[0] in SRT_TARGETS and settings is not None:
            target = load_target(srt_target_file(Path(folder), target_ref, settings))
            if settings != policy.srt_settings:
                notes.append("the harness's two sink addresses were appended to network.allowedDomains "
                             "(srt >= 0.0.76 refuses names resolving to loopback otherwise); no check addresses them")
        else:
            # An agent target takes the settings as its own (Claude Code: settings, Codex: config).
            option = {"claude-code": "settings", "codex": "config"}.get(policy.source)
            try:
                target = load_target(target_ref, {option: str(Path(settings_path).resolve())}) if option else None
            except TargetError:
                target = None
            if target is None:
                target = load_target(target_ref)
                notes.append(f"target {target.name!r} runs with its own configuration: the settings file was read, "
                             "not applied")
            else:
                notes.append(f"target {target.name!r} runs with the settings file as its {option}")
        # One process per check: a long-lived agent session cannot be moved into the harness's network.
        options = dataclasses.replace(options or RunOptions(), sessions=False)
        why = target.unavailable()
        if why:
            return ConformReport(settings_path, policy.source, target.name, (*notes, f"target unavailable: {why}"),
                                 tuple(RuleResult(r, "could not test", r.untestable or f"target unavailable: {why}")
                                       for r in rules))
        report = run_matrix(matrix, target, options) if matrix.checks else None
    return ConformReport(settings_path, policy.source, target.name, tuple(notes),
                         tuple(judge_rules(rules, report)))


def format_table(report: ConformReport) -> str:
    """One line per rule, grouped by verdict order of declaration."""
    lines = [f"conform {report.settings} ({report.source} settings) on {report.target}"]
    lines += [f"note: {n}" for n in report.notes]
    width = max((len(r.rule.subject) for r in report.results), default=10)
    for r in report.results:
        lines.append(f"  {r.verdict:<15} {r.rule.kind:<16} {r.rule.subject:<{width}}  expect {r.rule.expect:<8} "
                     f"{r.rule.declared}")
        if r.verdict != "honoured":
            lines.append(f"  {'':<15} {r.detail}")
    counts = report.to_dict()["counts"]
    lines.append(", ".join(f"{n} {v}" for v, n in counts.items()))
    return "\n".join(lines)
