"""Where Cobro may send merchant webhooks: no requests into our own network.

In production an endpoint must be https and every address its host resolves to
must be public (not private, loopback, link-local, reserved or multicast), checked
when it is registered and again before each delivery (DNS can change). Outside
production http and loopback are allowed, so people can test on their machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from app.domain.errors import InvalidInput

MAX_URL = 2048
FIELD = ("input", "url")


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL if it is one we could ever deliver to; InvalidInput saying why not."""
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise InvalidInput(f"url must be 1 to {MAX_URL} characters", FIELD)
    parts = urlsplit(url)
    allowed = {"https", "http"} if allow_private else {"https"}
    if parts.scheme not in allowed:
        raise InvalidInput(f"url must start with {' or '.join(sorted(allowed))}://", FIELD)
    if not parts.hostname:
        raise InvalidInput("url has no host", FIELD)
    if parts.username or parts.password:
        raise InvalidInput("url must not carry credentials", FIELD)
    if not allow_private:
        try:
            address = ipaddress.ip_address(parts.hostname)
        except ValueError:
            address = None
        if address is not None and not _public(address):
            raise InvalidInput("url must not point into a private network", FIELD)
    return url


async def check_resolves_public(url: str) -> None:
    """Raise InvalidInput if the URL's host resolves to any non-public address."""
    host = urlsplit(url).hostname or ""
    port = urlsplit(url).port or 443
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise InvalidInput(f"host {host!r} does not resolve", FIELD) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not _public(address):
            raise InvalidInput(f"host {host!r} resolves to a private address", FIELD)


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )
