"""Carry out a plan in the current network namespace, all or nothing."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from . import netlink
from .errors import HookError
from .plan import AddRoute, Change, DeleteRoute, SetRpFilter
from .snapshot import IPV4_CONF, Route


def _write_rp_filter(change: SetRpFilter) -> None:
    name = change.interface
    # Names come from the kernel's own listing; refuse anything that could
    # step out of the directory all the same.
    if not name or "/" in name or name in (".", "..") or len(name) > 15:
        raise OSError(0, f"refusing interface name {name!r}")
    fd = os.open(f"{IPV4_CONF}/{name}/rp_filter", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(change.new).encode())
    finally:
        os.close(fd)


def _route_message(route: Route) -> Any:
    msg = netlink.rtmsg()()
    msg["family"], msg["dst_len"] = route.family, 0
    msg["table"] = route.table if route.table < 256 else 252  # RT_TABLE_COMPAT
    msg["proto"], msg["scope"], msg["type"] = route.protocol, route.scope, route.kind
    attrs: list[tuple[str, Any]] = [("RTA_TABLE", route.table), ("RTA_PRIORITY", route.metric)]
    if len(route.nexthops) == 1:
        (hop,) = route.nexthops
        attrs.append(("RTA_OIF", hop.ifindex))
        if hop.gateway:
            attrs.append(("RTA_GATEWAY", hop.gateway))
    else:
        attrs.append(("RTA_MULTIPATH", [
            {"oif": hop.ifindex, "hops": 0,
             "attrs": [("RTA_GATEWAY", hop.gateway)] if hop.gateway else []}
            for hop in route.nexthops]))
    if route.pref is not None:
        attrs.append(("RTA_PREF", route.pref))
    msg["attrs"] = attrs
    return msg


def _apply_one(change: Change, sock: netlink.RouteSocket | None) -> None:
    if isinstance(change, SetRpFilter):
        _write_rp_filter(change)
        return
    assert sock is not None, "route changes need a netlink socket"
    if isinstance(change, DeleteRoute):
        sock.request(_route_message(change.route), netlink.RTM_DELROUTE)
    elif isinstance(change, AddRoute):
        # APPEND: an IPv6 nexthop rejoins its multipath route, an IPv4 route
        # sits beside another default route of the same metric.
        sock.request(_route_message(change.route), netlink.RTM_NEWROUTE,
                     netlink.NLM_F_CREATE | netlink.NLM_F_APPEND)


def apply(changes: Sequence[Change], sock: netlink.RouteSocket | None = None) -> None:
    """Apply every change, or undo the ones done and raise HookError."""
    done: list[Change] = []
    for change in changes:
        try:
            _apply_one(change, sock)
        except OSError as exc:
            failure = f"{change}: {exc.strerror}"
            break
        done.append(change)
    else:
        return
    unrolled = []
    for change in reversed(done):
        try:
            _apply_one(change.inverse(), sock)
        except OSError as exc:
            unrolled.append(f"{change.inverse()}: {exc.strerror}")
    if unrolled:
        raise HookError(f"{failure}; rollback FAILED, namespace left changed: "
                        + "; ".join(unrolled))
    raise HookError(f"{failure}; rolled back {len(done)} change(s), nothing changed")
