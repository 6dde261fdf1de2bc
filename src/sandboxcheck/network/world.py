"""The harness's own network: loopback addresses, names under its test domain, a mount-namespace wrapper.

The target, and every helper it starts outside its own sandbox (srt's
proxies, for one), runs inside a mount namespace of the harness where
``/etc/hosts``, ``/etc/resolv.conf`` and ``/etc/nsswitch.conf`` are files of
this folder bound over the originals. Names under ``sandboxcheck.test`` then
resolve to the harness's sinks for everyone in there, and the host's files,
resolver and firewall are never touched. Should a bind fail, the target does
not start (the names would otherwise go to the host's resolver).
"""
from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psutil

from .sinks import DOMAIN, NetHit, ProtocolSinks

#: Placeholders a check or a target file can use once the network is up.
NET_PLACEHOLDERS: frozenset[str] = frozenset({
    "net_port", "net_alt_port", "net_allowed_ip", "net_other_ip", "net_dns_ip", "net_domain"})
#: Sink names (``evidence: {kind: sink, sink: ...}``) served by this network.
NET_SINKS: frozenset[str] = frozenset({"web", "resolver"})
#: Names the hosts file carries (the DNS sink answers the same and any other name under the domain).
ALLOWED_NAMES = ("allowed", "www.allowed", "wild.allowed")
OTHER_NAMES = ("denied", "other", "evilallowed", "evil", "egress")

_WRAP = ('set -e; mount --bind "$1" /etc/hosts; mount --bind "$2" /etc/resolv.conf; '
         'mount --bind "$3" /etc/nsswitch.conf; shift 3; exec "$@"')


class NetworkUnavailable(Exception):
    """The harness cannot build its network here (the reason is the message)."""


def _loopback_base() -> str:
    # A random 127.x.y.0/24 per run: runs side by side never share an address.
    return f"127.{secrets.randbelow(250) + 2}.{secrets.randbelow(254) + 1}"


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class OwnedNetwork:
    """Protocol sinks on loopback addresses of the harness, the files naming them, and the wrapper."""

    def __init__(self, parent: str | None = None) -> None:
        """Start the sinks and write the name files into a new folder under ``parent`` (a run's folder,
        so that a harness killed outright leaves nothing its successor does not remove)."""
        self.unavailable_reason = self._probe_wrapper()
        if self.unavailable_reason:
            raise NetworkUnavailable(self.unavailable_reason)
        base = _loopback_base()
        self.allowed_ip, self.other_ip, self.dns_ip = f"{base}.1", f"{base}.2", f"{base}.53"
        addresses = {"allowed": self.allowed_ip, "other": self.other_ip}
        if _ipv6_loopback():
            addresses["ipv6"] = "::1"
        self.folder = Path(tempfile.mkdtemp(prefix="sandboxcheck-net-", dir=parent))
        try:
            self.sinks = ProtocolSinks(addresses, self.folder, dns=self.dns_ip, resolve=self.resolve,
                                       attribute=peer_process)
            self._write_files()
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    @staticmethod
    def _probe_wrapper() -> str | None:
        unshare = shutil.which("unshare")
        if unshare is None:
            return "unshare not found on PATH: apt-get install util-linux"
        argv = [unshare, "--mount", "--propagation", "private", "true"]
        if os.geteuid() != 0:
            argv[1:1] = ["--user", "--map-root-user"]
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=10, check=False)
        if done.returncode != 0:
            return f"cannot create a mount namespace: {done.stderr.decode(errors='replace').strip()[:200]}"
        return None

    def resolve(self, name: str) -> str | None:
        """The address a name under the test domain resolves to (None: not one of the harness's)."""
        n = name.lower().rstrip(".")
        if n == f"allowed.{DOMAIN}" or n.endswith(f".allowed.{DOMAIN}"):
            return self.allowed_ip
        if n.endswith("." + DOMAIN):
            return self.other_ip
        return None

    def _write_files(self) -> None:
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
        lines += [f"{self.allowed_ip} " + " ".join(f"{n}.{DOMAIN}" for n in ALLOWED_NAMES)]
        lines += [f"{self.other_ip} " + " ".join(f"{n}.{DOMAIN}" for n in OTHER_NAMES)]
        (self.folder / "hosts").write_text("\n".join(lines) + "\n")
        (self.folder / "resolv.conf").write_text(f"nameserver {self.dns_ip}\noptions timeout:1 attempts:1\n")
        try:
            host_nss = Path("/etc/nsswitch.conf").read_text().splitlines()
        except OSError:
            host_nss = []
        # Only files and DNS (this folder's resolv.conf): no module that asks another resolver.
        nss = [line for line in host_nss if not line.strip().startswith("hosts:")] + ["hosts: files dns"]
        (self.folder / "nsswitch.conf").write_text("\n".join(nss) + "\n")

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the harness's mount namespace with its name files bound."""
        unshare = shutil.which("unshare") or "unshare"
        outer = [unshare, "--mount", "--propagation", "private"]
        if os.geteuid() != 0:
            outer[1:1] = ["--user", "--map-root-user"]
        return [*outer, "--", "/bin/sh", "-c", _WRAP, "sandboxcheck-net",
                str(self.folder / "hosts"), str(self.folder / "resolv.conf"),
                str(self.folder / "nsswitch.conf"), *argv]

    def values(self) -> dict[str, str]:
        """Placeholder values for checks and target files."""
        return {"net_port": str(self.sinks.web_port), "net_alt_port": str(self.sinks.alt_port), "net_allowed_ip": self.allowed_ip,
                "net_other_ip": self.other_ip, "net_dns_ip": self.dns_ip, "net_domain": DOMAIN}

    def problems(self) -> list[str]:
        """What of the network is missing here (the DNS sink needs port 53 on loopback)."""
        out = []
        if self.sinks.dns_problem:
            out.append(self.sinks.dns_problem)
        if self.sinks.cert is None:
            out.append("openssl not found: the TLS layer records server names without a handshake")
        return out

    def cannot_observe(self, sink: str | None, args: list[str]) -> str | None:
        """Why a check with these evidence and arguments would see nothing whatever happened (None: it can)."""
        if sink == "resolver" and self.sinks.dns_address is None:
            return self.sinks.dns_problem or "no DNS sink"
        if self.sinks.cert is None and any(a.startswith("https://") for a in args):
            return "openssl not found: the web sink cannot complete TLS, so an https request's path never arrives"
        return None

    def hits(self, token: str, sink: str) -> list[NetHit]:
        """Hits carrying ``token`` at the ``web`` or ``resolver`` sink."""
        kind = "dns" if sink == "resolver" else sink
        self.sinks.settle()
        return [h for h in self.sinks.hits(token) if h.sink == kind]

    def forget(self, token: str) -> None:
        """Drop a judged check's hits."""
        self.sinks.forget(token)

    def close(self) -> None:
        """Stop the sinks and remove the folder."""
        self.sinks.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def harness_address(text: str) -> bool:
    """Whether ``text`` is an address the harness may send to: loopback only."""
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def peer_process(peer: str) -> str | None:
    """The name of the local process holding the TCP connection from ``peer`` (ip:port), if found."""
    host, _, port = peer.rpartition(":")
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.ip == host and conn.laddr.port == int(port) and conn.pid:
                return psutil.Process(conn.pid).name()
    except (psutil.Error, ValueError, OSError):
        return None
    return None
