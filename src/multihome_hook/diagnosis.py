"""Why packets vanish: a verdict from a snapshot, pure and testable."""

from __future__ import annotations

from collections.abc import Mapping

from .kernel import AF_INET, AF_INET6, ALL, STRICT, Routing, natural_key
from .plan import FROM_PRIORITY, OIF_PRIORITY, preferred


def effective_rp_filter(rp_filter: Mapping[str, int], interface: str) -> int:
    """The kernel applies max(all, interface)."""
    return max(rp_filter.get(ALL, 0), rp_filter.get(interface, 0))


def verdict(routing: Routing, rp_filter: Mapping[str, int]) -> tuple[list[str], list[str]]:
    """(problems, notes). A problem drops packets; a note is worth knowing."""
    problems: list[str] = []
    notes: list[str] = []
    hops = [(r, nh) for r in routing.defaults() if r.family == AF_INET for nh in r.nexthops]
    devices = sorted({nh.dev for _, nh in hops}, key=natural_key)
    if len(devices) > 1:
        # The route one-default would keep (lowest metric, then name). The
        # kernel's own pick among equal routes moves as neighbours age: the
        # message names this one as an example of where traffic goes.
        kept = preferred(hops)[1].dev
        strict = [d for d in devices if effective_rp_filter(rp_filter, d) == STRICT]
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
