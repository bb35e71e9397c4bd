"""Who is asking: the client address a request is counted, braked and allowed by.

Without configuration the client is the TCP peer. ``X-Forwarded-For`` is written by whoever sends
the request, so believing it by default would let anyone choose their address (and escape any
per-client limit). Behind a reverse proxy, list the proxy's addresses in
``server.trusted_proxies``: for a request whose peer is one of them, the client is the right-most
``X-Forwarded-For`` address that is not itself a trusted proxy. Each proxy appends the address it
saw, so only what trusted hops wrote is believed; anything left of that is the sender's to invent.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from aiohttp import web

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

# One IPv6 subscriber gets a whole /64: counting its addresses one by one would count nothing.
IPV6_CLIENT_PREFIX = 64


def parse_networks(entries: Sequence[str]) -> tuple[Network, ...]:
    """CIDRs or single addresses (checked at start-up by the config loader)."""
    return tuple(ip_network(entry.strip(), strict=False) for entry in entries)


def parse_address(text: str) -> Address | None:
    """An address as a peer or a proxy writes it (``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:80``,
    ``::ffff:1.2.3.4``), or None for anything else (``unknown``, junk)."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def in_networks(address: Address, networks: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


class ClientResolver:
    def __init__(self, trusted_proxies: Sequence[str] = ()) -> None:
        self._trusted = parse_networks(trusted_proxies)

    def address(self, request: web.BaseRequest) -> Address | None:
        peer = parse_address(request.remote or "")
        if peer is None or not self._trusted or not in_networks(peer, self._trusted):
            return peer
        client = peer
        hops = [
            hop
            for value in request.headers.getall("X-Forwarded-For", ())
            for hop in value.split(",")
        ]
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                break  # a hop nobody trusted wrote this; stop at the last believable one
            client = address
            if not in_networks(address, self._trusted):
                break
        return client

    def key(self, request: web.BaseRequest) -> str:
        """The client as a short string: the address, or its /64 for IPv6."""
        address = self.address(request)
        if address is None:
            return "unknown"
        if isinstance(address, IPv6Address):
            return str(ip_network((address, IPV6_CLIENT_PREFIX), strict=False))
        return str(address)
