"""Read the current network namespace into plain, immutable data.

Everything here reads the namespace of the calling thread; nothing writes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from . import netlink

IPV4_CONF = "/proc/sys/net/ipv4/conf"
# Not interfaces: the namespace-wide knob, and the template for new interfaces.
ALL, DEFAULT = "all", "default"
RT_TABLE_MAIN = 254
RTN_UNICAST = 1


@dataclass(frozen=True)
class Nexthop:
    ifindex: int
    dev: str
    gateway: str | None

    def __str__(self) -> str:
        return f"via {self.gateway} dev {self.dev}" if self.gateway else f"dev {self.dev}"


@dataclass(frozen=True)
class Route:
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
        family = "IPv6" if self.family == socket.AF_INET6 else "IPv4"
        return f"{family} default {' '.join(map(str, self.nexthops))} metric {self.metric}"


@dataclass(frozen=True)
class Address:
    ifindex: int
    family: int
    address: str
    prefixlen: int


@dataclass(frozen=True)
class Routing:
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


def routing(sock: netlink.RouteSocket) -> Routing:
    """Links, addresses and the main table's default routes."""
    links = {index: name for index, name in socket.if_nameindex()}
    addresses = []
    for msg in sock.dump(netlink.ifaddrmsg(), netlink.RTM_GETADDR, socket.AF_UNSPEC):
        address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if address and links.get(msg["index"]) != "lo":
            addresses.append(Address(msg["index"], msg["family"], address, msg["prefixlen"]))
    defaults = []
    for msg in sock.dump(netlink.rtmsg(), netlink.RTM_GETROUTE, socket.AF_UNSPEC):
        table = msg.get_attr("RTA_TABLE") or msg["table"]
        if msg["dst_len"] or table != RT_TABLE_MAIN or msg["type"] != RTN_UNICAST:
            continue
        if msg["family"] not in (socket.AF_INET, socket.AF_INET6):
            continue
        nexthops = _nexthops(msg, links)
        split = msg["family"] == socket.AF_INET6
        for group in ([(nh,) for nh in nexthops] if split else [nexthops]):
            defaults.append(Route(family=msg["family"], metric=msg.get_attr("RTA_PRIORITY") or 0,
                                  nexthops=group, table=table, protocol=msg["proto"],
                                  scope=msg["scope"], kind=msg["type"],
                                  pref=msg.get_attr("RTA_PREF")))
    return Routing(links=links, addresses=tuple(addresses), defaults=tuple(defaults))
