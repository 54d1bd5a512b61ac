"""The test lab's address slots: disjoint, and inside the ranges tests may use."""

from __future__ import annotations

import ipaddress

from testlab.network import SLOTS, Slot

V4_RANGE = ipaddress.ip_network("198.18.0.0/15")
V6_RANGE = ipaddress.ip_network("fd18::/16")


def test_slots_own_disjoint_addresses_in_the_test_ranges() -> None:
    seen: set[object] = set()
    for slot in map(Slot, range(SLOTS)):
        networks = [ipaddress.ip_network(slot.subnet(i)) for i in range(7)]
        networks += [ipaddress.ip_network(f"{slot.far_link[0]}/24", strict=False)]
        networks6 = [ipaddress.ip_network(slot.subnet6(i)) for i in range(7)]
        networks6 += [ipaddress.ip_network(f"{slot.far_link6[0]}/64", strict=False),
                      ipaddress.ip_network(f"{slot.far_host6}/64", strict=False)]
        assert all(n.subnet_of(V4_RANGE) for n in networks)  # type: ignore[arg-type]
        assert all(n.subnet_of(V6_RANGE) for n in networks6)  # type: ignore[arg-type]
        hosts = [ipaddress.ip_address(slot.far_host)]
        assert hosts[0] in ipaddress.ip_network("203.0.113.0/24")
        for item in (*networks, *networks6, *hosts):
            assert item not in seen, item
            seen.add(item)
        assert ipaddress.ip_address(slot.gateway(0)) in networks[0]
        assert slot.gateway(0).startswith(slot.prefix(0))
        assert ipaddress.ip_address(slot.gateway6(3)) in networks6[3]
