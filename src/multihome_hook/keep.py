"""How to keep a mode: the annotations that give a container its mode from
its next start, and the lines to type for them (diagnose and apply)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from .errors import HookError
from .kernel import AF_INET, AF_INET6, RT_SCOPE_LINK, Routing
from .modes import MODE_KEY, Mode
from .plan import preferred
from .primary import PRIMARY_KEY, primary_ifindex

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .primary import Primary


def pinned(routing: Routing, primary: Primary | None, networks: Mapping[int, str]) -> str | None:
    """An io.multihome.primary for the interface whose default route main
    keeps (one-default, source-routing): its network's name, else its
    subnet; never the interface's name, whose order podman does not keep."""
    for family in (AF_INET, AF_INET6):
        hops = [(r, nh) for r in routing.defaults() if r.family == family for nh in r.nexthops]
        if not hops:
            continue
        try:
            uplinks = {nh.ifindex for r, nh in hops}
            index = None if primary is None else primary_ifindex(routing, primary, uplinks)
        except HookError:
            return None
        kept = preferred(hops, index)[1].ifindex
        if kept in networks:
            return networks[kept]
        return next((str(ipaddress.ip_interface(f"{a.address}/{a.prefixlen}").network)
                     for a in routing.addresses
                     if a.ifindex == kept and a.family == family and a.scope != RT_SCOPE_LINK),
                    None)
    return None


def permanent(mode: Mode, annotated: str | None, pin: str | None) -> list[str]:
    """The annotations that give a container `mode` from its next start:
    its primary as annotated, else as pinned (for a mode that uses one)."""
    primary = (annotated or pin) if mode.uses_primary else None
    return [f"{MODE_KEY}={mode}", *([f"{PRIMARY_KEY}={primary}"] if primary else [])]


def how_to_keep(annotations: list[str]) -> list[str]:
    """The lines that make a mode permanent: podman run and Quadlet."""
    return [f"permanent: podman run {' '.join(f'--annotation {a}' for a in annotations)} ...",
            f"Quadlet:   [Container] Annotation={' '.join(annotations)}"]
