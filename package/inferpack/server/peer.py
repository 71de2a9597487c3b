"""Who is calling: the peer address, through the front, and whether it is this machine.

The front listens on the public port and forwards from loopback, so the backend sees 127.0.0.1
for everyone. The front therefore always sets ``PEER_HEADER`` to the address it accepted the
connection from, replacing anything a client sent; the backend believes the header only from a
loopback peer (the front, or a local process that is local anyway), never from a remote one,
as on a server exposed directly.
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

PEER_HEADER = "X-Inferpack-Peer"


def is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def peer_address(request: web.BaseRequest) -> str | None:
    """The caller's address: the front's ``PEER_HEADER`` when the connection is from loopback."""
    if is_loopback(request.remote) and PEER_HEADER in request.headers:
        return request.headers[PEER_HEADER]
    return request.remote


def local_caller(request: web.BaseRequest) -> bool:
    return is_loopback(peer_address(request))
