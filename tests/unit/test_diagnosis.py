"""The CLI's verdict, from hand-written snapshots."""

from __future__ import annotations

import socket

from multihome_hook.diagnosis import Around, Finding, effective_rp_filter, status, verdict
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


def kinds(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.severity, f.kind) for f in findings]


BRIDGES = Around({2: "web", 3: "db"}, {2: "bridge", 3: "bridge"})
BRIDGE_LAN = Around({2: "web", 3: "lan"}, {2: "bridge", 3: "macvlan"})


def test_two_defaults_under_strict_filtering_lose_outbound_and_inbound_replies() -> None:
    """podman 4: every uplink strict, the same metric: what leaves by one
    and comes back on the other is dropped by the container itself."""
    routing = snapshot(default(V4, "eth0"), default(V4, "eth1"), addresses=ADDRESSES)
    found = verdict(routing, STRICT, BRIDGES)
    assert status(found) == "problem"
    assert kinds(found) == [("problem", "outbound"), ("problem", "outbound"),
                            ("problem", "address"), ("problem", "address")]
    assert found[0].text.startswith(
        "traffic leaving by eth0 (web: a bridge behind the host's NAT) (bound to it: ping -I "
        "eth0, SO_BINDTODEVICE) loses its replies: strict rp_filter on eth0, and the route "
        "back may lead by eth1 (the same metric: the kernel picks one); unbound traffic too, "
        "whenever the kernel sends it by one of the 2 IPv4 default routes"), found[0]


def test_a_lower_metric_elsewhere_loses_only_the_other_uplink() -> None:
    routing = snapshot(default(V4, "eth0", 200), default(V4, "eth1", 100), addresses=ADDRESSES)
    found = verdict(routing, STRICT, BRIDGES)
    assert [f.text.split(" (")[0] for f in found if f.kind == "outbound"] == [
        "traffic leaving by eth0"]


def test_loose_filtering_behind_strict_bridges_still_loses_inbound_replies() -> None:
    """`loose` on podman 4: outbound is fixed, but a reply from eth1's
    address leaving by eth0 meets the host's strict filter on that bridge."""
    routing = snapshot(default(V4, "eth0"), default(V4, "eth1"), addresses=ADDRESSES)
    around = Around(BRIDGES.networks, BRIDGES.kinds, {2: 1, 3: 1})
    found = verdict(routing, {"all": 2}, around)
    assert kinds(found)[:2] == [("problem", "address"), ("problem", "address")]
    assert found[0].text == (
        "replies from eth0 (web: a bridge behind the host's NAT)'s address 198.18.10.2 may "
        "leave by eth1 (db: a bridge behind the host's NAT) (the same metric: the kernel picks "
        "one): dropped (the host filters strictly on the bridge of eth1 (db: a bridge behind "
        "the host's NAT))")


def test_two_bridges_the_host_does_not_filter_are_a_risk_not_a_problem() -> None:
    """podman 5 and 6: netavark loosened the bridges, inside and on the host."""
    routing = snapshot(default(V4, "eth0"), default(V4, "eth1"), addresses=ADDRESSES)
    around = Around(BRIDGES.networks, BRIDGES.kinds, {2: 2, 3: 2})
    found = verdict(routing, {"all": 1, "eth0": 2, "eth1": 2}, around)
    assert status(found) == "risk"
    assert kinds(found)[:2] == [("risk", "address"), ("risk", "address")]


def test_a_macvlan_drops_replies_whatever_the_filters() -> None:
    """netavark 2.0: the macvlan (eth1) at 99; the bridge's replies leave
    by it, and its LAN's router drops their source."""
    routing = snapshot(default(V4, "eth0", 100), default(V4, "eth1", 99), rules=START,
                       addresses=ADDRESSES)
    found = verdict(routing, {"all": 0, "eth0": 2}, BRIDGE_LAN)
    assert kinds(found) == [("problem", "address"), ("note", "")]
    assert found[0].text.startswith(
        "replies from eth0 (web: a bridge behind the host's NAT)'s address 198.18.10.2 leave "
        "by eth1 (lan: a macvlan onto the LAN) (metric 99, below its own): dropped (the router "
        "of eth1 (lan: a macvlan onto the LAN) drops sources that are not of its LAN)")


def test_a_published_port_leads_to_one_address() -> None:
    routing = snapshot(default(V4, "eth0", 100), default(V4, "eth1", 99), rules=START,
                       addresses=ADDRESSES)
    around = Around(BRIDGE_LAN.networks, BRIDGE_LAN.kinds, {2: 2}, ["18080->8080/tcp"],
                    ["198.18.10.2"])
    found = verdict(routing, {"all": 0}, around)
    assert kinds(found) == [("problem", "address"), ("problem", "port"), ("note", "")]
    assert found[1].text.startswith("published 18080->8080/tcp leads to eth0 (web: a bridge "
                                    "behind the host's NAT)'s address 198.18.10.2; its replies "
                                    "leave by eth1"), found[1]


