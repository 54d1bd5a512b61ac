"""Which network is the primary one: the selectors an annotation or
`--primary` may give, and the interface each one names in a namespace."""

from __future__ import annotations

from .errors import HookError, NoSuchPrimary
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ipaddress
    from collections.abc import Collection
    from typing import Union

    from .kernel import Routing

PRIMARY_KEY = "io.multihome.primary"
# Kernel names are at most 15 bytes and never contain '/'; we accept the
# conventional subset so that nothing odd ever reaches a message or a path.
_IFNAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


class Interface(Record):
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return f"interface {self.name}"


class Subnet(Record):
    __slots__ = ("network",)

    def __init__(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
        self.network = network

    def __str__(self) -> str:
        return f"subnet {self.network}"


class Gateway(Record):
    __slots__ = ("address",)

    def __init__(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        self.address = address

    def __str__(self) -> str:
        return f"gateway {self.address}"


if TYPE_CHECKING:
    Primary = Union[Interface, Subnet, Gateway]  # not `A | B`: Python 3.9


def shown(value: str) -> str:
    """A user-supplied value, safe to put in a one-line message."""
    return repr(value if len(value) <= 64 else value[:61] + "...")


def parse_primary(value: str) -> Primary:
    """An interface name, a subnet in CIDR form, or a gateway address."""
    import ipaddress  # ~6 ms: only when a primary is given

    try:
        return Gateway(ipaddress.ip_address(value))
    except ValueError:
        pass
    if "/" in value:
        try:
            return Subnet(ipaddress.ip_network(value, strict=False))
        except ValueError:
            pass
    elif (0 < len(value) <= 15 and _IFNAME_CHARS.issuperset(value)
          and value[0] not in ".-"):
        return Interface(value)
    raise HookError(f"invalid {PRIMARY_KEY} {shown(value)}: expected an interface name, "
                    "a subnet (198.18.10.0/24) or a gateway address")


def primary_ifindex(routing: Routing, primary: Primary, uplinks: Collection[int]) -> int:
    """The interface (network) the primary selector names: it must exist, be
    unambiguous and be one of the `uplinks` (have a default route, in main
    or parked by the hook)."""
    import ipaddress

    if isinstance(primary, Interface):
        found = [i for i, name in routing.links.items() if name == primary.name]
    elif isinstance(primary, Subnet):
        found = sorted({a.ifindex for a in routing.addresses
                        if ipaddress.ip_address(a.address) in primary.network})
    else:
        # Any table: a default route the hook parked still names its uplink.
        found = sorted({nh.ifindex for route in routing.routes if route.is_default
                        for nh in route.nexthops
                        if nh.gateway and ipaddress.ip_address(nh.gateway) == primary.address})
    if not found:
        raise NoSuchPrimary(f"primary {primary} matches no interface of the container")
    if len(found) > 1:
        names = ", ".join(routing.links.get(i, str(i)) for i in found)
        raise HookError(f"primary {primary} is ambiguous: it matches {names}")
    index = found[0]
    if index not in uplinks:
        raise HookError(f"primary {primary} ({routing.links.get(index, index)}) "
                        "has no default route")
    return index
