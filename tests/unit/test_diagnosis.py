"""The CLI's verdict, from hand-written snapshots."""

from __future__ import annotations

import socket

from multihome_hook.diagnosis import effective_rp_filter, verdict
from multihome_hook.kernel import Address, Nexthop, Route, Routing, Rule

V4, V6 = socket.AF_INET, socket.AF_INET6
LINKS = {1: "lo", 2: "eth0", 3: "eth1"}


def default(family: int, dev: str, metric: int = 100) -> Route:
    index = {name: i for i, name in LINKS.items()}[dev]
    gateway = f"198.18.{8 + index}.1" if family == V4 else f"fd18:{8 + index}::1"
    return Route(family, metric, (Nexthop(index, dev, gateway),))


def snapshot(*routes: Route, rules: tuple[Rule, ...] = (),
             addresses: tuple[Address, ...] = ()) -> Routing:
    return Routing(LINKS, addresses, routes, rules)


# eth0's and eth1's addresses, in the gateways' subnets.
ADDRESSES = (Address(2, V4, "198.18.10.2", 24), Address(3, V4, "198.18.11.2", 24))
# The rules every namespace starts with.
START = (Rule(V4, 0, 255), Rule(V4, 32766, 254), Rule(V4, 32767, 253))


STRICT = {"all": 1, "default": 1, "eth0": 1, "eth1": 1}


def test_effective_rp_filter_is_the_max_of_all_and_the_interface() -> None:
    assert effective_rp_filter({"all": 0, "eth0": 1}, "eth0") == 1
    assert effective_rp_filter({"all": 2, "eth0": 1}, "eth0") == 2
    assert effective_rp_filter({"all": 0}, "eth9") == 0


def test_two_ipv4_defaults_under_strict_rp_filter_is_the_problem() -> None:
    problems, notes = verdict(snapshot(default(V4, "eth1"), default(V4, "eth0")), STRICT)
    assert problems == ["2 IPv4 default routes and strict rp_filter on eth0, eth1: replies "
                        "arriving on eth1 for traffic routed via eth0 are dropped"]
    assert notes == []


def test_the_preferred_route_is_the_lowest_metric() -> None:
    problems, _ = verdict(snapshot(default(V4, "eth0", 200), default(V4, "eth1", 100)), STRICT)
    assert problems and "replies arriving on eth0 for traffic routed via eth1" in problems[0]


def test_loose_rp_filter_is_only_a_note() -> None:
    problems, notes = verdict(snapshot(default(V4, "eth0"), default(V4, "eth1")),
                              {**STRICT, "all": 2})
    assert problems == []
    assert notes == ["2 IPv4 default routes, rp_filter not strict on eth0, eth1: replies to "
                     "what leaves are accepted on every uplink"]


def test_one_default_per_family_is_healthy() -> None:
    assert verdict(snapshot(default(V4, "eth0"), default(V6, "eth0")), STRICT) == ([], [])


def test_ipv6_spread_over_uplinks_is_a_note_not_a_problem() -> None:
    problems, notes = verdict(snapshot(default(V6, "eth0"), default(V6, "eth1")), STRICT)
    assert problems == [] and "IPv6 default route spread over eth0, eth1" in notes[0]


def test_source_routing_in_place_is_noted() -> None:
    rules = (Rule(V4, 32700, 2002, "198.18.10.2", 32), Rule(V4, 32701, 2002, oif="eth0"))
    problems, notes = verdict(snapshot(default(V4, "eth0"), rules=rules), STRICT)
    assert problems == [] and notes == ["source routing in place: 2 rules at priorities "
                                        "32700/32701"]


def test_replies_from_an_address_leaving_by_a_lower_metric_are_the_problem() -> None:
    """netavark 2.0: the macvlan (eth1) at 99, the bridge (eth0) at 100;
    replies from the bridge's address leave by the macvlan."""
    routing = snapshot(default(V4, "eth0", 100), default(V4, "eth1", 99), rules=START,
                       addresses=ADDRESSES)
    problems, _ = verdict(routing, {"all": 2}, {2: "web", 3: "lan"})
    assert problems == ["replies from eth0 (web)'s address 198.18.10.2 leave by eth1 (lan) "
                        "(metric 99, below its own): where sources are checked (a strict "
                        "host, anti-spoofing, the NAT of a port published on its network) "
                        "they are dropped"]


def test_what_lies_beyond_each_interface_is_named() -> None:
    routing = snapshot(default(V4, "eth0", 100), default(V4, "eth1", 99), addresses=ADDRESSES)
    problems, _ = verdict(routing, {"all": 2}, {2: "web", 3: "lan"},
                          kinds={2: "bridge", 3: "macvlan"})
    assert problems[0].startswith(
        "replies from eth0 (web: a bridge behind the host's NAT)'s address 198.18.10.2 leave by "
        "eth1 (lan: a macvlan onto the LAN) (metric 99, below its own): "), problems


def test_the_published_ports_are_named() -> None:
    routing = snapshot(default(V4, "eth0", 100), default(V4, "eth1", 99), addresses=ADDRESSES)
    problems, _ = verdict(routing, {"all": 2}, ports=["18080->8080/tcp"])
    assert problems[0].endswith("they are dropped; published: 18080->8080/tcp"), problems


def test_replies_under_equal_metrics_may_leave_by_either() -> None:
    routing = snapshot(default(V4, "eth0"), default(V4, "eth1"), addresses=ADDRESSES)
    problems, _ = verdict(routing, {"all": 2})
    assert [p.split(" (")[0] for p in problems] == [
        "replies from eth0's address 198.18.10.2 may leave by eth1",
        "replies from eth1's address 198.18.11.2 may leave by eth0"]


def test_replies_follow_source_rules_into_their_own_table() -> None:
    """Source routing: each address's rule leads to its uplink's table;
    one-default: the other uplink has no default of its own any more."""
    tables = (default(V4, "eth0").replace(table=2002), default(V4, "eth1").replace(table=2003))
    rules = (*START, Rule(V4, 32700, 2002, "198.18.10.2", 32),
             Rule(V4, 32700, 2003, "198.18.11.2", 32), Rule(V4, 32701, 2003, oif="eth1"))
    routing = snapshot(default(V4, "eth1", 99), *tables, rules=rules, addresses=ADDRESSES)
    assert verdict(routing, STRICT)[0] == []
    parked = snapshot(default(V4, "eth0"), tables[1], rules=START, addresses=ADDRESSES)
    problems, notes = verdict(parked, STRICT)
    assert problems == [] and notes[0].startswith("eth1 has no default route")
