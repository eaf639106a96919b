"""Who can reach the dashboard, decided from `[dashboard]` (docs/operations.md, "Exposing the
dashboard safely").

- `auth = "proxy"` trusts a header (`proxy_header`) only on requests whose TCP peer is one of
  `trusted_proxies` (addresses or CIDR networks). With the list empty, only the loopback
  addresses are trusted, and only while the dashboard binds to a loopback address; a proxy
  dashboard bound to any other address refuses to start without the list, since anyone who
  reaches the port could send the header themselves.
- `auth = "none"` off loopback serves everything to everyone who reaches the port: allowed,
  but said loudly (a log line at start and a banner on every page).

The peer is the server's own view of the connection. Uvicorn (under Streamlit) replaces it with
the `X-Forwarded-For` address when the connection comes from an address in `FORWARDED_ALLOW_IPS`
(127.0.0.1 by default); `gpuledger dashboard` and `gpuledger run --dashboard` set that variable
empty (`PEER_ENV`), so the peer is always the real one, and a proxy dashboard started any other
way refuses every request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOOPBACK = ("127.0.0.0/8", "::1/128")
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
# Uvicorn's list of peers whose X-Forwarded-For it believes; empty: none.
PEER_ENV = {"FORWARDED_ALLOW_IPS": ""}


def is_loopback_host(host: str) -> bool:
    """Whether the bind address `host` is reachable from this machine only (a name other than
    localhost, or an any-address such as 0.0.0.0, is not)."""
    host = host.strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def networks(items: Iterable[str]) -> list[IpNetwork]:
    """The addresses and networks of a `trusted_proxies` list (validated at config load)."""
    return [ipaddress.ip_network(item, strict=False) for item in items]


def trusted_networks(host: str, trusted_proxies: Iterable[str]) -> list[IpNetwork]:
    """The peers a proxy dashboard believes: the configured list, else loopback while the
    dashboard binds to loopback, else none."""
    configured = networks(trusted_proxies)
    if configured:
        return configured
    return networks(LOOPBACK) if is_loopback_host(host) else []


def startup_problem(auth: str, host: str, trusted_proxies: Iterable[str]) -> str | None:
    """Why a dashboard with these settings must not start, naming the keys; None when it may."""
    if auth == "proxy" and not trusted_networks(host, trusted_proxies):
        return (
            f'[dashboard] auth = "proxy" with host = "{host}" needs [dashboard] trusted_proxies: '
            "the addresses of the proxy in front of it (e.g. trusted_proxies = ['10.0.0.5']). "
            "Without it anyone who reaches the port can send the user header themselves "
            "(docs/operations.md, Exposing the dashboard safely)."
        )
    return None


def exposure_warning(auth: str, host: str) -> str | None:
    """The loud warning for a dashboard without login reachable from other machines."""
    if auth == "none" and not is_loopback_host(host):
        return (
            f'The dashboard has no login ([dashboard] auth = "none") and listens on {host}: '
            "everyone who can reach this port sees every workload's costs. Bind it to "
            '127.0.0.1, or set auth = "oidc" or "proxy" (docs/operations.md).'
        )
    return None


def peer_trusted(peer: str | None, trusted: Iterable[IpNetwork]) -> bool:
    """Whether the connection's peer address is one of the trusted proxies (an unknown peer
    never is)."""
    if not peer:
        return False
    try:
        address = ipaddress.ip_address(peer.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    return any(address in net for net in trusted if address.version == net.version)
