"""Where a network probe of a matrix may go: names under the harness's test domain and its loopback sinks."""
from __future__ import annotations

from typing import Any

#: The harness's test domain (RFC 2606 ``.test``); kept here too so the matrix loader imports nothing else.
DOMAIN = "sandboxcheck.test"
#: Hosts a URL may name besides the test domain: the harness's own addresses and IPv6 loopback.
_HOSTS = ("{net_allowed_ip}", "{net_other_ip}", "{net_dns_ip}", "[::1]")


def _host_of(url: str) -> str | None:
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    netloc = rest.split("/", 1)[0].rpartition("@")[2]
    if netloc.startswith("["):
        return netloc.split("]", 1)[0] + "]"
    return netloc.partition(":")[0]


def url_problem(url: str) -> str | None:
    """Why ``url`` would leave what the harness owns (None when it does not)."""
    host = _host_of(url)
    if host is None:
        return f"{url!r}: not a URL (scheme://host:port/path)"
    h = host.lower().rstrip(".")
    if h in _HOSTS or h == DOMAIN or h.endswith("." + DOMAIN) or h.startswith("{token}."):
        if h.startswith("{token}.") and not h.endswith("." + DOMAIN):
            return f"{url!r}: a name must be under {DOMAIN}"
        return None
    return (f"{url!r}: network probes only reach the harness's own names (under {DOMAIN}) "
            "and addresses ({net_allowed_ip}, {net_other_ip}, [::1])")


def http_get_problems(args: dict[str, Any]) -> list[tuple[str, str]]:
    """Containment problems of an ``http_get`` check's arguments, as (argument, message)."""
    out = []
    for key in ("url", "proxy", "socks-fallback"):
        value = args.get(key)
        if isinstance(value, str) and value:
            why = url_problem(value)
            if why:
                out.append((key, why))
    name = args.get("socks-name")
    if isinstance(name, str) and name:
        # The name a proxy would act on is what precedes a NUL byte; both halves stay in the domain.
        for part in name.replace("%00", "\0").split("\0"):
            if part and url_problem(f"http://{part}/"):
                out.append(("socks-name", f"{name!r}: every part must be under {DOMAIN}"))
                break
    return out
