"""Which network is the primary one: the selectors an annotation or
`--primary` may give, and the interface each one names in a namespace.

A name is an interface's or a podman network's: networks.resolve_primary() turns
the name of a network into a Network (its subnets) when no interface has it,
so that the planner, pure, only matches addresses."""

from __future__ import annotations

from .errors import InvalidAnnotation, NoSuchPrimary, UnusablePrimary
from .kernel import natural_key
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ipaddress
    from collections.abc import Collection
    from typing import Union

    from .kernel import Routing

    IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]
    # podman network name -> its subnets
    Networks = tuple[tuple[str, tuple[IPNetwork, ...]], ...]

PRIMARY_KEY = "io.multihome.primary"
# Kernel names are at most 15 bytes and never contain '/'; podman's network
# names are [a-zA-Z0-9][a-zA-Z0-9_.-]*. We accept that subset (a name is
# never a path) and a length no message has to cut.
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_MAX_NAME = 64


class Name(Record):
    """An interface name, else a podman network's name."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __str__(self) -> str:
        return repr(self.name)


class Network(Record):
    """A podman network by name, with its subnets (none: no such network)
    and every network known when it was looked up (`known`, for messages)."""

    __slots__ = ("name", "subnets", "known")

    def __init__(self, name: str, subnets: tuple[IPNetwork, ...], known: Networks) -> None:
        self.name, self.subnets, self.known = name, subnets, known

    def __str__(self) -> str:
        if not self.subnets:
            return repr(self.name)
        return f"network {self.name!r} ({', '.join(map(str, self.subnets))})"


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
    Primary = Union[Name, Network, Subnet, Gateway]  # not `A | B`: Python 3.9


def shown(value: str) -> str:
    """A user-supplied value, safe to put in a one-line message."""
    return repr(value if len(value) <= 64 else value[:61] + "...")


def parse_primary(value: str) -> Primary:
    """An interface or network name, a subnet in CIDR form, or a gateway address."""
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
    elif (0 < len(value) <= _MAX_NAME and _NAME_CHARS.issuperset(value)
          and value[0] not in ".-"):
        return Name(value)
    raise InvalidAnnotation(f"invalid {PRIMARY_KEY} {shown(value)}: expected an interface or "
                            "podman network name, a subnet (198.18.10.0/24) or a gateway address")


def attached(routing: Routing, known: Networks) -> dict[int, str]:
    """Interface index -> the name of the known network one of its
    addresses is in."""
    import ipaddress

    found: dict[int, str] = {}
    for a in routing.addresses:
        address = ipaddress.ip_address(a.address)
        for name, subnets in known:
            if a.ifindex not in found and any(address in s for s in subnets):
                found[a.ifindex] = name
    return found


def _listing(routing: Routing, known: Networks) -> str:
    """The container's interfaces, each with its network where known."""
    networks = attached(routing, known)
    return ", ".join(
        f"{name} ({networks[index]})" if index in networks else name
        for index, name in sorted(routing.links.items(), key=lambda item: natural_key(item[1]))
        if name != "lo") or "none but lo"


def primary_ifindex(routing: Routing, primary: Primary, uplinks: Collection[int]) -> int:
    """The interface (network) the primary selector names: it must exist, be
    unambiguous and be one of the `uplinks` (have a default route, in main
    or parked by the hook)."""
    import ipaddress

    if isinstance(primary, Name):
        found = [i for i, name in routing.links.items() if name == primary.name]
    elif isinstance(primary, Network):
        found = sorted({a.ifindex for a in routing.addresses
                        if any(ipaddress.ip_address(a.address) in s for s in primary.subnets)})
    elif isinstance(primary, Subnet):
        found = sorted({a.ifindex for a in routing.addresses
                        if ipaddress.ip_address(a.address) in primary.network})
    else:
        # Any table: a default route the hook parked still names its uplink.
        found = sorted({nh.ifindex for route in routing.routes if route.is_default
                        for nh in route.nexthops
                        if nh.gateway and ipaddress.ip_address(nh.gateway) == primary.address})
    if not found:
        if isinstance(primary, Network):
            what = "interface" if primary.subnets else "interface or network"
            raise NoSuchPrimary(f"primary {primary} matches no {what} of the container "
                                f"({_listing(routing, primary.known)})")
        raise NoSuchPrimary(f"primary {primary} matches no interface of the container "
                            f"({_listing(routing, ())})")
    if len(found) > 1:
        names = ", ".join(routing.links.get(i, str(i)) for i in found)
        raise UnusablePrimary(f"primary {primary} is ambiguous: it matches {names}")
    index = found[0]
    if index not in uplinks:
        raise UnusablePrimary(f"primary {primary} ({routing.links.get(index, index)}) "
                              "has no default route")
    return index
