"""What to change, decided from a snapshot alone: pure functions, no I/O.

Every change knows its inverse, so undoing a half-applied plan is a loop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from .errors import HookError
from .request import Gateway, Interface, Primary, Subnet
from .snapshot import AF_INET, AF_INET6, ALL, DEFAULT, Nexthop, Route, Routing

STRICT, LOOSE = 1, 2


class _Value:
    """Equality, hashing and repr from __slots__. Changes are not NamedTuples
    because AddRoute(r) and DeleteRoute(r) must not compare equal, and not
    dataclasses because `dataclasses` costs ~12 ms of start-up per run."""

    __slots__: tuple[str, ...] = ()

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._key() == self._key()

    def __hash__(self) -> int:
        return hash((type(self), self._key()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}{self._key()!r}"


class SetRpFilter(_Value):
    __slots__ = ("interface", "new", "old")

    def __init__(self, interface: str, old: int, new: int) -> None:
        self.interface, self.old, self.new = interface, old, new

    def inverse(self) -> SetRpFilter:
        return SetRpFilter(self.interface, self.new, self.old)

    def __str__(self) -> str:
        return f"rp_filter {self.interface} {self.old}->{self.new}"


class DeleteRoute(_Value):
    __slots__ = ("route",)

    def __init__(self, route: Route) -> None:
        self.route = route

    def inverse(self) -> AddRoute:
        return AddRoute(self.route)

    def __str__(self) -> str:
        return f"delete {self.route}"


class AddRoute(_Value):
    __slots__ = ("route",)

    def __init__(self, route: Route) -> None:
        self.route = route

    def inverse(self) -> DeleteRoute:
        return DeleteRoute(self.route)

    def __str__(self) -> str:
        return f"add {self.route}"


Change = SetRpFilter | DeleteRoute | AddRoute


def loose(rp_filter: Mapping[str, int]) -> list[Change]:
    """rp_filter 2 wherever it is 1: on `all` (the effective value is
    max(all, interface)), `default` (interfaces added later) and every
    interface. Never tighter: 0 stays 0."""
    order = [ALL, DEFAULT, *sorted(k for k in rp_filter if k not in (ALL, DEFAULT))]
    return [SetRpFilter(name, STRICT, LOOSE) for name in order if rp_filter.get(name) == STRICT]


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting eth2 before eth10."""
    return tuple((0, int(part)) if part.isdecimal() else (1, part)
                 for part in re.split(r"(\d+)", name) if part)


def _primary_ifindex(routing: Routing, primary: Primary) -> int:
    """The interface (network) the primary selector names."""
    import ipaddress  # ~6 ms: only when a primary is given

    if isinstance(primary, Interface):
        found = [i for i, name in routing.links.items() if name == primary.name]
    elif isinstance(primary, Subnet):
        found = sorted({a.ifindex for a in routing.addresses
                        if ipaddress.ip_address(a.address) in primary.network})
    else:
        assert isinstance(primary, Gateway)
        found = sorted({nh.ifindex for route in routing.defaults for nh in route.nexthops
                        if nh.gateway and ipaddress.ip_address(nh.gateway) == primary.address})
    if not found:
        raise HookError(f"primary {primary} matches no interface of the container")
    if len(found) > 1:
        names = ", ".join(routing.links.get(i, str(i)) for i in found)
        raise HookError(f"primary {primary} is ambiguous: it matches {names}")
    index = found[0]
    if not any(nh.ifindex == index for route in routing.defaults for nh in route.nexthops):
        raise HookError(f"primary {primary} ({routing.links.get(index, index)}) "
                        "has no default route")
    return index


def _keep(candidates: Sequence[tuple[Route, Nexthop]],
          ifindex: int | None) -> tuple[Route, Nexthop]:
    """The primary's default route if it has one in this family, else the
    lowest metric, ties to the interface name that sorts first naturally."""
    preferred = [c for c in candidates if c[1].ifindex == ifindex] or candidates
    return min(preferred, key=lambda c: (c[0].metric, natural_key(c[1].dev), c[1].gateway or ""))


def one_default(routing: Routing, primary: Primary | None) -> list[Change]:
    """Per family, delete every default route (IPv6: every nexthop) but one."""
    ifindex = None if primary is None else _primary_ifindex(routing, primary)
    changes: list[Change] = []
    for family in (AF_INET, AF_INET6):
        routes = [r for r in routing.defaults if r.family == family]
        candidates = [(r, nh) for r in routes for nh in r.nexthops]
        if len(candidates) < 2:
            continue
        kept_route, kept_hop = _keep(candidates, ifindex)
        for route in routes:
            if route is not kept_route:
                changes.append(DeleteRoute(route))
            elif len(route.nexthops) > 1:  # an IPv4 multipath route: rebuild it
                changes += [DeleteRoute(route), AddRoute(route._replace(nexthops=(kept_hop,)))]
    return changes
