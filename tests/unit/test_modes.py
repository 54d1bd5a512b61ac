"""The mode table against its planners: each entry's flags say what its
planner does, on a full snapshot (two uplinks, both families) and an empty
one (lo alone, as a container in a user namespace of its own sees itself
before podman connects its networks); and the rule every caller shares:
fewer than two uplinks, nothing to do."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest

from multihome_hook.fix import CALLERS, Caller
from multihome_hook.kernel import (
    NO_ROUTING,
    RT_TABLE_MAIN,
    Address,
    Nexthop,
    Route,
    Routing,
    Snapshot,
)
from multihome_hook.modes import MODES, Mode
from multihome_hook.plan import TABLE_BASE, Add, Delete, SetRpFilter, too_few_uplinks
from multihome_hook.primary import Name

if TYPE_CHECKING:
    from multihome_hook.plan import Change

V4, V6 = socket.AF_INET, socket.AF_INET6
STRICT, LOOSE = 1, 2
# Namespace-wide strict, as a RHEL host's containers copy it; eth0 loosened
# (netavark >= 1.11 does that to its bridges), eth1 strict.
RP_FILTER = {"all": STRICT, "default": STRICT, "lo": 0, "eth0": LOOSE, "eth1": STRICT}


def uplink(n: int) -> tuple[list[Route], list[Address]]:
    """ethN (ifindex N + 2) on 198.18.(10+N).0/24 and fd18:(10+N)::/64."""
    index, net = n + 2, 10 + n
    routes = [Route(family=V4, metric=100, nexthops=(Nexthop(index, f"eth{n}",
                                                             f"198.18.{net}.1"),)),
              Route(family=V6, metric=1024, nexthops=(Nexthop(index, f"eth{n}",
                                                              f"fd18:{net}::1"),)),
              Route(family=V4, metric=0, nexthops=(Nexthop(index, f"eth{n}", None),),
                    dst=f"198.18.{net}.0", dst_len=24, scope=253)]
    return routes, [Address(index, V4, f"198.18.{net}.5", 24),
                    Address(index, V6, f"fd18:{net}::5", 64)]


def snapshot(uplinks: int, *extra: Route) -> Snapshot:
    routes: list[Route] = list(extra)
    addresses: list[Address] = []
    for n in range(uplinks):
        more_routes, more_addresses = uplink(n)
        routes += more_routes
        addresses += more_addresses
    links = {1: "lo", **{n + 2: f"eth{n}" for n in range(uplinks)}}
    rp_filter = {k: v for k, v in RP_FILTER.items() if k in ("all", "default", *links.values())}
    return Snapshot(rp_filter, Routing(links, tuple(addresses), tuple(routes)))


FULL, EMPTY, ONE = snapshot(2), snapshot(0), snapshot(1)


def planned(mode: Mode, state: Snapshot, **options: object) -> list[Change]:
    """The planner as the mode's own callers give it options: `strict`
    whenever the mode takes it, so that every flag can show."""
    return mode.planner(state, strict=mode.takes_strict, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("state", [FULL, EMPTY], ids=["full", "empty"])
def test_a_mode_plans_from_what_its_flags_say_it_reads(mode: Mode, state: Snapshot) -> None:
    """snapshot.read() reads sysctls only for `rp_filter` and netlink only
    for `routes`: the rest must not matter, and what it reads must."""
    read = Snapshot(state.rp_filter if mode.rp_filter else {},
                    state.routing if mode.routes else NO_ROUTING)
    assert planned(mode, read) == planned(mode, state)
    if state is FULL:
        no_sysctls, no_routes = state.replace(rp_filter={}), state.replace(routing=NO_ROUTING)
        assert (planned(mode, no_sysctls) != planned(mode, state)) == mode.rp_filter
        assert (planned(mode, no_routes) != planned(mode, state)) == mode.routes


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_changes_and_prepares(mode: Mode) -> None:
    """`changes`: it plans something where two uplinks need it; `prepares`:
    it does with no uplink yet, on what the interfaces to come will copy."""
    assert bool(planned(mode, FULL)) == mode.changes
    assert bool(planned(mode, EMPTY)) == mode.prepares
    assert all(isinstance(c, SetRpFilter) and c.interface in ("all", "default")
               for c in planned(mode, EMPTY))


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_uses_primary(mode: Mode) -> None:
    by_primary = [planned(mode, FULL, primary=Name(dev)) for dev in ("eth0", "eth1")]
    assert (by_primary[0] != by_primary[1]) == mode.uses_primary


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_takes_strict(mode: Mode) -> None:
    """It plans filtering back to strict on `all`, `default` and every
    uplink, where rp_filter=strict is asked for."""
    strict = mode.planner(FULL, strict=True)
    assert (strict != mode.planner(FULL, strict=False)) == mode.takes_strict
    if mode.takes_strict:
        values = dict(FULL.rp_filter)
        values.update((c.interface, c.new) for c in strict if isinstance(c, SetRpFilter))
        assert {values[k] for k in ("all", "default", "eth0", "eth1")} == {STRICT}, strict


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_drops_others(mode: Mode) -> None:
    """An uplink whose default route leaves main, and that no rule of the
    plan serves from its own table instead, is dropped."""
    changes = planned(mode, FULL)

    def main_defaults(kind: type[Add | Delete]) -> set[int]:
        return {hop.ifindex for c in changes if isinstance(c, kind)
                and isinstance(c.item, Route) and c.item.is_default
                and c.item.table == RT_TABLE_MAIN for hop in c.item.nexthops}

    served = {c.item.table - TABLE_BASE for c in changes
              if isinstance(c, Add) and not isinstance(c.item, Route)}
    dropped = main_defaults(Delete) - main_defaults(Add) - served
    assert bool(dropped) == mode.drops_others, changes


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("caller", CALLERS, ids=str)
@pytest.mark.parametrize(("state", "reason"), [
    (EMPTY, "no network interface, nothing to change"),
    (snapshot(0).replace(routing=Routing({1: "lo", 2: "eth0"}, (), ())),
     "no default route, nothing to change"),
    (ONE, "one uplink (eth0), nothing to change"),
], ids=["no-interface", "no-default", "one-uplink"])
def test_fewer_than_two_uplinks_plan_nothing_for_every_caller(
        mode: Mode, caller: Caller, state: Snapshot, reason: str) -> None:
    """Whoever plans (the hook, watch, apply, diagnose), except what a
    mode that prepares does before the networks that are yet to come."""
    found = state.routing.uplinks()
    assert too_few_uplinks(found) == reason
    prepares = mode.prepares and caller.prepares
    assert mode.idle(found, caller) == (None if prepares else reason)
    expected = mode.planner(state, switch=caller.switches) if prepares else []
    assert mode.plan(state, caller) == expected


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("caller", CALLERS, ids=str)
def test_two_uplinks_plan_as_the_planner_does(mode: Mode, caller: Caller) -> None:
    assert mode.idle(FULL.routing.uplinks(), caller) is None
    assert (mode.plan(FULL, caller, strict=mode.takes_strict)
            == mode.planner(FULL, switch=caller.switches, strict=mode.takes_strict))


def test_what_the_hook_parked_is_still_cleaned_up_on_one_uplink() -> None:
    """An IPv4 default of a second uplink, parked in its table by one-default,
    counts until it is cleaned up; IPv6 defaults count in every table."""
    ((old4, old6, _), _) = uplink(1)
    parked4 = old4.replace(table=TABLE_BASE + 3, protocol=176)
    assert snapshot(1, parked4).routing.uplinks().parked
    assert too_few_uplinks(snapshot(1, parked4).routing.uplinks()) is None
    assert snapshot(1, old6.replace(table=TABLE_BASE + 3)).routing.uplinks().devices == (
        "eth0", "eth1")
