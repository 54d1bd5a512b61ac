"""Read the current network namespace into plain, immutable data.

Everything here reads the namespace of the calling thread; nothing writes.
Records are NamedTuples: `dataclasses` imports `inspect`, ~12 ms on every run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .netlink import RouteSocket

AF_INET, AF_INET6 = 2, 10  # Linux ABI; spares `import socket` on the sysctl-only path
IPV4_CONF = "/proc/sys/net/ipv4/conf"
# Not interfaces: the namespace-wide knob, and the template for new interfaces.
ALL, DEFAULT = "all", "default"
RT_TABLE_MAIN = 254
RTN_UNICAST = 1


class Nexthop(NamedTuple):
    ifindex: int
    dev: str
    gateway: str | None

    def __str__(self) -> str:
        return f"via {self.gateway} dev {self.dev}" if self.gateway else f"dev {self.dev}"


class Route(NamedTuple):
    """A default route. IPv6 multipath routes are split into one Route per
    nexthop, which is how the kernel stores (and deletes) them."""

    family: int
    metric: int
    nexthops: tuple[Nexthop, ...]
    table: int = RT_TABLE_MAIN
    protocol: int = 0
    scope: int = 0
    kind: int = RTN_UNICAST
    pref: int | None = None

    def __str__(self) -> str:
        family = "IPv6" if self.family == AF_INET6 else "IPv4"
        return f"{family} default {' '.join(map(str, self.nexthops))} metric {self.metric}"


class Address(NamedTuple):
    ifindex: int
    family: int
    address: str
    prefixlen: int


class Routing(NamedTuple):
    links: Mapping[int, str]
    addresses: tuple[Address, ...]
    defaults: tuple[Route, ...]


def interfaces() -> list[str]:
    """Names of the namespace's interfaces, as the kernel lists them."""
    return sorted(name for name in os.listdir(IPV4_CONF) if name not in (ALL, DEFAULT))


def rp_filter() -> dict[str, int]:
    """rp_filter of `all`, `default` and every interface."""
    values = {}
    for name in (ALL, DEFAULT, *interfaces()):
        with open(f"{IPV4_CONF}/{name}/rp_filter") as f:
            values[name] = int(f.read())
    return values


def _nexthops(msg: object, links: Mapping[int, str]) -> tuple[Nexthop, ...]:
    get_attr = msg.get_attr  # type: ignore[attr-defined]
    hops = get_attr("RTA_MULTIPATH")
    if hops:
        pairs = [(nh["oif"], nh.get_attr("RTA_GATEWAY")) for nh in hops]
    else:
        pairs = [(get_attr("RTA_OIF"), get_attr("RTA_GATEWAY"))]
    return tuple(Nexthop(index, links.get(index, f"if{index}"), gateway)
                 for index, gateway in pairs if index)


def routing(sock: RouteSocket) -> Routing:
    """Links, addresses and the main table's default routes."""
    links = sock.links()
    addresses = []
    for msg in sock.addresses():
        address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if address and links.get(msg["index"]) != "lo":
            addresses.append(Address(msg["index"], msg["family"], address, msg["prefixlen"]))
    defaults = []
    for msg in sock.routes():
        table = msg.get_attr("RTA_TABLE") or msg["table"]
        if msg["dst_len"] or table != RT_TABLE_MAIN or msg["type"] != RTN_UNICAST:
            continue
        if msg["family"] not in (AF_INET, AF_INET6):
            continue
        nexthops = _nexthops(msg, links)
        split = msg["family"] == AF_INET6
        for group in ([(nh,) for nh in nexthops] if split else [nexthops]):
            defaults.append(Route(family=msg["family"], metric=msg.get_attr("RTA_PRIORITY") or 0,
                                  nexthops=group, table=table, protocol=msg["proto"],
                                  scope=msg["scope"], kind=msg["type"],
                                  pref=msg.get_attr("RTA_PREF")))
    return Routing(links=links, addresses=tuple(addresses), defaults=tuple(defaults))
