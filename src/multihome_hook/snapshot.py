"""Read the current network namespace into the records of kernel.py.

Everything here reads the namespace of the calling thread; nothing writes.
The sysctls and /proc are read here; netlink messages are netlink.py's.
"""

from __future__ import annotations

import os

from .kernel import ALL, DEFAULT, IPV4_CONF, NO_ROUTING, Routing, Snapshot, Uplinks

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .modes import Mode
    from .netlink import RouteSocket


def read(mode: Mode, sock: RouteSocket | None) -> Snapshot:
    """What `mode` plans from, and only that (this is the hook's path):
    routes when a socket is given."""
    rp_filter = read_rp_filter() if mode.rp_filter else {}
    return Snapshot(rp_filter, NO_ROUTING if sock is None else read_routing(sock, rules=True))


def interfaces() -> list[str]:
    """Names of the namespace's interfaces, as the kernel lists them."""
    return sorted(name for name in os.listdir(IPV4_CONF) if name not in (ALL, DEFAULT))


def uplinks() -> Uplinks:
    """The uplinks, read from /proc: the hook decides "nothing to do"
    (modes.Mode.idle) without paying for netlink (pyroute2).

    IPv4 lists the main table only, IPv6 every table: an uplink whose default
    an earlier run moved to its own table still counts (IPv4: fib_trie shows
    the table), so the answer never says "fewer than two" when the full
    snapshot would see two."""
    texts = []
    for name in ("route", "ipv6_route"):
        try:
            with open(f"/proc/thread-self/net/{name}") as f:
                texts.append(f.read())
        except FileNotFoundError:  # IPv6 disabled in the kernel
            texts.append("")
    devices = tuple(default_devices(*texts))
    few = len(devices) < 2  # else the rest decides nothing: not read
    return Uplinks(devices, few and bool(routing_tables()),
                   not devices and interfaces() == ["lo"])


def routing_tables() -> list[int]:
    """IPv4 routing tables other than main and local that hold routes (the
    kernel names them "Id N" in /proc/net/fib_trie): where the hook parks
    routes, which /proc/net/route does not show."""
    try:
        with open("/proc/thread-self/net/fib_trie") as f:
            return [int(line[3:].strip().rstrip(":")) for line in f if line.startswith("Id ")]
    except FileNotFoundError:
        return []


_RTF_REJECT = 0x0200
_ANY4, _ANY6 = "00000000", "0" * 32


def default_devices(route: str, ipv6_route: str) -> list[str]:
    """Devices with a default route in /proc/net/route and /proc/net/ipv6_route."""
    devices = set()
    for line in route.splitlines()[1:]:  # after the header
        fields = line.split()
        # Iface Destination Gateway Flags RefCnt Use Metric Mask ...
        if len(fields) >= 8 and fields[1] == _ANY4 and fields[7] == _ANY4:
            devices.add(fields[0])
    for line in ipv6_route.splitlines():
        fields = line.split()
        # dst dst_len src src_len nexthop metric refcnt use flags device
        if (len(fields) == 10 and fields[0] == _ANY6 and fields[1] == "00"
                and not int(fields[8], 16) & _RTF_REJECT):
            devices.add(fields[9])
    devices.discard("lo")
    return sorted(devices)


def read_rp_filter() -> dict[str, int]:
    """rp_filter of `all`, `default` and every interface."""
    values = {}
    for name in (ALL, DEFAULT, *interfaces()):
        with open(f"{IPV4_CONF}/{name}/rp_filter") as f:
            values[name] = int(f.read())
    return values


def read_links() -> dict[int, str]:
    """Interface index -> name (the libc call asks the thread's namespace)."""
    import socket

    return dict(socket.if_nameindex())


def current(rules: bool = False) -> Routing:
    """read_routing() on a socket of its own (fix() holds one for reading
    and writing; nothing else opens one)."""
    from .netlink import RouteSocket

    with RouteSocket() as sock:
        return read_routing(sock, rules)


def read_routing(sock: RouteSocket, rules: bool = False) -> Routing:
    """Links, addresses but lo's, routes of every table but `local`, and the
    policy rules when asked for."""
    links = read_links()
    return Routing(links=links,
                   addresses=tuple(a for a in sock.addresses() if links.get(a.ifindex) != "lo"),
                   routes=tuple(sock.routes(links)),
                   rules=tuple(sock.rules()) if rules else ())
