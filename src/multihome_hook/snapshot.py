"""Read the current network namespace into plain, immutable data.

Everything here reads the namespace of the calling thread; nothing writes.
"""

from __future__ import annotations

import os

from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from .netlink import RouteSocket

AF_INET, AF_INET6 = 2, 10  # Linux ABI; spares `import socket` on the sysctl-only path
IPV4_CONF = "/proc/sys/net/ipv4/conf"
# Not interfaces: the namespace-wide knob, and the template for new interfaces.
ALL, DEFAULT = "all", "default"
RT_TABLE_MAIN, RT_TABLE_LOCAL = 254, 255
RTN_UNICAST = 1
FR_ACT_TO_TBL = 1


class Nexthop(Record):
    __slots__ = ("dev", "gateway", "ifindex")

    def __init__(self, ifindex: int, dev: str, gateway: str | None) -> None:
        self.ifindex, self.dev, self.gateway = ifindex, dev, gateway

    def __str__(self) -> str:
        return f"via {self.gateway} dev {self.dev}" if self.gateway else f"dev {self.dev}"


class Route(Record):
    """A route. IPv6 multipath routes are split into one Route per nexthop,
    which is how the kernel stores (and deletes) them."""

    __slots__ = (
        "dst",
        "dst_len",
        "family",
        "kind",
        "metric",
        "nexthops",
        "pref",
        "prefsrc",
        "protocol",
        "scope",
        "table",
    )

    def __init__(self, family: int, metric: int, nexthops: tuple[Nexthop, ...],
                 table: int = RT_TABLE_MAIN, protocol: int = 0, scope: int = 0,
                 kind: int = RTN_UNICAST, pref: int | None = None,
                 dst: str | None = None,  # None: the default route
                 dst_len: int = 0, prefsrc: str | None = None) -> None:
        self.family, self.metric, self.nexthops, self.table = family, metric, nexthops, table
        self.protocol, self.scope, self.kind, self.pref = protocol, scope, kind, pref
        self.dst, self.dst_len, self.prefsrc = dst, dst_len, prefsrc

    @property
    def is_default(self) -> bool:
        return self.dst_len == 0

    def __str__(self) -> str:
        where = "default" if self.is_default else f"{self.dst}/{self.dst_len}"
        text = f"{family_name(self.family)} {where} {' '.join(map(str, self.nexthops))}"
        if self.prefsrc:
            text += f" src {self.prefsrc}"
        text += f" metric {self.metric}" if self.metric else ""
        return text if self.table == RT_TABLE_MAIN else f"{text} table {self.table}"


class Rule(Record):
    """A policy routing rule of the kinds this hook makes: `from ADDR` or
    `oif DEV`, then `lookup TABLE`. Anything else is `foreign`."""

    __slots__ = ("family", "foreign", "oif", "priority", "src", "src_len", "table")

    def __init__(self, family: int, priority: int, table: int, src: str | None = None,
                 src_len: int = 0, oif: str | None = None, foreign: bool = False) -> None:
        self.family, self.priority, self.table = family, priority, table
        self.src, self.src_len, self.oif, self.foreign = src, src_len, oif, foreign

    def __str__(self) -> str:
        match = f"from {self.src}/{self.src_len}" if self.src else ""
        match += f" oif {self.oif}" if self.oif else ""
        text = f"{family_name(self.family)} rule {self.priority}: {match.strip() or 'all'}"
        return text + (" (other selectors)" if self.foreign else f" lookup {self.table}")


class Address(Record):
    __slots__ = ("address", "family", "ifindex", "prefixlen", "scope")

    def __init__(self, ifindex: int, family: int, address: str, prefixlen: int,
                 scope: int = 0) -> None:
        self.ifindex, self.family, self.address = ifindex, family, address
        self.prefixlen, self.scope = prefixlen, scope


class Routing(Record):
    __slots__ = ("addresses", "links", "routes", "rules")

    def __init__(self, links: Mapping[int, str], addresses: tuple[Address, ...],
                 routes: tuple[Route, ...],  # every table but `local`
                 rules: tuple[Rule, ...] = ()) -> None:
        self.links, self.addresses, self.routes, self.rules = links, addresses, routes, rules

    def defaults(self) -> list[Route]:
        """The main table's unicast default routes."""
        return [r for r in self.routes
                if r.is_default and r.table == RT_TABLE_MAIN and r.kind == RTN_UNICAST]


def family_name(family: int) -> str:
    return "IPv6" if family == AF_INET6 else "IPv4"


def interfaces() -> list[str]:
    """Names of the namespace's interfaces, as the kernel lists them."""
    return sorted(name for name in os.listdir(IPV4_CONF) if name not in (ALL, DEFAULT))


