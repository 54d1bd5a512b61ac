"""Why packets vanish: a verdict from a snapshot, pure and testable."""

from __future__ import annotations

from collections.abc import Mapping

from .kernel import (
    AF_INET,
    AF_INET6,
    ALL,
    RP_STRICT,
    RT_SCOPE_LINK,
    RT_TABLE_MAIN,
    RTN_UNICAST,
    Routing,
    natural_key,
)
from .modes import OWN_SUBNET_ONLY
from .plan import FROM_PRIORITY, OIF_PRIORITY, preferred


def effective_rp_filter(rp_filter: Mapping[str, int], interface: str) -> int:
    """The kernel applies max(all, interface)."""
    return max(rp_filter.get(ALL, 0), rp_filter.get(interface, 0))


def label(routing: Routing, ifindex: int, networks: Mapping[int, str]) -> str:
    """`eth1 (net-b)`: an interface with its podman network, where known."""
    name = routing.links.get(ifindex, str(ifindex))
    return f"{name} ({networks[ifindex]})" if ifindex in networks else name


def without_uplink(routing: Routing) -> list[int]:
    """Interfaces with a global IPv4 address and no IPv4 default route,
    neither in main nor in the table source-routing gives them, while
    another interface has one: what one-default leaves of the other
    networks (or an internal network)."""
    # A table serves only when a rule leads there (source routing's); a
    # default route parked in one (one-default's) waits for the primary to go.
    serving = {RT_TABLE_MAIN, *(rule.table for rule in routing.rules)}

    def has_default(ifindex: int) -> bool:
        return any(r.is_default and r.family == AF_INET and r.kind == RTN_UNICAST
                   and r.table in serving and any(nh.ifindex == ifindex for nh in r.nexthops)
                   for r in routing.routes)

    addressed = {a.ifindex for a in routing.addresses
                 if a.family == AF_INET and a.scope != RT_SCOPE_LINK}
    if not any(has_default(i) for i in addressed):
        return []
    return sorted((i for i in addressed if not has_default(i)),
                  key=lambda i: natural_key(routing.links.get(i, "")))


def verdict(routing: Routing, rp_filter: Mapping[str, int],
            networks: Mapping[int, str] | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes). A problem drops packets; a note is worth knowing.
    `networks`: interface index -> its podman network's name."""
    problems: list[str] = []
    notes: list[str] = []
    for ifindex in without_uplink(routing):
        notes.append(f"{label(routing, ifindex, networks or {})} has no default route: it "
                     f"{OWN_SUBNET_ONLY} (the one-default trade, or an internal network; "
                     "source-routing keeps every uplink)")
    hops = [(r, nh) for r in routing.defaults() if r.family == AF_INET for nh in r.nexthops]
    devices = sorted({nh.dev for _, nh in hops}, key=natural_key)
    if len(devices) > 1:
        # The route one-default would keep (lowest metric, then name). The
        # kernel's own pick among equal routes moves as neighbours age: the
        # message names this one as an example of where traffic goes.
        kept = preferred(hops)[1].dev
        strict = [d for d in devices if effective_rp_filter(rp_filter, d) == RP_STRICT]
        others = [d for d in strict if d != kept]
        if others:
            problems.append(
                f"{len(hops)} IPv4 default routes and strict rp_filter on {', '.join(strict)}: "
                f"replies arriving on {', '.join(others)} for traffic routed via {kept} "
                "are dropped")
        else:
            notes.append(f"{len(hops)} IPv4 default routes, rp_filter not strict on "
                         f"{', '.join(devices)}: replies are accepted on every uplink")
    ours = [r for r in routing.rules if r.priority in (FROM_PRIORITY, OIF_PRIORITY)]
    if ours:
        notes.append(f"source routing in place: {len(ours)} rules at priorities "
                     f"{FROM_PRIORITY}/{OIF_PRIORITY}")
    v6 = {nh.dev for r in routing.defaults() if r.family == AF_INET6 for nh in r.nexthops}
    if len(v6) > 1:
        notes.append(f"IPv6 default route spread over {', '.join(sorted(v6, key=natural_key))} "
                     "(IPv6 has no rp_filter: not dropped, but which uplink is used varies)")
    return problems, notes
