"""Two network namespaces joined by a cable the test can cut: a host lost, as the network sees it.

A process started in the server's namespace (:meth:`Cable.server_side`)
listens on :attr:`Cable.server_ip`; one started in the host's namespace
(:meth:`Cable.host_side`) reaches it only through the cable (a veth pair).
:meth:`Cable.cut` takes the host's end of the cable down: from then on
nothing the server sends reaches the host, and nothing comes back, as
when a host loses its power or its network (no FIN, no RST). Needs root
and ``ip netns``; skips (fails under CI) without them. Unix sockets are
not namespaced: the test itself reaches a server by its socket's path.
"""

from __future__ import annotations

import os
import subprocess
import uuid

from system import ensure_tool, give_up

__all__ = ["Cable"]


class Cable:
    """Namespaces ``<name>-s`` (a server) and ``<name>-h`` (a host), on a /30 of their own."""

    def __init__(self) -> None:
        """Make both namespaces and the cable, its ends up."""
        if os.geteuid() != 0:
            give_up("network namespaces need root")
        self.ip = ensure_tool("ip", package="iproute2")
        tag = uuid.uuid4().hex[:8]
        self.server_ns, self.host_ns = f"ao{tag}s", f"ao{tag}h"
        subnet = int(tag[:4], 16) % 16000  # a /30 per cable: tests in parallel never share one
        base = f"10.{100 + subnet // 252 % 100}.{subnet % 252}"
        self.server_ip, self.host_ip = f"{base}.1", f"{base}.2"
        self._made: list[str] = []
        try:
            for ns in (self.server_ns, self.host_ns):
                self._ip("netns", "add", ns)
                self._made.append(ns)
                self._ip("-n", ns, "link", "set", "lo", "up")
            self._ip(
                "link", "add", f"v{tag}s", "netns", self.server_ns,
                "type", "veth", "peer", "name", f"v{tag}h", "netns", self.host_ns,
            )  # fmt: skip
            self._ends = {self.server_ns: f"v{tag}s", self.host_ns: f"v{tag}h"}
            for ns, ip in ((self.server_ns, self.server_ip), (self.host_ns, self.host_ip)):
                self._ip("-n", ns, "addr", "add", f"{ip}/30", "dev", self._ends[ns])
                self._ip("-n", ns, "link", "set", self._ends[ns], "up")
        except subprocess.CalledProcessError as exc:
            self.remove()
            give_up(f"no network namespaces here: {exc.stderr.strip()[-300:]}")

    def server_side(self, command: list[str]) -> list[str]:
        """``command`` run in the server's namespace."""
        return [self.ip, "netns", "exec", self.server_ns, *command]

    def host_side(self, command: list[str]) -> list[str]:
        """``command`` run in the host's namespace."""
        return [self.ip, "netns", "exec", self.host_ns, *command]

    def cut(self) -> None:
        """The host is lost: its end of the cable goes down, nothing crosses it any more."""
        self._ip("-n", self.host_ns, "link", "set", self._ends[self.host_ns], "down")

    def remove(self) -> None:
        """Remove both namespaces (and the cable with them); the processes in them live on."""
        for ns in self._made:
            subprocess.run([self.ip, "netns", "del", ns], capture_output=True, check=False)
        self._made = []

    def _ip(self, *args: str) -> None:
        subprocess.run([self.ip, *args], capture_output=True, text=True, check=True, timeout=60)