def uplinks() -> list[str]:
    """Interfaces that carry a default route, read from /proc: the hook
    decides "nothing to do" without paying for netlink (pyroute2).

    IPv4 lists the main table only, IPv6 every table: an uplink whose default
    an earlier run moved to its own table still counts, so the answer never
    says "fewer than two" when the full snapshot would see two."""
    texts = []
    for name in ("route", "ipv6_route"):
        try:
            with open(f"/proc/thread-self/net/{name}") as f:
                texts.append(f.read())
        except FileNotFoundError:  # IPv6 disabled in the kernel
            texts.append("")
    return default_devices(*texts)


_RTF_REJECT = 0x0200
_ANY4, _ANY6 = "00000000", "0" * 32


def default_devices(route: str, ipv6_route: str) -> list[str]:
    """Devices with a default route in /proc/net/route and /proc/net/ipv6_route."""
    devices = set()
    for line in route.splitlines()[1:]:  # after the header
        fields = line.split()
        # Iface Destination Gateway Flags RefCnt Use Metric Mask ...
        if len(fields) >= 8 and fields[1] == _ANY4 and fields[7] == _ANY4:
            devices.add(fields[0])
    for line in ipv6_route.splitlines():
        fields = line.split()
        # dst dst_len src src_len nexthop metric refcnt use flags device
        if (len(fields) == 10 and fields[0] == _ANY6 and fields[1] == "00"
                and not int(fields[8], 16) & _RTF_REJECT):
            devices.add(fields[9])
    devices.discard("lo")
    return sorted(devices)


def rp_filter() -> dict[str, int]:
    """rp_filter of `all`, `default` and every interface."""
    values = {}
    for name in (ALL, DEFAULT, *interfaces()):
        with open(f"{IPV4_CONF}/{name}/rp_filter") as f:
            values[name] = int(f.read())
    return values


def _nexthops(msg: Any, links: Mapping[int, str]) -> tuple[Nexthop, ...]:
    get_attr = msg.get_attr
    hops = get_attr("RTA_MULTIPATH")
    if hops:
        pairs = [(nh["oif"], nh.get_attr("RTA_GATEWAY")) for nh in hops]
    else:
        pairs = [(get_attr("RTA_OIF"), get_attr("RTA_GATEWAY"))]
    return tuple(Nexthop(index, links.get(index, f"if{index}"), gateway)
                 for index, gateway in pairs if index)


def routing(sock: RouteSocket, rules: bool = False) -> Routing:
    """Links, addresses, routes (and policy rules when asked for)."""
    links = sock.links()
    addresses = []
    for msg in sock.addresses():
        address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if address and links.get(msg["index"]) != "lo":
            addresses.append(Address(msg["index"], msg["family"], address, msg["prefixlen"],
                                     msg["scope"]))
    routes = []
    for msg in sock.routes():
        table = msg.get_attr("RTA_TABLE") or msg["table"]
        if table == RT_TABLE_LOCAL or msg["family"] not in (AF_INET, AF_INET6):
            continue
        nexthops = _nexthops(msg, links)
        split = msg["family"] == AF_INET6
        for group in ([(nh,) for nh in nexthops] if split and nexthops else [nexthops]):
            routes.append(Route(family=msg["family"], metric=msg.get_attr("RTA_PRIORITY") or 0,
                                nexthops=group, table=table, protocol=msg["proto"],
                                scope=msg["scope"], kind=msg["type"],
                                pref=msg.get_attr("RTA_PREF"), dst=msg.get_attr("RTA_DST"),
                                dst_len=msg["dst_len"], prefsrc=msg.get_attr("RTA_PREFSRC")))
    return Routing(links=links, addresses=tuple(addresses), routes=tuple(routes),
                   rules=tuple(map(_rule, sock.rules())) if rules else ())


def _rule(msg: Any) -> Rule:
    selectors = ("FRA_IIFNAME", "FRA_FWMARK", "FRA_DST", "FRA_L3MDEV", "FRA_UID_RANGE",
                 "FRA_IP_PROTO", "FRA_SPORT_RANGE", "FRA_DPORT_RANGE", "FRA_GOTO")
    foreign = (msg["action"] != FR_ACT_TO_TBL or bool(msg["tos"]) or bool(msg["flags"])
               or any(msg.get_attr(name) is not None for name in selectors))
    return Rule(family=msg["family"], priority=msg.get_attr("FRA_PRIORITY") or 0,
                table=msg.get_attr("FRA_TABLE") or msg["table"], src=msg.get_attr("FRA_SRC"),
                src_len=msg["src_len"], oif=msg.get_attr("FRA_OIFNAME"), foreign=foreign)
