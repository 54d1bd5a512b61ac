"""Why packets vanish: a verdict from a snapshot, pure and testable."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from .kernel import (
    AF_INET,
    AF_INET6,
    ALL,
    RP_STRICT,
    RT_SCOPE_LINK,
    RT_TABLE_MAIN,
    RTN_UNICAST,
    Address,
    Routing,
    Rule,
    natural_key,
)
from .modes import OWN_SUBNET_ONLY
from .plan import FROM_PRIORITY, OIF_PRIORITY, preferred

# The rule every namespace starts with that looks up main.
MAIN_RULE = 32766


def effective_rp_filter(rp_filter: Mapping[str, int], interface: str) -> int:
    """The kernel applies max(all, interface)."""
    return max(rp_filter.get(ALL, 0), rp_filter.get(interface, 0))


def label(routing: Routing, ifindex: int, networks: Mapping[int, str]) -> str:
    """`eth1 (net-b)`: an interface with its podman network, where known."""
    name = routing.links.get(ifindex, str(ifindex))
    return f"{name} ({networks[ifindex]})" if ifindex in networks else name


def uplinks(routing: Routing) -> set[int]:
    """Interfaces with an IPv4 default route of their own, in main or in a
    table a rule leads to (source routing's; a default route parked in a
    table no rule names, one-default's, waits for the primary to go)."""
    serving = {RT_TABLE_MAIN, *(rule.table for rule in routing.rules)}
    return {nh.ifindex for r in routing.routes
            if r.is_default and r.family == AF_INET and r.kind == RTN_UNICAST
            and r.table in serving for nh in r.nexthops}


def _addresses(routing: Routing) -> list[Address]:
    """Global IPv4 addresses, in interface order."""
    return sorted((a for a in routing.addresses if a.family == AF_INET
                   and a.scope != RT_SCOPE_LINK),
                  key=lambda a: natural_key(routing.links.get(a.ifindex, "")))


def without_uplink(routing: Routing) -> list[int]:
    """Interfaces with a global IPv4 address and no IPv4 default route of
    their own while another interface has one: what one-default leaves of
    the other networks (or an internal network)."""
    found = uplinks(routing)
    addressed = list(dict.fromkeys(a.ifindex for a in _addresses(routing)))
    if not found.intersection(addressed):
        return []
    return [i for i in addressed if i not in found]


def reply_devices(routing: Routing, address: Address) -> tuple[list[int], int]:
    """Where an IPv4 reply from `address` to a host beyond every subnet may
    leave (an unbound socket: `oif` rules do not match it, rules with other
    selectors are skipped): the default routes of lowest metric in the
    table of the first rule that matches and has one (main's when no rules
    were read); and that metric."""
    source = ipaddress.ip_address(address.address)
    rules = sorted((r for r in routing.rules if r.family == AF_INET), key=lambda r: r.priority)
    for rule in rules or [Rule(AF_INET, MAIN_RULE, RT_TABLE_MAIN)]:
        if rule.foreign or rule.oif or (rule.src and source not in ipaddress.ip_network(
                f"{rule.src}/{rule.src_len}", strict=False)):
            continue
        defaults = [r for r in routing.routes if r.table == rule.table and r.is_default
                    and r.family == AF_INET and r.kind == RTN_UNICAST]
        if defaults:
            best = min(r.metric for r in defaults)
            return sorted({nh.ifindex for r in defaults if r.metric == best
                           for nh in r.nexthops}), best
    return [], 0


# What lies beyond an interface, by its podman network's driver.
BEYOND = {"bridge": "a bridge behind the host's NAT", "macvlan": "a macvlan onto the LAN",
          "ipvlan": "an ipvlan onto the LAN"}


def _beyond(ifindex: int, routing: Routing, networks: Mapping[int, str],
            kinds: Mapping[int, str]) -> str:
    """`eth1 (lan: a macvlan onto the LAN)`: label(), with what lies beyond
    the interface where its network's driver is known."""
    where = BEYOND.get(kinds.get(ifindex, ""))
    if ifindex in networks and where is not None:
        networks = {ifindex: f"{networks[ifindex]}: {where}"}
    return label(routing, ifindex, networks)


def _wrong_way(routing: Routing, networks: Mapping[int, str], kinds: Mapping[int, str],
               ports: Sequence[str]) -> list[str]:
    """Uplinks whose own address's replies leave by another uplink (measured:
    podman 6's published port beside a macvlan answers nothing; a bridge
    beside a bridge on a host that does not check sources still works)."""
    problems = []
    found = uplinks(routing)
    for address in _addresses(routing):
        if address.ifindex not in found:
            continue
        devices, metric = reply_devices(routing, address)
        others = [_beyond(i, routing, networks, kinds) for i in devices
                  if i != address.ifindex]
        if not others:
            continue
        how = ("may leave by " + "; ".join(others) + " (the same metric: the kernel picks one)"
               if address.ifindex in devices
               else "leave by " + "; ".join(others) + f" (metric {metric}, below its own)")
        own = _beyond(address.ifindex, routing, networks, kinds)
        problems.append(f"replies from {own}'s address {address.address} {how}: where sources "
                        "are checked (a strict host, anti-spoofing, the NAT of a port published "
                        "on its network) they are dropped"
                        + (f"; published: {', '.join(ports)}" if ports else ""))
    return problems


def verdict(routing: Routing, rp_filter: Mapping[str, int],
            networks: Mapping[int, str] | None = None, ports: Sequence[str] = (),
            kinds: Mapping[int, str] | None = None) -> tuple[list[str], list[str]]:
    """(problems, notes). A problem drops packets; a note is worth knowing.
    `networks`: interface index -> its podman network's name; `kinds`:
    interface index -> that network's driver; `ports`: the
    container's published ports (podman forwards them to the address of a
    bridge network, any of them: netavark orders its rules anew for each
    container)."""
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
                         f"{', '.join(devices)}: replies to what leaves are accepted on "
                         "every uplink")
    problems += _wrong_way(routing, networks or {}, kinds or {}, ports)
    ours = [r for r in routing.rules if r.priority in (FROM_PRIORITY, OIF_PRIORITY)]
    if ours:
        notes.append(f"source routing in place: {len(ours)} rules at priorities "
                     f"{FROM_PRIORITY}/{OIF_PRIORITY}")
    v6 = {nh.dev for r in routing.defaults() if r.family == AF_INET6 for nh in r.nexthops}
    if len(v6) > 1:
        notes.append(f"IPv6 default route spread over {', '.join(sorted(v6, key=natural_key))} "
                     "(IPv6 has no rp_filter: not dropped, but which uplink is used varies)")
    return problems, notes
