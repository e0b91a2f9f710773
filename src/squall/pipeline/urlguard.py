"""SSRF guard for source and webhook URLs.

Strings are never trusted: ``127.1`` and ``0x7f000001`` both resolve to loopback, so the
check resolves the host and tests every address it gets, after unwrapping IPv6 forms that
embed an IPv4 address (mapped, compatible, 6to4, NAT64, Teredo)."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from squall.errors import HostNotFound, UrlRefused
from squall.settings import IPNetwork, Settings, parse_networks

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
BLOCKED_NAMES = ("localhost", "metadata.google.internal")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def private_address_refused(what: str) -> str:
    """The refusal of a private address, naming the settings that allow one: whoever reads it
    (often the operator trying Squall on a local file server) learns how, not only that."""
    return (
        f"{what} points at a private or local address, which this server does not allow; its "
        "operator can allow such addresses with SQUALL_ALLOW_PRIVATE_URLS=true, or only chosen "
        "networks with SQUALL_ALLOWED_PRIVATE_NETWORKS (e.g. 192.168.1.0/24)"
    )


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden inside an IPv6 one, if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    packed = address.packed
    if packed[:12] == bytes(12) and int(address) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(packed[12:])
    return None


def is_public(address: IPAddress) -> bool:
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_public(inner)
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class UrlPolicy:
    """Which addresses source and webhook URLs may reach: public ones, plus any private
    networks the operator lists (an in-house media server, say), or everything."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    @lru_cache(maxsize=16)  # every request asks; the settings rarely change
    def parse(cls, *, allow_private: bool, networks: str) -> UrlPolicy:
        """``networks``: comma-separated CIDRs. Raises ValueError naming a bad entry."""
        return cls(allow_private=allow_private, allowed_networks=parse_networks(networks))

    def permits(self, address: IPAddress) -> bool:
        if self.allow_private or is_public(address):
            return True
        inner = embedded_ipv4(address)
        return any(a in net for net in self.allowed_networks for a in (address, inner) if a is not None)


def url_policy(settings: Settings) -> UrlPolicy:
    """The operator's policy: ``SQUALL_ALLOW_PRIVATE_URLS`` and ``SQUALL_ALLOWED_PRIVATE_NETWORKS``."""
    return UrlPolicy.parse(
        allow_private=settings.allow_private_urls, networks=settings.allowed_private_networks
    )


def check_url(url: str, policy: UrlPolicy, *, what: str = "URL") -> None:
    """Refuse non-http(s) URLs, and hosts that resolve to any address the policy does not
    permit. Raises UrlRefused with a message for people."""
    resolve_checked(url, policy, what=what)


def resolve_checked(url: str, policy: UrlPolicy, *, what: str = "URL") -> str | None:
    """``check_url``, returning the first address the host resolved to (to connect to it
    and nothing else), or None when the policy allows every address."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"{what} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise UrlRefused(f"{what} must start with http:// or https://")
    host = parts.hostname
    if not host:
        raise UrlRefused(f"{what} has no host name")
    if parts.username or parts.password:
        raise UrlRefused(f"{what} cannot contain a user name or password")
    if policy.allow_private:
        return None
    if host.rstrip(".").lower() in BLOCKED_NAMES or host.rstrip(".").lower().endswith(".localhost"):
        raise UrlRefused(private_address_refused(what))
    try:
        infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise HostNotFound(f"{what} host '{host}' could not be resolved") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses or not all(policy.permits(address) for address in addresses):
        raise UrlRefused(private_address_refused(what))
    return str(addresses[0])
