"""Where Cobro may send merchant webhooks: no requests into our own network.

In production an endpoint must be https and every address its host resolves to
must be public (not private, loopback, link-local, reserved or multicast), checked
when it is registered and again at each delivery, which then connects to the very
address that was checked (so a DNS answer that changes in between cannot point us
inward). Outside production http and loopback are allowed, so people can test on
their own machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

from app.domain.errors import InvalidInput

MAX_URL = 2048
FIELD = ("input", "url")


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL if it is one we could ever deliver to; InvalidInput saying why not."""
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise InvalidInput(f"url must be 1 to {MAX_URL} characters", FIELD)
    if not url.isprintable() or any(c.isspace() for c in url):
        raise InvalidInput("url must not contain spaces or control characters", FIELD)
    parts = _split(url)
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


async def resolve_public(url: str) -> str:
    """One public address the URL's host resolves to; InvalidInput if any is not public."""
    parts = _split(url)
    host = parts.hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or 443, type=socket.SOCK_STREAM
        )
    except OSError:
        raise InvalidInput(f"host {host!r} does not resolve", FIELD) from None
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    if not addresses or not all(_public(a) for a in addresses):
        raise InvalidInput(f"host {host!r} resolves to a private address", FIELD)
    return str(addresses[0])


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL rewritten to connect to `address`, with the Host header and the TLS
    server name still saying the endpoint's own host name."""
    parts = _split(url)
    host = parts.hostname or ""
    shown = f"[{address}]" if ":" in address else address
    netloc = f"{shown}:{parts.port}" if parts.port else shown
    header = f"{host}:{parts.port}" if parts.port else host
    return parts._replace(netloc=netloc).geturl(), {"Host": header}, {"sni_hostname": host}


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise InvalidInput("url is not a valid URL", FIELD) from None
    return parts


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )
