"""What to change, decided from a snapshot alone: pure functions, no I/O.

Every change knows its inverse, so undoing a half-applied plan is a loop.
"""

from __future__ import annotations

from .errors import HookError
from .kernel import (
    AF_INET,
    AF_INET6,
    ALL,
    DEFAULT,
    LOOSE,
    RT_SCOPE_LINK,
    RT_TABLE_MAIN,
    RTN_UNICAST,
    STRICT,
    Route,
    Routing,
    Rule,
    natural_key,
)
from .primary import primary_ifindex
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .kernel import Nexthop, Snapshot
    from .primary import Primary

# source-routing: interface N's table is TABLE_BASE + N (its ifindex). The
# rules sit just before the main table's rule (32766), so that every rule an
# admin numbered lower keeps precedence.
TABLE_BASE = 2000
FROM_PRIORITY, OIF_PRIORITY = 32700, 32701


class SetRpFilter(Record):
    __slots__ = ("interface", "old", "new")

    def __init__(self, interface: str, old: int, new: int) -> None:
        self.interface, self.old, self.new = interface, old, new

    def inverse(self) -> SetRpFilter:
        return SetRpFilter(self.interface, self.new, self.old)

    def __str__(self) -> str:
        return f"rp_filter {self.interface} {self.old}->{self.new}"


class Add(Record):
    """Add a route or a policy rule."""

    __slots__ = ("item",)

    def __init__(self, item: Route | Rule) -> None:
        self.item = item

    def inverse(self) -> Delete:
        return Delete(self.item)

    def __str__(self) -> str:
        return f"add {self.item}"


class Delete(Record):
    """Delete a route (an IPv6 one: one nexthop) or a policy rule."""

    __slots__ = ("item",)

    def __init__(self, item: Route | Rule) -> None:
        self.item = item

    def inverse(self) -> Add:
        return Add(self.item)

    def __str__(self) -> str:
        return f"delete {self.item}"


if TYPE_CHECKING:
    # For annotations only (no `typing` at run time); not `A | B`: Python 3.9.
    from typing import Union

    Change = Union[SetRpFilter, Add, Delete]


def describe(changes: Sequence[Change]) -> str:
    """A plan on one line, for logs and terminals."""
    return "; ".join(map(str, changes)) or "nothing to change"


def loose(snapshot: Snapshot, primary: Primary | None) -> list[Change]:
    """rp_filter 2 wherever it is 1: on `all` (the effective value is
    max(all, interface)), `default` (interfaces added later) and every
    interface. Never tighter: 0 stays 0."""
    rp_filter = snapshot.rp_filter
    order = [ALL, DEFAULT, *sorted(k for k in rp_filter if k not in (ALL, DEFAULT))]
    return [SetRpFilter(name, STRICT, LOOSE) for name in order if rp_filter.get(name) == STRICT]


def preferred(candidates: Sequence[tuple[Route, Nexthop]],
              ifindex: int | None = None) -> tuple[Route, Nexthop]:
    """The primary's default route if it has one in this family, else the
    lowest metric, ties to the interface name that sorts first naturally."""
    preferred = [c for c in candidates if c[1].ifindex == ifindex] or candidates
    return min(preferred, key=lambda c: (c[0].metric, natural_key(c[1].dev), c[1].gateway or ""))


def one_default(snapshot: Snapshot, primary: Primary | None) -> list[Change]:
    """Per family, delete every default route (IPv6: every nexthop) but one."""
    return _one_default(snapshot.routing, primary)


def _one_default(routing: Routing, primary: Primary | None) -> list[Change]:
    ifindex = None if primary is None else primary_ifindex(routing, primary)
    changes: list[Change] = []
    for family in (AF_INET, AF_INET6):
        routes = [r for r in routing.defaults() if r.family == family]
        candidates = [(r, nh) for r in routes for nh in r.nexthops]
        if len(candidates) < 2:
            continue
        kept_route, kept_hop = preferred(candidates, ifindex)
        for route in routes:
            if route is not kept_route:
                changes.append(Delete(route))
            elif len(route.nexthops) > 1:  # an IPv4 multipath route: rebuild it
                changes += [Delete(route), Add(route.replace(nexthops=(kept_hop,)))]
    return changes


def _uplinks(routing: Routing) -> dict[int, list[Route]]:
    """Interface -> its default routes, wherever they are now: in main, or
    (after an earlier run deleted them there) in its own table."""
    found: dict[int, list[Route]] = {}
    for route in routing.routes:
        if not (route.is_default and route.kind == RTN_UNICAST and len(route.nexthops) == 1):
            continue
        (hop,) = route.nexthops
        if route.table in (RT_TABLE_MAIN, TABLE_BASE + hop.ifindex):
            as_main = route.replace(table=RT_TABLE_MAIN)
            if as_main not in found.setdefault(hop.ifindex, []):
                found[hop.ifindex].append(as_main)
    return found


def _table_for(routing: Routing, ifindex: int, defaults: list[Route]) -> list[Route]:
    """What interface `ifindex`'s table holds: its default routes and its
    link routes (of the families it has a default route in), copied from main."""
    table, families = TABLE_BASE + ifindex, {r.family for r in defaults}
    links = [r for r in routing.routes
             if r.table == RT_TABLE_MAIN and not r.is_default and r.kind == RTN_UNICAST
             and r.family in families and len(r.nexthops) == 1
             and r.nexthops[0].ifindex == ifindex and not r.nexthops[0].gateway]
    return [r.replace(table=table) for r in (*defaults, *links)]


def _rules_for(routing: Routing, ifindex: int, defaults: list[Route]) -> list[Rule]:
    table, name = TABLE_BASE + ifindex, routing.links[ifindex]
    rules = [Rule(a.family, FROM_PRIORITY, table, a.address, 32 if a.family == AF_INET else 128)
             for a in routing.addresses
             if a.ifindex == ifindex and a.scope != RT_SCOPE_LINK]
    families = sorted({r.family for r in defaults})
    return rules + [Rule(family, OIF_PRIORITY, table, oif=name) for family in families]


def source_routing(snapshot: Snapshot, primary: Primary | None) -> list[Change]:
    """A table and rules per uplink, so that each source address and each
    bound device leaves through its own interface; main keeps one default
    per family (as one-default) for everything else. rp_filter stays."""
    routing = snapshot.routing
    uplinks = _uplinks(routing)
    if len(uplinks) < 2:
        return []
    routes: list[Route] = []
    rules: list[Rule] = []
    for ifindex in sorted(uplinks, key=lambda i: natural_key(routing.links.get(i, ""))):
        routes += _table_for(routing, ifindex, uplinks[ifindex])
        rules += _rules_for(routing, ifindex, uplinks[ifindex])
    tables = {TABLE_BASE + i for i in uplinks}
    # Check, don't assume: our tables and rule priorities hold nothing else.
    for route in routing.routes:
        if route.table in tables and route not in routes:
            raise HookError(f"routing table {route.table} is already in use ({route}): "
                            "refusing to change it")
    for rule in routing.rules:
        if rule.priority in (FROM_PRIORITY, OIF_PRIORITY) and rule not in rules:
            raise HookError(f"rule priority {rule.priority} is already in use ({rule}): "
                            "refusing to change it")
    changes: list[Change] = [Add(r) for r in routes if r not in routing.routes]
    changes += [Add(r) for r in rules if r not in routing.rules]
    return changes + _one_default(routing, primary)
