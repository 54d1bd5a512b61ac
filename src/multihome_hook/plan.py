"""What to change, decided from a snapshot alone: pure functions, no I/O.

Every change knows its inverse, so undoing a half-applied plan is a loop.
"""

from __future__ import annotations

from .errors import InUse
from .kernel import (
    AF_INET,
    AF_INET6,
    ALL,
    DEFAULT,
    RP_LOOSE,
    RP_STRICT,
    RT_SCOPE_LINK,
    RT_TABLE_MAIN,
    RTN_UNICAST,
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

    from .kernel import Nexthop, Snapshot, Uplinks
    from .primary import Primary

# Interface N's table is TABLE_BASE + N (its ifindex): source-routing's
# table of that uplink, and where one-default parks the default routes it
# takes out of main, so that one can come back when the primary goes. The
# rules sit just before the main table's rule (32766), so that every rule an
# admin numbered lower keeps precedence.
TABLE_BASE = 2000
FROM_PRIORITY, OIF_PRIORITY = 32700, 32701
# What the hook owns carries a routing protocol number of its own, one per
# mode (free in iproute2's rt_protos): it removes what it owns and no longer
# fits, and never touches anything else.
RTPROT_ONE_DEFAULT, RTPROT_SOURCE_ROUTING = 176, 177
OURS = (RTPROT_ONE_DEFAULT, RTPROT_SOURCE_ROUTING)


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


def too_few_uplinks(found: Uplinks) -> str | None:
    """Why a namespace with fewer than two uplinks needs nothing, or None
    (modes.Mode.idle: the rule every caller shares).

    One uplink cannot receive a reply on the "wrong" interface, so every
    mode would only weaken it (loose) or change nothing; what the hook
    parked in a table from more uplinks is still cleaned up."""
    if len(found.devices) >= 2 or found.parked:
        return None
    if not found.devices:
        return ("no network interface, nothing to change" if found.bare
                else "no default route, nothing to change")
    return f"one uplink ({found.devices[0]}), nothing to change"


def preferred(candidates: Sequence[tuple[Route, Nexthop]],
              ifindex: int | None = None) -> tuple[Route, Nexthop]:
    """The primary's default route if it has one in this family, else the
    lowest metric, ties to the interface name that sorts first naturally."""
    preferred = [c for c in candidates if c[1].ifindex == ifindex] or candidates
    return min(preferred, key=lambda c: (c[0].metric, natural_key(c[1].dev), c[1].gateway or ""))


def loose(snapshot: Snapshot, *, primary: Primary | None = None, switch: bool = False,
          strict: bool = False) -> list[Change]:
    """rp_filter 2 wherever it is 1: on `all` (the effective value is
    max(all, interface)), `default` (interfaces added later) and every
    interface. Never tighter: 0 stays 0. Routes are another matter: left as
    they are, unless switching from a route mode (then restored)."""
    rp_filter = snapshot.rp_filter
    order = [ALL, DEFAULT, *sorted(k for k in rp_filter if k not in (ALL, DEFAULT))]
    changes: list[Change] = [SetRpFilter(name, RP_STRICT, RP_LOOSE) for name in order
                             if rp_filter.get(name) == RP_STRICT]
    if primary is not None or switch:
        # A primary means nothing to loose, but a wrong one is still an error.
        return _Routes(snapshot.routing, primary, None, switch=switch).plan() + changes
    return changes


def one_default(snapshot: Snapshot, *, primary: Primary | None = None, switch: bool = False,
                strict: bool = False) -> list[Change]:
    """Per family, one default route in main, the primary's; the others
    (IPv6: the other nexthops) parked in their interface's table."""
    return _Routes(snapshot.routing, primary, RTPROT_ONE_DEFAULT, switch=switch).plan()


def source_routing(snapshot: Snapshot, *, primary: Primary | None = None,
                   switch: bool = False, strict: bool = False) -> list[Change]:
    """A table and rules per uplink, so that each source address and each
    bound device leaves through its own interface; main keeps one default
    per family (as one-default) for everything else. rp_filter stays, or
    with `strict` becomes 1 on `all`, `default` and every uplink, once the
    rules are in place (netavark >= 1.11 loosens bridges: this takes the
    anti-spoofing back, which source routing makes free)."""
    routes = _Routes(snapshot.routing, primary, RTPROT_SOURCE_ROUTING, switch=switch,
                     serving=True)
    changes = routes.plan()
    if strict and len(routes.uplinks) >= 2:
        names = [ALL, DEFAULT, *(snapshot.routing.links[i] for i in routes.uplinks)]
        changes += [SetRpFilter(name, snapshot.rp_filter[name], RP_STRICT) for name in names
                    if snapshot.rp_filter.get(name, RP_STRICT) != RP_STRICT]
    return changes


def _key(route: Route, hop: Nexthop) -> tuple[int, int, str | None, int]:
    """What makes two default routes the same uplink route, wherever kept."""
    return route.family, hop.ifindex, hop.gateway, route.metric


class _Routes:
    """The state a route mode wants, derived from the namespace as it is now
    (so that a second run, a reconnect, a lost primary and a mode switch are
    all the same case), and the changes that lead there.

    `protocol`: the mode's (None: no route mode, restore what the hook holds);
    `switch`: an operator's explicit mode change, allowed to undo another
    mode's work (the hook and `watch` refuse it instead); `serving`: each
    uplink's table serves it, through rules (source routing), rather than
    only parking what main does not keep (one-default)."""

    def __init__(self, routing: Routing, primary: Primary | None, protocol: int | None, *,
                 switch: bool, serving: bool = False) -> None:
        self.routing, self.protocol, self.switch = routing, protocol, switch
        self.serving = serving
        self.main = routing.defaults()
        # What the hook holds outside main (parked defaults, its tables).
        self.owned = [r for r in routing.routes if r.protocol in OURS
                      and r.table != RT_TABLE_MAIN and len(r.nexthops) == 1]
        # Every uplink default route, single-hop and as main would hold it:
        # from main, or parked by an earlier run in its interface's table.
        self.candidates: dict[tuple[int, int, str | None, int], Route] = {}
        for route in self.main:
            for hop in route.nexthops:
                self.candidates[_key(route, hop)] = route.replace(nexthops=(hop,))
        for route in self.owned:
            if route.is_default and route.table == TABLE_BASE + route.nexthops[0].ifindex:
                self.candidates.setdefault(_key(route, route.nexthops[0]),
                                           route.replace(table=RT_TABLE_MAIN))
        self.uplinks = sorted({key[1] for key in self.candidates},
                              key=lambda i: natural_key(routing.links.get(i, "")))
        self.primary = None if primary is None else primary_ifindex(routing, primary,
                                                                    self.uplinks)

    def plan(self) -> list[Change]:
        self._check_foreign()
        active = self.protocol is not None and len(self.uplinks) >= 2
        chosen = self._chosen() if active else list(self.candidates.values())
        tables, rules = self._tables_and_rules(chosen) if active else ([], [])
        owned_rules = [r for r in self.routing.rules if r.protocol in OURS]
        # Sets: with 32 networks, list lookups compared records 40,000 times.
        wanted_tables, wanted_rules = set(tables), set(rules)
        routes_now, rules_now = set(self.routing.routes), set(self.routing.rules)
        # Our stale objects go first: a new copy may have the same key.
        changes: list[Change] = [Delete(r) for r in owned_rules if r not in wanted_rules]
        changes += [Delete(r) for r in self.owned if r not in wanted_tables]
        changes += [Add(r) for r in tables if r not in routes_now]
        changes += [Add(r) for r in rules if r not in rules_now]
        return changes + self._main(chosen)

    def _check_foreign(self) -> None:
        """Our tables and rule priorities hold nothing of anybody else's, and
        the hook's own work of another mode is undone only on request."""
        tables = {TABLE_BASE + i for i in self.uplinks}
        for route in self.routing.routes:
            if route.table in tables and route.protocol not in OURS:
                raise InUse(f"routing table {route.table} is already in use ({route}): "
                            "refusing to change it")
        for rule in self.routing.rules:
            if rule.priority in (FROM_PRIORITY, OIF_PRIORITY) and rule.protocol not in OURS:
                raise InUse(f"rule priority {rule.priority} is already in use ({rule}): "
                            "refusing to change it")
        if self.switch or self.protocol is None:
            return
        protocols = [r.protocol for r in self.owned]
        protocols += [r.protocol for r in self.routing.rules]
        theirs = sorted({p for p in protocols if p in OURS and p != self.protocol})
        if theirs:
            raise InUse(f"the network namespace already holds this hook's routing of another "
                        f"mode (protocol {theirs[0]}; another container of its pod?): "
                        "refusing to switch it; `oci-multihome-hook apply --mode MODE` does")

    def _chosen(self) -> list[Route]:
        """Per family, the one default route main keeps."""
        chosen = []
        for family in (AF_INET, AF_INET6):
            routes = [r for r in self.candidates.values() if r.family == family]
            if routes:
                route, _ = preferred([(r, r.nexthops[0]) for r in routes], self.primary)
                chosen.append(route)
        return chosen

    def _tables_and_rules(self, chosen: Sequence[Route]) -> tuple[list[Route], list[Rule]]:
        assert self.protocol is not None
        tables: list[Route] = []
        rules: list[Rule] = []
        for ifindex in self.uplinks:
            table = TABLE_BASE + ifindex
            defaults = [r for r in self.candidates.values() if r.nexthops[0].ifindex == ifindex]
            if not self.serving:  # park what main does not keep
                tables += [r.replace(table=table, protocol=self.protocol)
                           for r in defaults if r not in chosen]
                continue
            families = {r.family for r in defaults}
            links = [r for r in self.routing.routes
                     if r.table == RT_TABLE_MAIN and not r.is_default and r.kind == RTN_UNICAST
                     and r.family in families and len(r.nexthops) == 1
                     and r.nexthops[0].ifindex == ifindex and not r.nexthops[0].gateway]
            tables += [r.replace(table=table, protocol=self.protocol) for r in (*defaults, *links)]
            rules += [Rule(a.family, FROM_PRIORITY, table, a.address,
                           32 if a.family == AF_INET else 128, protocol=self.protocol)
                      for a in self.routing.addresses
                      if a.ifindex == ifindex and a.scope != RT_SCOPE_LINK]
            rules += [Rule(family, OIF_PRIORITY, table, oif=self.routing.links[ifindex],
                           protocol=self.protocol) for family in sorted(families)]
        return tables, rules

    def _main(self, wanted: Sequence[Route]) -> list[Change]:
        """Main's default routes as `wanted`: the others out (an IPv4
        multipath route rebuilt with the hops it keeps), the missing ones in
        (promoted from where they were parked)."""
        keys = {_key(r, r.nexthops[0]) for r in wanted}
        changes: list[Change] = []
        for route in self.main:
            kept = tuple(hop for hop in route.nexthops if _key(route, hop) in keys)
            if len(kept) == len(route.nexthops):
                continue
            changes.append(Delete(route))
            if kept:
                changes.append(Add(route.replace(nexthops=kept)))
        present = {_key(r, hop) for r in self.main for hop in r.nexthops}
        return changes + [Add(r) for r in wanted if _key(r, r.nexthops[0]) not in present]
