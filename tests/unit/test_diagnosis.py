"""The CLI's verdict, from hand-written snapshots."""

from __future__ import annotations

import socket

from multihome_hook.diagnosis import effective_rp_filter, verdict
from multihome_hook.kernel import Nexthop, Route, Routing, Rule

V4, V6 = socket.AF_INET, socket.AF_INET6
LINKS = {1: "lo", 2: "eth0", 3: "eth1"}


def default(family: int, dev: str, metric: int = 100) -> Route:
    index = {name: i for i, name in LINKS.items()}[dev]
    gateway = f"198.18.{8 + index}.1" if family == V4 else f"fd18:{8 + index}::1"
    return Route(family, metric, (Nexthop(index, dev, gateway),))


def snapshot(*routes: Route, rules: tuple[Rule, ...] = ()) -> Routing:
    return Routing(LINKS, (), routes, rules)


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
    assert notes == ["2 IPv4 default routes, rp_filter not strict on eth0, eth1: replies are "
                     "accepted on every uplink"]


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
