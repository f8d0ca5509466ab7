"""Least privilege: which actions an agent may perform, and which hosts it may reach.

``[permissions] actions`` names the guarded actions the agent may perform:
any other is refused before anything of it happens, a duplicate included.
The actions of tools with an effect (``tool.NAME``) are judged by
``[permissions] tools`` instead, which names the tools a model may be offered
(``ctx.llm.run`` never shows it another).

``[permissions] hosts`` names the hosts ``ctx.http`` (and every client built
on it) may reach. An agent fed untrusted text (a web page, an email, a
model's reply) can be talked into sending what it holds somewhere else.
With ``hosts`` listed, any other host is refused before a connection is
made, redirects included (:class:`HostPolicy`).

Either refusal ends the run (the agent's ``except Exception`` cannot
swallow it). No list means no restriction.

Host entries are exact host names (``api.example.com``), a wildcard for the
subdomains of a name (``*.example.org``, which does not match
``example.org`` itself), or IP addresses and networks (``10.0.0.0/8``).
Loopback, private, link-local and reserved addresses are refused unless
listed: as addresses, or by exact name (``localhost``). A name allowed only
by a wildcard must not resolve to one: a DNS answer must not turn
``x.example.org`` into the metadata service.

The name is resolved for this check and again by the connection: a DNS
server that answers differently the second time (rebinding) is not caught
here. Name internal services by exact name or address, and keep wildcards
for domains whose DNS you trust.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import TYPE_CHECKING

from agentops.errors import PermissionDenied
from agentops.guards.base import Policy

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from agentops.guards.base import GuardedRun

__all__ = ["TOOL_ACTION", "HostPolicy", "PermissionPolicy"]

TOOL_ACTION = "tool."
"""The prefix of the guarded action of a tool with an effect: ``tool.NAME``."""


class PermissionPolicy(Policy):
    """``[permissions]``: an action or a host not listed stops the run."""

    name = "permissions"

    def __init__(self, run: GuardedRun) -> None:
        """No host judged yet in this run."""
        super().__init__(run)
        self._hosts: HostPolicy | None = None

    def admit_action(self, name: str) -> None:
        """Stop the run (:class:`~agentops.errors.PermissionDenied`) unless ``actions`` lists it."""
        run = self.run
        if name.startswith(TOOL_ACTION):
            allowed = run.permissions.tools if run.permissions else None
            if allowed is None or name.removeprefix(TOOL_ACTION) in allowed:
                return
        else:
            allowed = run.permissions.actions if run.permissions else None
        if allowed is not None and name not in allowed:
            run.log.warning("guard.denied", action=name, allowed=sorted(allowed))
            run.stop(
                PermissionDenied(
                    f"{run.agent}: action {name!r} is not allowed by [permissions] "
                    + ("tools" if name.startswith(TOOL_ACTION) else "actions"),
                    agent=run.agent,
                )
            )

    def admit_request(self, host: str) -> None:
        """Stop the run (:class:`~agentops.errors.PermissionDenied`) if ``hosts`` refuses it."""
        run = self.run
        if run.permissions is None or run.permissions.hosts is None:
            return
        if self._hosts is None:  # judged once per host and run
            self._hosts = HostPolicy(run.permissions.hosts)
        refusal = self._hosts.refusal(host)
        if refusal is not None:
            run.log.warning("guard.denied", host=host, reason=refusal)
            run.stop(PermissionDenied(f"{run.agent}: request refused: {refusal}", agent=run.agent))


_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _resolve(host: str) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []  # the request will fail to connect on its own
    return [str(info[4][0]) for info in infos]


class HostPolicy:
    """Decides whether a host may be reached."""

    def __init__(
        self, allowed: Iterable[str], *, resolve: Callable[[str], list[str]] = _resolve
    ) -> None:
        """The hosts in ``allowed`` (names, ``*.`` wildcards, addresses, networks)."""
        self.names: set[str] = set()
        self.suffixes: list[str] = []
        self.networks: list[_Network] = []
        for entry in (e.strip().lower().rstrip(".") for e in allowed):
            if entry.startswith("*."):
                self.suffixes.append(entry[1:])  # ".example.org"
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.names.add(entry)
        self._resolve = resolve
        self._verdicts: dict[str, str | None] = {}

    def refusal(self, host: str) -> str | None:
        """Why ``host`` may not be reached, or None if it may."""
        host = host.strip("[]").lower().rstrip(".")
        if host not in self._verdicts:
            self._verdicts[host] = self._judge(host)
        return self._verdicts[host]

    def _judge(self, host: str) -> str | None:
        try:
            address: _Address | None = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is not None:
            if self._listed(address):
                return None
            return f"{host} is not in [permissions] hosts"
        if host in self.names:  # the operator named it: its address is theirs to choose
            return None
        if not host.endswith(tuple(self.suffixes)):
            return f"{host} is not in [permissions] hosts"
        for found in self._resolve(host):
            resolved = ipaddress.ip_address(found.split("%")[0])
            if _internal(resolved) and not self._listed(resolved):
                return (
                    f"{host} resolves to {resolved}, an internal address not in [permissions] hosts"
                )
        return None

    def _listed(self, address: _Address) -> bool:
        return any(address in network for network in self.networks)


def _internal(address: _Address) -> bool:
    # Anything not on the public internet: loopback, private, shared (100.64/10),
    # link-local (the metadata service), reserved, and IPv4 behind an IPv6 form.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast
