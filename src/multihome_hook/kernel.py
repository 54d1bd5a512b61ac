"""The kernel's routing vocabulary: plain, immutable records and constants.

Pure data, imported by every other module and importing none of ours but
records.py: the planner works on these, netlink.py translates them to and
from the wire, snapshot.py gathers them.
"""

from __future__ import annotations

from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

AF_INET, AF_INET6 = 2, 10  # Linux ABI; spares `import socket` on the sysctl-only path
RT_TABLE_MAIN, RT_TABLE_LOCAL = 254, 255
RTN_UNICAST = 1
RT_SCOPE_LINK = 253
FR_ACT_TO_TBL = 1

IPV4_CONF = "/proc/sys/net/ipv4/conf"
# The longest interface name: the kernel's IFNAMSIZ (16) less its NUL.
IFNAME_MAX = 15
# Not interfaces: the namespace-wide knob, and the template for new interfaces.
ALL, DEFAULT = "all", "default"
# rp_filter values (0 is off); the kernel applies max(all, interface).
RP_STRICT, RP_LOOSE = 1, 2


def family_name(family: int) -> str:
    return "IPv6" if family == AF_INET6 else "IPv4"


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key for interface names, putting eth2 before eth10 (the hook
    does without `re`: ~3 ms of start-up)."""
    parts: list[str] = []
    for char in name:
        if parts and parts[-1][-1:].isdecimal() == char.isdecimal():
            parts[-1] += char
        else:
            parts.append(char)
    return tuple((0, int(part)) if part.isdecimal() else (1, part) for part in parts)


class Nexthop(Record):
    __slots__ = ("ifindex", "dev", "gateway")

    def __init__(self, ifindex: int, dev: str, gateway: str | None) -> None:
        self.ifindex, self.dev, self.gateway = ifindex, dev, gateway

    def __str__(self) -> str:
        return f"via {self.gateway} dev {self.dev}" if self.gateway else f"dev {self.dev}"


class Route(Record):
    """A route. IPv6 multipath routes are split into one Route per nexthop,
    which is how the kernel stores (and deletes) them."""

    __slots__ = ("family", "metric", "nexthops", "table", "protocol", "scope", "kind", "pref",
                 "dst", "dst_len", "prefsrc")

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

    __slots__ = ("family", "priority", "table", "src", "src_len", "oif", "foreign", "protocol")

    def __init__(self, family: int, priority: int, table: int, src: str | None = None,
                 src_len: int = 0, oif: str | None = None, foreign: bool = False,
                 protocol: int = 0) -> None:
        self.family, self.priority, self.table = family, priority, table
        self.src, self.src_len, self.oif, self.foreign = src, src_len, oif, foreign
        self.protocol = protocol

    def __str__(self) -> str:
        match = f"from {self.src}/{self.src_len}" if self.src else ""
        match += f" oif {self.oif}" if self.oif else ""
        text = f"{family_name(self.family)} rule {self.priority}: {match.strip() or 'all'}"
        return text + (" (other selectors)" if self.foreign else f" lookup {self.table}")


class Address(Record):
    __slots__ = ("ifindex", "family", "address", "prefixlen", "scope")

    def __init__(self, ifindex: int, family: int, address: str, prefixlen: int,
                 scope: int = 0) -> None:
        self.ifindex, self.family, self.address = ifindex, family, address
        self.prefixlen, self.scope = prefixlen, scope


class Uplinks(Record):
    """What says whether a namespace needs anything at all, as /proc shows
    it (snapshot.uplinks: no netlink) or a full snapshot would
    (Routing.uplinks): the `devices` with a default route (IPv4: main's,
    IPv6: any table's), sorted; `parked`: IPv4 routes in a table but main
    and local (the hook's, left from more uplinks); `bare`: no interface
    but lo. /proc's reader leaves the last two False where two devices
    already decide (plan.too_few_uplinks)."""

    __slots__ = ("devices", "parked", "bare")

    def __init__(self, devices: tuple[str, ...], parked: bool, bare: bool) -> None:
        self.devices, self.parked, self.bare = devices, parked, bare


class Routing(Record):
    __slots__ = ("links", "addresses", "routes", "rules")

    def __init__(self, links: Mapping[int, str], addresses: tuple[Address, ...],
                 routes: tuple[Route, ...],  # every table but `local`
                 rules: tuple[Rule, ...] = ()) -> None:
        self.links, self.addresses, self.routes, self.rules = links, addresses, routes, rules

    def defaults(self) -> list[Route]:
        """The main table's unicast default routes."""
        return [r for r in self.routes
                if r.is_default and r.table == RT_TABLE_MAIN and r.kind == RTN_UNICAST]

    def uplinks(self) -> Uplinks:
        """What /proc shows of the uplinks (snapshot.uplinks), read from here."""
        devices = {hop.dev for r in self.routes
                   if r.is_default and r.kind == RTN_UNICAST
                   and (r.family == AF_INET6 or r.table == RT_TABLE_MAIN) for hop in r.nexthops}
        parked = any(r.family == AF_INET and r.table != RT_TABLE_MAIN for r in self.routes)
        return Uplinks(tuple(sorted(devices - {"lo"})), parked, set(self.links.values()) <= {"lo"})


class Snapshot(Record):
    """What was read of a namespace: what its mode needs (modes.py), the
    rest left empty."""

    __slots__ = ("rp_filter", "routing")

    def __init__(self, rp_filter: Mapping[str, int], routing: Routing) -> None:
        self.rp_filter, self.routing = rp_filter, routing


NO_ROUTING = Routing({}, (), ())
