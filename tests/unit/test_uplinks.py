"""Which interfaces carry a default route, from /proc's text (as read in a namespace)."""

from __future__ import annotations

from multihome_hook.snapshot import default_devices

ROUTE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth1\t00000000\t010B12C6\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth1\t000B12C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t000A12C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""
# eth0's IPv6 default, a link route, and the kernel's reject entry on lo.
IPV6_ROUTE = """\
fd180050000000000000000000000000 40 00000000000000000000000000000000 00 \
00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1
00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
fd180050000000000000000000000001 00000400 00000001 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
"""


def test_defaults_of_both_families_count() -> None:
    assert default_devices(ROUTE, IPV6_ROUTE) == ["eth0", "eth1"]


def test_link_routes_and_lo_do_not() -> None:
    header, default, *links = ROUTE.splitlines()
    assert default.split()[1] == "00000000"
    assert default_devices(ROUTE, "") == ["eth1"]
    assert default_devices("\n".join([header, *links]), IPV6_ROUTE.splitlines()[-1]) == []


def test_a_routing_table_without_ipv6() -> None:
    assert default_devices(ROUTE.splitlines()[0], "") == []
