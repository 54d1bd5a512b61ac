"""Why packets vanish: findings from a snapshot, pure and testable.

One model for `diagnose` (a running container, as read) and `doctor` (the
containers this host would make). Each finding is a claim about packets,
held against the labs' probes (tests/rootlab/test_shapes.py):

- `problem`: traffic the container's networks and mode promise is dropped
  on this host now: replies to what it sends by an uplink (`outbound`),
  replies to what reaches one of its addresses (`address`), a published
  port (`port`), or no default route at all (`no-default`);
- `risk`: it gets through here, but only because nothing on its path checks
  sources (a reply that leaves by another bridge behind the same NAT);
- `limit`: what the mode gives up by design (one-default's other uplinks,
  an internal network) - never a published port;
- `note`: worth knowing, drops nothing.

Where a reply goes is the kernel's choice: the rules, then the lowest
metric of the table they lead to. Whether it arrives depends on who checks
its source on the way: the container's own filter (strict: the reply must
arrive on the interface the route back leads to), the host's filter on a
bridge it leaves by, the router of a macvlan or ipvlan LAN (which drops
sources that are not of its LAN, as real routers do).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

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
from .plan import FROM_PRIORITY, OIF_PRIORITY
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final, Literal

    Severity = Literal["problem", "risk", "limit", "note"]
    Status = Literal["healthy", "risk", "problem"]

# The rule every namespace starts with that looks up main.
MAIN_RULE = 32766
PROBLEM: Final = "problem"
RISK: Final = "risk"
LIMIT: Final = "limit"
NOTE: Final = "note"
OUTBOUND, ADDRESS, PORT, NO_DEFAULT = "outbound", "address", "port", "no-default"
# Network drivers whose far side is a LAN with a router of its own.
LAN_DRIVERS = ("macvlan", "ipvlan")
# What lies beyond an interface, by its podman network's driver.
BEYOND = {"bridge": "a bridge behind the host's NAT", "macvlan": "a macvlan onto the LAN",
          "ipvlan": "an ipvlan onto the LAN"}


class Finding(Record):
    """One claim: `severity` (problem, risk, limit, note), `kind` (what it
    is about: outbound, address, port, no-default; "" for the others)."""

    __slots__ = ("severity", "kind", "text")

    def __init__(self, severity: Severity, kind: str, text: str) -> None:
        self.severity: Severity = severity
        self.kind, self.text = kind, text


class Around(Record):
    """What is known of the container's surroundings, beyond its namespace.
    Interface index -> its podman network's name (`networks`), driver
    (`kinds`), and for a bridge the host's effective rp_filter on it
    (`host_filter`); the published ports ("HOSTPORT->PORT/PROTO") and the
    container addresses they lead to (`port_targets`; None: not known, any
    bridge's address may be the one)."""

    __slots__ = ("networks", "kinds", "host_filter", "ports", "port_targets")

    def __init__(self, networks: Mapping[int, str] | None = None,
                 kinds: Mapping[int, str] | None = None,
                 host_filter: Mapping[int, int] | None = None, ports: Sequence[str] = (),
                 port_targets: Sequence[str] | None = None) -> None:
        self.networks = networks or {}
        self.kinds = kinds or {}
        self.host_filter = host_filter or {}
        self.ports, self.port_targets = tuple(ports), port_targets


def status(findings: Sequence[Finding]) -> Status:
    """healthy, risk or problem: the worst finding."""
    severities = {f.severity for f in findings}
    return PROBLEM if PROBLEM in severities else RISK if RISK in severities else "healthy"


def effective_rp_filter(rp_filter: Mapping[str, int], interface: str) -> int:
    """The kernel applies max(all, interface)."""
    return max(rp_filter.get(ALL, 0), rp_filter.get(interface, 0))


def label(routing: Routing, ifindex: int, networks: Mapping[int, str]) -> str:
    """`eth1 (net-b)`: an interface with its podman network, where known."""
    name = routing.links.get(ifindex, str(ifindex))
    return f"{name} ({networks[ifindex]})" if ifindex in networks else name


def _serving(routing: Routing) -> set[int]:
    """The tables an unbound or bound socket may use: main and those rules
    lead to (one-default parks routes in a table no rule names)."""
    return {RT_TABLE_MAIN, *(rule.table for rule in routing.rules)}


def uplinks(routing: Routing) -> set[int]:
    """Interfaces with an IPv4 default route of their own, in main or in a
    table a rule leads to."""
    serving = _serving(routing)
    return {nh.ifindex for r in routing.routes
            if r.is_default and r.family == AF_INET and r.kind == RTN_UNICAST
            and r.table in serving for nh in r.nexthops}


def _addresses(routing: Routing) -> list[Address]:
    """Global IPv4 addresses, in interface order."""
    return sorted((a for a in routing.addresses if a.family == AF_INET
                   and a.scope != RT_SCOPE_LINK),
                  key=lambda a: natural_key(routing.links.get(a.ifindex, "")))


def multi_homed(routing: Routing) -> bool:
    """Global IPv4 addresses on two interfaces or more: a reply may leave by
    another interface than its address's."""
    return len({a.ifindex for a in _addresses(routing)}) > 1


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
    were read); and that metric. The container's strict filter checks a
    packet arriving for `address` against the same lookup."""
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


class _Judge:
    """The findings of one namespace, rule by rule."""

    def __init__(self, routing: Routing, rp_filter: Mapping[str, int], around: Around) -> None:
        self.routing, self.rp_filter, self.around = routing, rp_filter, around
        self.uplinks = uplinks(routing)
        self.addresses = {a.ifindex: a for a in reversed(_addresses(routing))}
        # Where replies from each address leave: every rule below asks.
        self.back = {i: reply_devices(routing, a) for i, a in self.addresses.items()}
        self.findings: list[Finding] = []

    def add(self, severity: Severity, kind: str, text: str) -> None:
        self.findings.append(Finding(severity, kind, text))

    def name(self, ifindex: int) -> str:
        """`eth1 (lan: a macvlan onto the LAN)`: label() with what lies beyond
        (`eth1 (a macvlan onto the LAN)` where the network's name is not known)."""
        networks, where = self.around.networks, BEYOND.get(self.around.kinds.get(ifindex, ""))
        if where is not None:
            named = f"{networks[ifindex]}: {where}" if ifindex in networks else where
            return label(self.routing, ifindex, {ifindex: named})
        return label(self.routing, ifindex, networks)

    def strict(self, ifindex: int) -> bool:
        dev = self.routing.links.get(ifindex, "")
        return effective_rp_filter(self.rp_filter, dev) == RP_STRICT

    def lost_on_the_way(self, own: int, out: int) -> str | None:
        """Why a packet from `own`'s address that leaves by `out` is dropped
        beyond the container, or None when nothing on the way checks its
        source."""
        kinds = self.around.kinds
        if kinds.get(out) in LAN_DRIVERS:
            return f"the router of {self.name(out)} drops sources that are not of its LAN"
        if kinds.get(own) in LAN_DRIVERS:
            return (f"the far side expects {self.name(own)}'s address from its own LAN "
                    "and drops it")
        if self.around.host_filter.get(out) == RP_STRICT:
            return f"the host filters strictly on the bridge of {self.name(out)}"
        return None

    def replies(self, ifindex: int) -> tuple[str, list[str], bool] | None:
        """Where replies from `ifindex`'s address go, if not only by it:
        (how, why they are dropped, whether they are) or None."""
        back, metric = self.back[ifindex]
        wrong = [d for d in back if d != ifindex]
        if not wrong:
            return None
        others = "; ".join(self.name(d) for d in wrong)
        how = (f"may leave by {others} (the same metric: the kernel picks one)"
               if ifindex in back else f"leave by {others} (metric {metric}, below its own)")
        why = [reason for d in wrong if (reason := self.lost_on_the_way(ifindex, d))]
        if self.strict(ifindex):
            why.insert(0, f"strict rp_filter on {self.routing.links[ifindex]} drops what "
                          "arrives there, the route back leading elsewhere")
        return how, why, bool(why)

    # --- the rules ---------------------------------------------------------

    def no_default(self) -> None:
        main = [r for r in self.routing.defaults() if r.family == AF_INET]
        elsewhere = [r for r in self.routing.routes if r.is_default and r.family == AF_INET
                     and r.table != RT_TABLE_MAIN]
        if main or not elsewhere:
            return  # a default route, or none ever (internal networks only)
        self.add(PROBLEM, NO_DEFAULT, "no IPv4 default route in main, while "
                 f"{len(elsewhere)} wait(s) in tables of their own: the primary network is "
                 "gone (podman network disconnect), and nothing beyond the container's own "
                 "subnets is reached")

    def stale_rules(self) -> None:
        present = {a.address for a in self.routing.addresses}
        names = set(self.routing.links.values())
        stale = [r for r in self.routing.rules if r.priority in (FROM_PRIORITY, OIF_PRIORITY)
                 and ((r.src and r.src not in present) or (r.oif and r.oif not in names))]
        live = [r for r in self.routing.rules if r.priority in (FROM_PRIORITY, OIF_PRIORITY)
                and r not in stale]
        if live:
            self.add(NOTE, "", f"source routing in place: {len(live)} rules at priorities "
                     f"{FROM_PRIORITY}/{OIF_PRIORITY}")
        if stale:
            self.add(NOTE, "", f"{len(stale)} rule(s) name an address or interface that is "
                     "gone: " + "; ".join(map(str, stale)))

    def outbound(self) -> None:
        """Replies to what leaves by each uplink: the container's strict
        filter wants them on the interface its route back leads to."""
        hops = [nh for r in self.routing.defaults() if r.family == AF_INET for nh in r.nexthops]
        tied = len({nh.ifindex for nh in hops}) > 1 and len({
            r.metric for r in self.routing.defaults() if r.family == AF_INET}) == 1
        for ifindex in self.in_order(self.uplinks & self.addresses.keys()):
            back, _ = self.back[ifindex]
            if not self.strict(ifindex) or back == [ifindex]:
                continue
            dev = self.routing.links[ifindex]
            others = ", ".join(self.routing.links.get(d, str(d)) for d in back if d != ifindex)
            how = (f"may lead by {others} (the same metric: the kernel picks one)"
                   if ifindex in back else f"leads by {others}")
            also = (f"; unbound traffic too, whenever the kernel sends it by one of the "
                    f"{len(hops)} IPv4 default routes and routes back by another"
                    if tied and ifindex in back else "")
            self.add(PROBLEM, OUTBOUND,
                     f"traffic leaving by {self.name(ifindex)} (bound to it: ping -I {dev}, "
                     f"SO_BINDTODEVICE) loses its replies: strict rp_filter on {dev}, and the "
                     f"route back {how}{also}")
        devices = sorted({nh.dev for nh in hops}, key=natural_key)
        if len(devices) > 1 and not any(self.strict(nh.ifindex) for nh in hops):
            self.add(NOTE, "", f"{len(hops)} IPv4 default routes, rp_filter not strict on "
                     f"{', '.join(devices)}: replies to what leaves are accepted on every "
                     "uplink")

    def wrong_way(self, kind: str, ifindex: int, what: str, unchecked: str) -> None:
        """A problem (or, where nothing checks sources, a risk) of `kind` when
        replies from `ifindex`'s address leave by another uplink; `what`
        names those replies, `unchecked` says why a risk gets through."""
        found = self.replies(ifindex)
        if found is None:
            return
        how, why, dropped = found
        if dropped:
            self.add(PROBLEM, kind, f"{what} {how}: dropped ({'; '.join(why)})")
        else:
            self.add(RISK, kind, f"{what} {how}: {unchecked}")

    def in_order(self, ifindexes: Iterable[int]) -> list[int]:
        return sorted(ifindexes, key=lambda i: natural_key(self.routing.links.get(i, "")))

    def address(self) -> None:
        """Replies to what reaches each uplink's address."""
        for ifindex in self.in_order(self.uplinks & self.addresses.keys()):
            self.wrong_way(ADDRESS, ifindex, f"replies from {self.name(ifindex)}'s address "
                           f"{self.addresses[ifindex].address}", "they get through because "
                           "nothing on the way checks sources; a strict host or anti-spoofing "
                           "would drop them")

    def port(self) -> None:
        """A published port leads to a bridge's address (netavark DNATs it):
        its replies must leave by that bridge."""
        if not self.around.ports:
            return
        ports = ", ".join(self.around.ports)
        targets = self.around.port_targets
        if targets is None:  # any bridge's address (netavark picks one per container)
            bridges = [i for i in self.addresses if self.around.kinds.get(i) == "bridge"]
            candidates = bridges or list(self.addresses)
            leads = "may lead to"
        else:
            candidates = [a.ifindex for a in self.addresses.values() if a.address in targets]
            leads = "leads to"
        for ifindex in self.in_order(candidates):
            self.wrong_way(PORT, ifindex, f"published {ports} {leads} {self.name(ifindex)}'s "
                           f"address {self.addresses[ifindex].address}; its replies",
                           "they get through because the host does not check sources there")

    def limits(self) -> None:
        for ifindex in without_uplink(self.routing):
            self.add(LIMIT, "", f"{label(self.routing, ifindex, self.around.networks)} has no "
                     f"default route: it {OWN_SUBNET_ONLY} (the one-default trade, or an "
                     "internal network; source-routing keeps every uplink)")

    def ipv6(self) -> None:
        v6 = {nh.dev for r in self.routing.defaults() if r.family == AF_INET6
              for nh in r.nexthops}
        if len(v6) > 1:
            self.add(NOTE, "", f"IPv6 default route spread over "
                     f"{', '.join(sorted(v6, key=natural_key))} (IPv6 has no rp_filter: not "
                     "dropped, but which uplink is used varies)")


def verdict(routing: Routing, rp_filter: Mapping[str, int],
            around: Around | None = None) -> list[Finding]:
    """Every finding, problems first."""
    judge = _Judge(routing, rp_filter, around or Around())
    judge.no_default()
    judge.outbound()
    judge.address()
    judge.port()
    judge.limits()
    judge.stale_rules()
    judge.ipv6()
    order = (PROBLEM, RISK, LIMIT, NOTE)
    return sorted(judge.findings, key=lambda f: order.index(f.severity))