def test_a_port_that_leads_to_the_kept_uplink_is_fine_under_one_default() -> None:
    kept = snapshot(default(V4, "eth0"), default(V4, "eth1").replace(table=2003), rules=START,
                    addresses=ADDRESSES)
    around = Around(BRIDGES.networks, BRIDGES.kinds, {2: 1, 3: 1}, ["18080->8080/tcp"],
                    ["198.18.10.2"])
    found = verdict(kept, STRICT, around)
    assert status(found) == "healthy"
    assert kinds(found) == [("limit", "")]
    assert found[0].text.startswith("eth1 (db) has no default route: it answers only its own")
    # Led to the other uplink, its replies leave by the kept one: a problem,
    # never a limit.
    other = around.replace(port_targets=["198.18.11.2"])
    assert kinds(verdict(kept, STRICT, other))[0] == ("problem", "port")


def test_an_unknown_port_target_may_be_any_bridge() -> None:
    kept = snapshot(default(V4, "eth0"), default(V4, "eth1").replace(table=2003), rules=START,
                    addresses=ADDRESSES)
    around = Around(BRIDGES.networks, BRIDGES.kinds, {2: 1, 3: 1}, ["18080->8080/tcp"])
    (problem,) = [f for f in verdict(kept, STRICT, around) if f.severity == "problem"]
    assert problem.text.startswith("published 18080->8080/tcp may lead to eth1 (db")


def test_loose_filtering_without_the_hosts_word_is_a_risk() -> None:
    """pid:N: nothing known of the networks, nothing in the container drops."""
    routing = snapshot(default(V4, "eth0"), default(V4, "eth1"), addresses=ADDRESSES)
    found = verdict(routing, {"all": 2})
    assert status(found) == "risk"
    assert [f.text.split(" (")[0] for f in found if f.severity == "risk"] == [
        "replies from eth0's address 198.18.10.2 may leave by eth1",
        "replies from eth1's address 198.18.11.2 may leave by eth0"]
    assert found[-1] == Finding("note", "", "2 IPv4 default routes, rp_filter not strict on "
                                "eth0, eth1: replies to what leaves are accepted on every uplink")


def test_one_default_per_family_is_healthy() -> None:
    assert verdict(snapshot(default(V4, "eth0"), default(V6, "eth0")), STRICT) == []


def test_ipv6_spread_over_uplinks_is_a_note_not_a_problem() -> None:
    (note,) = verdict(snapshot(default(V6, "eth0"), default(V6, "eth1")), STRICT)
    assert note.severity == "note" and "IPv6 default route spread over eth0, eth1" in note.text


def test_source_routing_gives_each_address_its_own_way_back() -> None:
    tables = (default(V4, "eth0").replace(table=2002), default(V4, "eth1").replace(table=2003))
    rules = (*START, Rule(V4, 32700, 2002, "198.18.10.2", 32),
             Rule(V4, 32700, 2003, "198.18.11.2", 32), Rule(V4, 32701, 2002, oif="eth0"),
             Rule(V4, 32701, 2003, oif="eth1"))
    routing = snapshot(default(V4, "eth1", 99), *tables, rules=rules, addresses=ADDRESSES)
    around = Around(BRIDGE_LAN.networks, BRIDGE_LAN.kinds, {2: 1}, ["18080->8080/tcp"],
                    ["198.18.10.2"])
    found = verdict(routing, STRICT, around)
    assert found == [Finding("note", "", "source routing in place: 4 rules at priorities "
                             "32700/32701")]


def test_a_lost_primary_leaves_no_default_and_stale_rules() -> None:
    """Source routing, then the primary (eth0) disconnected without watch:
    its interface is gone; the other uplink's default waits in its table."""
    links = {1: "lo", 3: "eth1"}
    rules = (*START, Rule(V4, 32700, 2002, "198.18.10.2", 32), Rule(V4, 32701, 2002, oif="eth0"),
             Rule(V4, 32700, 2003, "198.18.11.2", 32), Rule(V4, 32701, 2003, oif="eth1"))
    routing = Routing(links, ADDRESSES[1:], (default(V4, "eth1").replace(table=2003),), rules)
    found = verdict(routing, STRICT)
    assert kinds(found)[0] == ("problem", "no-default")
    assert found[0].text.startswith("no IPv4 default route in main, while 1 wait(s)")
    assert found[-1].text == ("2 rule(s) name an address or interface that is gone: IPv4 rule "
                              "32700: from 198.18.10.2/32 lookup 2002; IPv4 rule 32701: oif eth0 "
                              "lookup 2002")
