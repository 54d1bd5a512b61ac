"""Podman's networks by name, read from podman's own definition files.

The hook may not ask podman: podman holds its locks while hooks run. So a
name is looked up where netavark and CNI keep their networks, rootful or
rootless, and only when a primary is given that no interface is called.
Under rootless podman the hook runs as uid 0 of the user's user namespace:
the user, and so the home directory, comes from /proc/self/uid_map.
"""

from __future__ import annotations

import json
import os

from .errors import UnusablePrimary
from .primary import Name, Network, shown

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Collection, Iterator

    from .primary import IPNetwork, Networks, Primary

# netavark (podman 4+), then CNI; rootless: below the user's home directory.
ROOTFUL_DIRS = ("/etc/containers/networks", "/etc/cni/net.d")
ROOTLESS_DIRS = (".local/share/containers/storage/networks", ".config/cni/net.d")
# podman's built-in network, which has no file unless it was changed.
BUILT_IN = ("podman", ("10.88.0.0/16",))


def host_uid(uid_map: str, uid: int) -> int:
    """The uid that `uid` of our user namespace is outside it."""
    for line in uid_map.splitlines():
        fields = line.split()
        if len(fields) == 3:
            inside, outside, count = map(int, fields)
            if inside <= uid < inside + count:
                return outside + uid - inside
    return uid


def directories() -> tuple[str, ...]:
    """Where this user's podman keeps its network definitions."""
    with open("/proc/self/uid_map") as f:
        uid = host_uid(f.read(), os.geteuid())
    if uid == 0:
        return ROOTFUL_DIRS
    import pwd

    try:
        home = pwd.getpwuid(uid).pw_dir
    except KeyError:
        return ()
    return tuple(os.path.join(home, d) for d in ROOTLESS_DIRS)


def _subnets(definition: object) -> tuple[str, list[str]] | None:
    """(name, subnets) of a netavark network or a CNI conflist."""
    if not isinstance(definition, dict) or not isinstance(definition.get("name"), str):
        return None
    found: list[object] = []
    if "plugins" in definition:  # CNI: host-local IPAM, ranges or the older single subnet
        for plugin in definition["plugins"] if isinstance(definition["plugins"], list) else ():
            ipam = plugin.get("ipam") if isinstance(plugin, dict) else None
            if not isinstance(ipam, dict):
                continue
            found.append(ipam.get("subnet"))
            for ranges in ipam.get("ranges") or ():
                found += [r.get("subnet") for r in ranges if isinstance(r, dict)]
    else:  # netavark
        subnets = definition.get("subnets")
        found += [s.get("subnet") for s in subnets or () if isinstance(s, dict)]
    return definition["name"], [s for s in found if isinstance(s, str)]


def _definitions(directories: tuple[str, ...]) -> Iterator[tuple[str, list[str]]]:
    for directory in directories:
        try:
            names = sorted(os.listdir(directory))
        except OSError:  # no such backend here
            continue
        for name in names:
            if not name.endswith((".json", ".conflist")):
                continue
            try:
                with open(os.path.join(directory, name), "rb") as f:
                    parsed = _subnets(json.loads(f.read(1 << 20)))
            except (OSError, ValueError):  # podman ignores what it cannot read, too
                continue
            if parsed:
                yield parsed


def definitions(directories: tuple[str, ...]) -> Networks:
    """Every network defined in `directories`, and the built-in one unless
    a file redefines it: name -> subnets (a name that netavark and CNI both
    define gets the subnets of both)."""
    import ipaddress

    found = list(_definitions(directories))
    if all(name != BUILT_IN[0] for name, _ in found):
        found.append((BUILT_IN[0], list(BUILT_IN[1])))
    merged: dict[str, list[IPNetwork]] = {}
    for name, subnets in found:
        mine = merged.setdefault(name, [])
        for subnet in subnets:
            try:
                network = ipaddress.ip_network(subnet, strict=False)
            except ValueError:
                continue
            if network not in mine:
                mine.append(network)
    return tuple((name, tuple(subnets)) for name, subnets in merged.items())


def resolve_primary(primary: Primary, interfaces: Collection[str],
            known: Networks | None = None) -> Primary:
    """`primary` as the planner takes it: a name that no interface has names
    a network, looked up in `known` (default: podman's definitions)."""
    if not isinstance(primary, Name) or primary.name in interfaces:
        return primary
    networks = definitions(directories()) if known is None else known
    subnets = dict(networks).get(primary.name)
    if subnets == ():
        raise UnusablePrimary(f"podman network {shown(primary.name)} has no subnet in its "
                              "definition (DHCP?): give the primary as an interface or a subnet")
    return Network(primary.name, subnets or (), networks)
