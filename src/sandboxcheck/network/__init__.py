"""A network the harness owns: protocol sinks, names that resolve to them, a wrapper.

``sinks`` holds the loopback listeners that speak HTTP, TLS, CONNECT, SOCKS5
and DNS and record which check token reached them and how; ``world`` starts
them, writes the ``/etc/hosts`` and ``/etc/resolv.conf`` a target sees, and
wraps the target's command in a mount namespace where those files are bound.

Modules are imported by name (``network.world``, ``network.sinks``,
``network.contain``): the matrix loader needs ``contain`` alone.
"""
