"""Who is on the other end of a request: the one place the client address is decided.

A reverse proxy in front of recarchive connects on behalf of the client and
says who the client was in ``X-Forwarded-For`` (and which scheme it spoke in
``X-Forwarded-Proto``). Anyone can send those headers, so they are believed
only from the proxies named in ``api.trusted_proxies``: then the client is
the right-most address of ``X-Forwarded-For`` that is not itself one of those
proxies (every proxy appends the peer it saw, so addresses to the left of the
first untrusted one may be made up by the client). From anyone else, the
headers are ignored and the client is the connecting peer.

uvicorn's own rewriting (``proxy_headers``, trusting loopback by default) is
switched off by ``recarchive serve``; :class:`ForwardedClient` rewrites the
ASGI scope's ``client`` (and ``scheme``) instead, so the audit log, the
refusal limiter and the Origin check all see the same address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address from a header item (``1.2.3.4``, ``[::1]``, ``1.2.3.4:5678``), or None."""
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6] or [v6]:port
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    """The proxies whose forwarding headers are believed (``api.trusted_proxies``)."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(item, strict=False) for item in networks
        )

    def trusts(self, host: str | None) -> bool:
        address = _address(host) if host else None
        return address is not None and any(address in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: Sequence[str]) -> str | None:
        """The client's address: the peer, unless the peer is a trusted proxy.

        Then the right-most ``X-Forwarded-For`` address that is not a trusted
        proxy (all of them trusted: the left-most). An item that is not an IP
        address (``unknown``, a name, garbage) ends the walk: the proxy that
        added it is the last one that can be believed, so the client is taken
        to be that proxy.
        """
        if not self.trusts(peer):
            return peer
        client = peer
        items = [item for header in forwarded_for for item in header.split(",") if item.strip()]
        for item in reversed(items):
            address = _address(item)
            if address is None:
                return client
            client = str(address)
            if not self.trusts(client):
                return client
        return client

    def scheme(self, peer: str | None, scheme: str, forwarded_proto: str | None) -> str:
        """``http`` or ``https`` as the client spoke it (from a trusted proxy's header)."""
        if forwarded_proto and self.trusts(peer):
            claimed = forwarded_proto.split(",")[-1].strip().lower()
            if claimed in ("http", "https"):
                return claimed
        return scheme


class ForwardedClient:
    """ASGI middleware: ``scope["client"]`` and ``scope["scheme"]`` as :class:`TrustedProxies`
    decides. Nothing to do when no proxy is trusted (the headers are ignored)."""

    def __init__(self, app: ASGIApp, proxies: TrustedProxies) -> None:
        self.app = app
        self.proxies = proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.proxies.networks:
            peer_host = (scope.get("client") or (None, 0))[0]
            forwarded: list[str] = []
            proto: str | None = None
            for name, value in scope.get("headers", []):
                if name == b"x-forwarded-for":
                    forwarded.append(value.decode("latin-1"))
                elif name == b"x-forwarded-proto":
                    proto = value.decode("latin-1")
            host = self.proxies.client(peer_host, forwarded)
            scheme = self.proxies.scheme(peer_host, scope.get("scheme", "http"), proto)
            # In place, as Starlette's router updates it: the outer middleware reads
            # the route template from the same scope.
            if host != peer_host:
                scope["client"] = (host, 0)
            if scope["type"] == "http" and scheme != scope.get("scheme"):
                scope["scheme"] = scheme
        await self.app(scope, receive, send)
