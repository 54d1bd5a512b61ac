"""plan.loose and plan.one_default, on hand-written snapshots (no I/O).

Conventions of the snapshots built here: interface ethN has ifindex N + 2
(lo is 1), the IPv4 network 198.18.(10+N).0/24 and the IPv6 network
fd18:(10+N)::/64; the container's address is .5 / ::5, the gateway .1 / ::1.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import pytest

from multihome_hook import plan
from multihome_hook.errors import InUse, UnusablePrimary
from multihome_hook.kernel import (
    NO_ROUTING,
    RT_TABLE_MAIN,
    Address,
    Nexthop,
    Route,
    Routing,
    Rule,
    Snapshot,
    natural_key,
)
from multihome_hook.modes import FIXES
from multihome_hook.plan import Add, Delete, SetRpFilter
from multihome_hook.primary import Gateway, Name, Subnet

if TYPE_CHECKING:
    from multihome_hook.modes import Planner
    from multihome_hook.plan import Change
    from multihome_hook.primary import Primary

V4, V6 = socket.AF_INET, socket.AF_INET6
RTPROT_STATIC = 4


# --- snapshot builders -------------------------------------------------------

def number(dev: str) -> int:
    return int(dev.removeprefix("eth"))


def ifindex(dev: str) -> int:
    return number(dev) + 2


def gateway(dev: str, family: int) -> str:
    n = 10 + number(dev)
    return f"198.18.{n}.1" if family == V4 else f"fd18:{n}::1"


def hop(dev: str, family: int = V4) -> Nexthop:
    return Nexthop(ifindex(dev), dev, gateway(dev, family))


def route4(*devs: str, metric: int = 100, protocol: int = 0) -> Route:
    """An IPv4 default route; several devs make one multipath route."""
    return Route(family=V4, metric=metric, nexthops=tuple(hop(d) for d in devs),
                 protocol=protocol)


def route6(dev: str, metric: int = 1024) -> Route:
    """One IPv6 default nexthop (the kernel keeps one route per nexthop)."""
    return Route(family=V6, metric=metric, nexthops=(hop(dev, V6),))


def addresses(dev: str) -> tuple[Address, Address]:
    n = 10 + number(dev)
    return (Address(ifindex(dev), V4, f"198.18.{n}.5", 24),
            Address(ifindex(dev), V6, f"fd18:{n}::5", 64))


def state(*routes: Route, devs: Iterable[str] = (), rules: Iterable[Rule] = ()) -> Snapshot:
    """A snapshot with the given routes (and rules); every interface they
    use, plus `devs`, exists and has one address per family."""
    names = {nh.dev for r in routes for nh in r.nexthops} | set(devs)
    ordered = sorted(names, key=number)
    links: dict[int, str] = {1: "lo", **{ifindex(d): d for d in ordered}}
    return Snapshot({}, Routing(links=links,
                                addresses=tuple(a for d in ordered for a in addresses(d)),
                                routes=routes, rules=tuple(rules)))


def sysctls(rp_filter: Mapping[str, int]) -> Snapshot:
    return Snapshot(rp_filter, NO_ROUTING)


def parked(route: Route) -> Route:
    """Where one-default keeps a default route it takes out of main (one nexthop)."""
    (hop,) = route.nexthops
    return route.replace(table=plan.TABLE_BASE + hop.ifindex, protocol=plan.RTPROT_ONE_DEFAULT)


def singles(route: Route) -> list[Route]:
    return [route.replace(nexthops=(hop,)) for hop in route.nexthops]


def deleted(*routes: Route) -> list[Change]:
    """What one-default plans for routes it takes out of main: parked first
    (by interface, in natural order), then deleted."""
    hops = [r for route in routes for r in singles(route)]
    parks: list[Change] = [Add(parked(r)) for r in sorted(
        hops, key=lambda r: natural_key(r.nexthops[0].dev))]
    return parks + [Delete(r) for r in routes]


def net(text: str) -> Primary:
    return Subnet(ipaddress.ip_network(text))


def via(text: str) -> Primary:
    return Gateway(ipaddress.ip_address(text))


def assert_one_line(text: str) -> None:
    assert text
    assert text.splitlines() == [text]


# --- loose --------------------------------------------------------------------

@pytest.mark.parametrize(("rp_filter", "expected"), [
    pytest.param({"all": 1, "default": 1, "eth0": 1, "eth1": 1},
                 ["all", "default", "eth0", "eth1"], id="all-strict"),
    pytest.param({"all": 0, "default": 1, "eth0": 2, "eth1": 1, "lo": 0},
                 ["default", "eth1"], id="only-where-strict"),
    pytest.param({"eth1": 1, "lo": 1, "default": 1, "eth0": 1, "all": 1},
                 ["all", "default", "eth0", "eth1", "lo"], id="order"),
    pytest.param({"all": 1, "eth0": 1}, ["all", "eth0"], id="default-missing"),
    pytest.param({"all": 0, "default": 2, "eth0": 0, "eth1": 2, "lo": 0}, [], id="nothing"),
    pytest.param({}, [], id="empty"),
])
def test_loose(rp_filter: Mapping[str, int], expected: list[str]) -> None:
    assert plan.loose(sysctls(rp_filter)) == [SetRpFilter(name, 1, 2) for name in expected]


@pytest.mark.parametrize("value", [0, 2])
def test_loose_never_touches_0_or_2(value: int) -> None:
    assert plan.loose(sysctls({"all": value, "default": value, "eth0": value})) == []


# --- one_default: IPv4, automatic choice -----------------------------------------

@pytest.mark.parametrize("family", [V4, V6])
@pytest.mark.parametrize(("kept", "dropped"), [
    ("eth0", "eth1"),
    ("eth2", "eth10"),  # natural order, not eth10 < eth2
])
@pytest.mark.parametrize("reverse", [False, True], ids=["listed-in-order", "listed-reversed"])
def test_tie_goes_to_the_natural_first_name(family: int, kept: str, dropped: str,
                                            reverse: bool) -> None:
    make = route4 if family == V4 else route6
    routes = [make(kept), make(dropped)]
    if reverse:
        routes.reverse()
    assert plan.one_default(state(*routes)) == deleted(make(dropped))


@pytest.mark.parametrize("family", [V4, V6])
def test_lower_metric_wins_over_name(family: int) -> None:
    make = route4 if family == V4 else route6
    eth0, eth1 = make("eth0", metric=200), make("eth1", metric=100)
    assert plan.one_default(state(eth0, eth1)) == deleted(eth0)


def test_three_networks_two_deletions() -> None:
    eth2, eth0, eth1 = route4("eth2"), route4("eth0"), route4("eth1")
    assert plan.one_default(state(eth2, eth0, eth1)) == deleted(eth2, eth1)


@pytest.mark.parametrize("primary", [None, Name("eth0")])
@pytest.mark.parametrize("snapshot", [
    pytest.param(state(route4("eth0"), devs=["eth1"]), id="one-v4-default"),
    pytest.param(state(route4("eth0"), route6("eth0"), devs=["eth1"]), id="one-per-family"),
    pytest.param(state(route6("eth0"), devs=["eth1"]), id="one-v6-default"),
])
def test_single_default_is_left_alone(snapshot: Snapshot, primary: Primary | None) -> None:
    assert plan.one_default(snapshot, primary=primary) == []


def test_no_default_route_no_change() -> None:
    assert plan.one_default(state(devs=["eth0", "eth1"])) == []


# --- one_default: IPv6 and dual stack ----------------------------------------------

def test_ipv6_multipath_keeps_one_nexthop() -> None:
    eth0, eth1, eth2 = route6("eth0"), route6("eth1"), route6("eth2")
    assert plan.one_default(state(eth1, eth0, eth2)) == deleted(eth1, eth2)


def test_dual_stack_families_decided_independently() -> None:
    v4_eth0, v4_eth1 = route4("eth0", metric=200), route4("eth1", metric=100)
    v6_eth0, v6_eth1 = route6("eth0"), route6("eth1")
    snapshot = state(v4_eth0, v6_eth0, v4_eth1, v6_eth1)
    assert plan.one_default(snapshot) == deleted(v4_eth0, v6_eth1)


# --- one_default: IPv4 multipath ----------------------------------------------------

@pytest.mark.parametrize(("primary", "kept"), [(None, "eth0"), (Name("eth1"), "eth1")])
def test_ipv4_multipath_is_rebuilt_with_the_kept_nexthop(primary: Primary | None,
                                                         kept: str) -> None:
    multipath = route4("eth0", "eth1", metric=50, protocol=RTPROT_STATIC)
    changes = plan.one_default(state(multipath), primary=primary)
    rebuilt = multipath.replace(nexthops=(hop(kept),))
    dropped = multipath.replace(nexthops=tuple(h for h in multipath.nexthops if h.dev != kept))
    assert changes == [Add(parked(dropped)), Delete(multipath), Add(rebuilt)]
    assert rebuilt.protocol == RTPROT_STATIC and rebuilt.metric == 50


def test_ipv4_multipath_losing_to_another_route_is_deleted_whole() -> None:
    multipath, single = route4("eth0", "eth1", metric=100), route4("eth2", metric=50)
    assert plan.one_default(state(multipath, single)) == deleted(multipath)


def test_ipv4_multipath_holding_the_primary_loses_its_other_nexthops() -> None:
    single, multipath = route4("eth0", metric=50), route4("eth1", "eth2", metric=100)
    changes = plan.one_default(state(single, multipath), primary=Name("eth2"))
    assert changes == [Add(parked(single)), Add(parked(route4("eth1", metric=100))),
                       Delete(single), Delete(multipath),
                       Add(multipath.replace(nexthops=(hop("eth2"),)))]


# --- one_default: primary -----------------------------------------------------------

@pytest.mark.parametrize("primary", [
    Name("eth1"),
    net("198.18.11.0/24"),
    via("198.18.11.1"),
    net("fd18:11::/64"),
    via("fd18:11::1"),
], ids=str)
def test_primary_keeps_its_default_routes(primary: Primary) -> None:
    # eth1 loses on metric in IPv4 and on name in IPv6: the primary overrides both.
    v4_eth0, v4_eth1 = route4("eth0", metric=100), route4("eth1", metric=200)
    v6_eth0, v6_eth1 = route6("eth0"), route6("eth1")
    snapshot = state(v4_eth0, v4_eth1, v6_eth0, v6_eth1, devs=["eth2"])
    assert plan.one_default(snapshot, primary=primary) == deleted(v4_eth0, v6_eth0)


def test_primary_without_default_in_one_family_falls_back_there() -> None:
    v4_eth0, v4_eth1 = route4("eth0"), route4("eth1")
    v6_eth0, v6_eth2 = route6("eth0"), route6("eth2")
    snapshot = state(v4_eth0, v4_eth1, v6_eth2, v6_eth0)
    assert plan.one_default(snapshot, primary=Name("eth1")) == deleted(v4_eth0, v6_eth2)


@pytest.mark.parametrize(("primary", "message"), [
    (Name("eth9"), "matches no interface"),
    (net("198.18.99.0/24"), "matches no interface"),
    (net("fd18:99::/64"), "matches no interface"),
    (via("198.18.11.254"), "matches no interface"),
    (via("198.18.11.5"), "matches no interface"),  # an address, not a gateway
    (Name("eth2"), "has no default route"),
    (net("198.18.12.0/24"), "has no default route"),
    (net("198.18.0.0/16"), "ambiguous"),
    (net("fd18::/16"), "ambiguous"),
], ids=str)
def test_primary_errors(primary: Primary, message: str) -> None:
    snapshot = state(route4("eth0"), route4("eth1"), route6("eth0"), devs=["eth2"])
    with pytest.raises(UnusablePrimary, match=message) as info:
        plan.one_default(snapshot, primary=primary)
    assert_one_line(str(info.value))
    assert str(primary) in str(info.value)


def test_ambiguous_primary_names_the_interfaces() -> None:
    with pytest.raises(UnusablePrimary) as info:
        plan.one_default(state(route4("eth0"), route4("eth1")), primary=net("198.18.0.0/16"))
    assert "eth0, eth1" in str(info.value)


# --- changes --------------------------------------------------------------------------

def all_changes() -> list[Change]:
    multipath = route4("eth0", "eth1")
    changes: list[Change] = [
        *plan.loose(sysctls({"all": 1, "default": 1, "eth0": 1})),
        *plan.one_default(state(multipath, route6("eth0"), route6("eth1"))),
        SetRpFilter("eth1", 2, 1),
    ]
    assert {type(c) for c in changes} == {SetRpFilter, Delete, Add}
    return changes


@pytest.mark.parametrize("change", all_changes(), ids=str)
def test_change_inverse_and_str(change: Change) -> None:
    assert change.inverse().inverse() == change
    assert change.inverse() != change
    assert_one_line(str(change))
    assert_one_line(str(change.inverse()))


@pytest.mark.parametrize(("change", "text"), [
    (SetRpFilter("eth0", 1, 2), "rp_filter eth0 1->2"),
    (Delete(route4("eth1")), "delete IPv4 default via 198.18.11.1 dev eth1 metric 100"),
    (Add(route6("eth0")), "add IPv6 default via fd18:10::1 dev eth0 metric 1024"),
    (Delete(route4("eth0", "eth1", metric=5)),
     "delete IPv4 default via 198.18.10.1 dev eth0 via 198.18.11.1 dev eth1 metric 5"),
])
def test_change_str(change: Change, text: str) -> None:
    assert str(change) == text


def test_inverse_types() -> None:
    route = route4("eth0")
    assert Delete(route).inverse() == Add(route)
    assert Add(route).inverse() == Delete(route)
    assert SetRpFilter("eth0", 1, 2).inverse() == SetRpFilter("eth0", 2, 1)


# --- natural_key ---------------------------------------------------------------------

def test_natural_key_sorts_numbers_by_value() -> None:
    names = ["eth10", "veth1", "eth2", "br-lan.10", "eth1", "br-lan.9", "eth0", "lo"]
    assert sorted(names, key=natural_key) == [
        "br-lan.9", "br-lan.10", "eth0", "eth1", "eth2", "eth10", "lo", "veth1"]


@pytest.mark.parametrize(("first", "second"), [
    ("eth2", "eth10"),
    ("eth9", "eth10"),
    ("eth1", "eth1a"),
    ("eth1a", "eth1b"),
    ("eth1.2", "eth1.10"),
    ("0", "a"),  # digits and letters compare without a TypeError
    ("a0", "aa"),
])
def test_natural_key_order(first: str, second: str) -> None:
    assert natural_key(first) < natural_key(second)


@pytest.mark.parametrize(("name", "key"), [
    ("", ()),
    ("eth٣", ((1, "eth"), (0, 3))),  # a decimal digit of another script is a number
    ("eth1²", ((1, "eth"), (0, 1), (1, "²"))),  # a superscript is not: no int() error
    ("²", ((1, "²"),)),
])
def test_natural_key_of_any_name(name: str, key: tuple[tuple[int, int | str], ...]) -> None:
    # Kernel interface names may hold any non-blank character but '/' and ':'.
    assert natural_key(name) == key


# --- converging: what the hook owns, from the namespace as it is now ---------------

def applied(changes: Iterable[Change], snapshot: Snapshot) -> Snapshot:
    """The snapshot after `changes` (routes and rules), as the kernel would hold it."""
    routes, rules = list(snapshot.routing.routes), list(snapshot.routing.rules)
    for change in changes:
        assert isinstance(change, (Add, Delete))
        items: list[Route] | list[Rule] = routes if isinstance(change.item, Route) else rules
        if isinstance(change, Add):
            items.append(change.item)  # type: ignore[arg-type]
        else:
            items.remove(change.item)  # type: ignore[arg-type]
    return Snapshot(snapshot.rp_filter, snapshot.routing.replace(routes=tuple(routes),
                                                                  rules=tuple(rules)))


MODES = [m.planner for m in FIXES if m.routes]


@pytest.mark.parametrize("planner", MODES)
def test_a_second_run_changes_nothing(planner: Planner) -> None:
    first = state(route4("eth0"), route4("eth1"), route6("eth0"), route6("eth1"))
    after = applied(planner(first), first)
    assert planner(after) == []


@pytest.mark.parametrize("planner", MODES)
def test_losing_the_primary_promotes_a_parked_default(planner: Planner) -> None:
    first = state(route4("eth0"), route4("eth1"), route4("eth2"))
    after = applied(planner(first, primary=Name("eth0")), first)
    # podman network disconnect: eth0 and every route through it are gone;
    # rules stay (the kernel keeps them).
    routing = after.routing
    lost = Snapshot({}, routing.replace(
        links={i: n for i, n in routing.links.items() if n != "eth0"},
        addresses=tuple(a for a in routing.addresses if a.ifindex != ifindex("eth0")),
        routes=tuple(r for r in routing.routes if r.nexthops[0].dev != "eth0")))
    assert not lost.routing.defaults()  # no default route left in main
    changes = planner(lost)
    converged = applied(changes, lost)
    assert [r.nexthops[0].dev for r in converged.routing.defaults()] == ["eth1"]
    assert not [r for r in converged.routing.rules if r.table == plan.TABLE_BASE + ifindex("eth0")]
    assert planner(converged) == []


def test_reconnect_replaces_the_stale_rules_of_an_interface() -> None:
    first = state(route4("eth0"), route4("eth1"))
    after = applied(plan.source_routing(first), first)
    # eth1 disconnected and connected again: same name, new ifindex and address.
    old = ifindex("eth1")
    new_hop = Nexthop(old + 10, "eth1", "198.18.11.1")
    routing = after.routing
    reconnected = routing.replace(
        links={**{i: n for i, n in routing.links.items() if n != "eth1"}, old + 10: "eth1"},
        addresses=tuple(a.replace(ifindex=old + 10, address=a.address.replace("5", "6"))
                        if a.ifindex == old else a for a in routing.addresses),
        routes=(*[r for r in routing.routes if r.nexthops[0].dev != "eth1"],
                route4("eth1").replace(nexthops=(new_hop,))))
    changes = plan.source_routing(Snapshot({}, reconnected))
    deleted_rules = {c.item for c in changes if isinstance(c, Delete) and isinstance(c.item, Rule)}
    assert {r.table for r in deleted_rules} == {plan.TABLE_BASE + old}
    assert len(deleted_rules) == 3  # from 198.18.11.5, from fd18:11::5, oif eth1
    again = applied(changes, Snapshot({}, reconnected))
    assert plan.source_routing(again) == []
    assert len(again.routing.defaults()) == 1


def test_mode_switch_is_refused_unless_asked_for() -> None:
    first = state(route4("eth0"), route4("eth1"))
    after = applied(plan.one_default(first), first)
    with pytest.raises(InUse, match=r"another mode .*refusing to switch"):
        plan.source_routing(after)
    switched = applied(plan.source_routing(after, switch=True), after)
    assert not [r for r in switched.routing.routes if r.protocol == plan.RTPROT_ONE_DEFAULT]
    # from (one IPv4, one IPv6 address) and oif (IPv4 defaults) for each uplink
    assert len(switched.routing.rules) == 6
    assert plan.source_routing(switched) == []
    back = applied(plan.loose(switched, switch=True), switched)
    assert not back.routing.rules
    assert sorted(r.nexthops[0].dev for r in back.routing.defaults()) == ["eth0", "eth1"]
    assert [r for r in back.routing.routes if r.table != RT_TABLE_MAIN] == []


def test_rules_of_others_at_our_priorities_are_refused() -> None:
    theirs = Rule(V4, plan.FROM_PRIORITY, 100, "198.18.10.5", 32)
    with pytest.raises(InUse, match="rule priority 32700 is already in use"):
        plan.source_routing(state(route4("eth0"), route4("eth1"), rules=[theirs]))


def test_routes_of_others_in_our_tables_are_refused() -> None:
    theirs = route4("eth0").replace(table=plan.TABLE_BASE + ifindex("eth0"))
    with pytest.raises(InUse, match=f"routing table {theirs.table} is already in use"):
        plan.source_routing(state(route4("eth0"), route4("eth1"), theirs))


@pytest.mark.parametrize("planner", [m.planner for m in FIXES])
def test_a_primary_that_names_nothing_is_refused_in_every_mode(planner: Planner) -> None:
    with pytest.raises(UnusablePrimary, match="matches no interface"):
        planner(state(route4("eth0"), route4("eth1")), primary=net("198.18.99.0/24"))


def test_source_routing_takes_strict_filtering_back_once_the_rules_are_in() -> None:
    loosened = state(route4("eth0"), route4("eth1"), devs=["eth2"])
    loosened = Snapshot({"all": 1, "default": 2, "lo": 1, "eth0": 2, "eth1": 2, "eth2": 2},
                        loosened.routing)
    changes = plan.source_routing(loosened, strict=True)
    rp_filter = [c for c in changes if isinstance(c, SetRpFilter)]
    # After every route and rule; eth2 is no uplink (no default route): left alone.
    assert changes[-len(rp_filter):] == rp_filter == [
        SetRpFilter("default", 2, 1), SetRpFilter("eth0", 2, 1), SetRpFilter("eth1", 2, 1)]
    assert [c for c in plan.source_routing(loosened)
            if isinstance(c, SetRpFilter)] == []
