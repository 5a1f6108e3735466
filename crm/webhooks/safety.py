"""Where a webhook may be sent: refuse internal addresses, at creation and at every connection.

The address is checked after resolving and the connection then goes to that checked address (the
host name kept for the Host header and TLS), so a name that resolves to a public address when
checked and to 127.0.0.1 a moment later (DNS rebinding) cannot reach the inside.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from crm.errors import Invalid


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as written in the URL: the Host header and the TLS server name
    port: int
    ip: str  # the checked address we connect to


def _refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, production: bool) -> str | None:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # Cloud metadata services live on link-local addresses: never, not even in development.
    if ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return "a link-local, multicast or unspecified address"
    if production and (ip.is_loopback or ip.is_private or ip.is_reserved or not ip.is_global):
        return "a loopback, private or reserved address"
    return None


def check_url(url: str, production: bool, *, field: str = "url") -> Target:
    """Resolve and check; the first acceptable address is the one to connect to. Raises Invalid."""
    if not isinstance(url, str) or len(url) > 2000:
        raise Invalid.field(field, "must be an http or https URL of at most 2000 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid.field(field, "must be an http or https URL with a host")
    if parts.username or parts.password:
        raise Invalid.field(field, "must not carry a user name or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise Invalid.field(field, "has an invalid port") from None
    host = parts.hostname
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise Invalid.field(field, f"host {host} cannot be resolved") from None
    addresses = [info[4][0] for info in infos]
    for address in addresses:
        why = _refusal(ipaddress.ip_address(address.split("%")[0]), production)
        if why:
            # One bad answer refuses the name: a resolver rotating between answers must not win.
            raise Invalid.field(field, f"{host} resolves to {address}, {why}; refused")
    return Target(parts.scheme, host, port, addresses[0])
