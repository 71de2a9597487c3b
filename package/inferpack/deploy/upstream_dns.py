"""The front's backends in a cluster: every address a DNS name resolves to, re-resolved often.

On Docker Swarm the replicas' service uses DNS round-robin (``endpoint_mode: dnsrr``) and
``tasks.SERVICE`` resolves to the replicas that are running and have passed their health
check; a replica being stopped leaves the list before it gets SIGTERM. The front on each node
asks every ``interval`` and spreads requests over the list, starting at the next replica each
time; a replica that refuses or drops a connection is tried past, as the front does on one host.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket

from inferpack.deploy.routes import Backend, Routes

log = logging.getLogger("inferpack.front")


class DnsUpstreams:
    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self.routes: Routes | None = None
        self._turn = itertools.count()

    @classmethod
    def parse(cls, upstream: str) -> DnsUpstreams:
        """``HOST:PORT``; ValueError otherwise."""
        name, _, port = upstream.rpartition(":")
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--upstream must be HOST:PORT, not {upstream!r}")
        return cls(name, int(port))

    async def resolve(self) -> None:
        """Re-resolves the name; a failed lookup keeps the last addresses known (their
        connections fail and are retried, which is no worse than having none)."""
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                self.name, self.port, family=socket.AF_INET, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            if self.routes is not None:
                log.warning(
                    "cannot resolve %s (%s); keeping %d backend(s)", self.name, exc, len(self.routes.backends)
                )
            return
        hosts = sorted({str(address[4][0]) for address in found})
        backends = tuple(Backend(host, self.port, "", host) for host in hosts)
        if backends and (self.routes is None or backends != self.routes.backends):
            log.info("backends of %s: %s", self.name, ", ".join(hosts))
            self.routes = Routes(backends[0], backends[1:])

    def refresh(self) -> Routes | None:
        return self.next_routes()

    def next_routes(self) -> Routes | None:
        """The same backends, starting one further along for each request."""
        if self.routes is None:
            return None
        backends = self.routes.backends
        turn = next(self._turn) % len(backends)
        order = backends[turn:] + backends[:turn]
        return Routes(order[0], order[1:])

    async def poll(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(max(interval_s, 0.5))  # a DNS query, not a stat
            await self.resolve()
