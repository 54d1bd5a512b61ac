"""The only door to pyroute2: our records (kernel.py) to and from netlink
messages, over a route netlink socket of the standard library's C module.

Only pyroute2's message classes are used (imported by lean_import.py, which
spares the hook the rest of the package); the socket and its request/reply
loop are our own, on `_socket`, the C module that `socket` wraps.
"""

from __future__ import annotations

import _socket
import errno
import os
import struct

from .kernel import (
    AF_INET,
    AF_INET6,
    FR_ACT_TO_TBL,
    RT_TABLE_LOCAL,
    Address,
    Nexthop,
    Route,
    Rule,
)
from .lean_import import message_classes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any

NETLINK_ROUTE = 0
AF_UNSPEC = 0  # a dump of both families
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 0x200, 0x400, 0x800
# Set on a dump's messages when the table changed while it was read (podman
# connecting a network meanwhile): the dump may miss or repeat entries.
NLM_F_DUMP_INTR = 0x10
DUMP_TRIES = 5
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_GETADDR = 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWRULE, RTM_DELRULE, RTM_GETRULE = 32, 33, 34
RT_TABLE_COMPAT = 252  # the 8-bit table field of a table id above 255
_HEADER = struct.Struct("=IHHII")

_rtmsg, _ifaddrmsg, _fibmsg = message_classes()


# --- encode: our records as pyroute2 messages -------------------------------


def _rule_message(rule: Rule) -> Any:
    msg = _fibmsg()
    msg["family"], msg["action"], msg["src_len"] = rule.family, FR_ACT_TO_TBL, rule.src_len
    msg["table"] = rule.table if rule.table < 256 else RT_TABLE_COMPAT
    attrs: list[tuple[str, Any]] = [("FRA_TABLE", rule.table), ("FRA_PRIORITY", rule.priority)]
    if rule.src:
        attrs.append(("FRA_SRC", rule.src))
    if rule.oif:
        attrs.append(("FRA_OIFNAME", rule.oif))
    if rule.protocol:
        attrs.append(("FRA_PROTOCOL", rule.protocol))
    msg["attrs"] = attrs
    return msg


def _route_message(route: Route) -> Any:
    msg = _rtmsg()
    msg["family"], msg["dst_len"] = route.family, 0
    msg["table"] = route.table if route.table < 256 else RT_TABLE_COMPAT
    msg["proto"], msg["scope"], msg["type"] = route.protocol, route.scope, route.kind
    attrs: list[tuple[str, Any]] = [("RTA_TABLE", route.table), ("RTA_PRIORITY", route.metric)]
    if route.dst_len:
        msg["dst_len"] = route.dst_len
        attrs.append(("RTA_DST", route.dst))
    if route.prefsrc:
        attrs.append(("RTA_PREFSRC", route.prefsrc))
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


# --- decode: pyroute2 messages as our records -------------------------------

_FOREIGN_SELECTORS = ("FRA_IIFNAME", "FRA_FWMARK", "FRA_DST", "FRA_L3MDEV", "FRA_UID_RANGE",
                      "FRA_IP_PROTO", "FRA_SPORT_RANGE", "FRA_DPORT_RANGE", "FRA_GOTO")


class _Attrs:
    """A decoded message's attributes by name, the first of each as get_attr
    gives it, found in one pass (get_attr scans them all for every name
    asked); pyroute2 decodes a value when it is first read."""

    __slots__ = ("_slots",)

    def __init__(self, msg: Any) -> None:
        self._slots: dict[str, Any] = {}
        for slot in msg["attrs"]:
            self._slots.setdefault(slot[0], slot)

    def get(self, name: str) -> Any:
        slot = self._slots.get(name)
        return None if slot is None else slot[1]


def _nexthops(attrs: _Attrs, links: Mapping[int, str]) -> tuple[Nexthop, ...]:
    hops = attrs.get("RTA_MULTIPATH")
    if hops:
        pairs = [(nh["oif"], nh.get_attr("RTA_GATEWAY")) for nh in hops]
    else:
        pairs = [(attrs.get("RTA_OIF"), attrs.get("RTA_GATEWAY"))]
    return tuple(Nexthop(index, links.get(index, f"if{index}"), gateway)
                 for index, gateway in pairs if index)


def _routes(msg: Any, links: Mapping[int, str]) -> list[Route]:
    """One Route, or for IPv6 multipath one per nexthop (as the kernel keeps them)."""
    attrs = _Attrs(msg)
    nexthops = _nexthops(attrs, links)
    split = msg["family"] == AF_INET6 and nexthops
    return [Route(family=msg["family"], metric=attrs.get("RTA_PRIORITY") or 0,
                  nexthops=group, table=attrs.get("RTA_TABLE") or msg["table"],
                  protocol=msg["proto"], scope=msg["scope"], kind=msg["type"],
                  pref=attrs.get("RTA_PREF"), dst=attrs.get("RTA_DST"),
                  dst_len=msg["dst_len"], prefsrc=attrs.get("RTA_PREFSRC"))
            for group in ([(nh,) for nh in nexthops] if split else [nexthops])]


def _rule(msg: Any) -> Rule:
    attrs = _Attrs(msg)
    foreign = (msg["action"] != FR_ACT_TO_TBL or bool(msg["tos"]) or bool(msg["flags"])
               or any(attrs.get(name) is not None for name in _FOREIGN_SELECTORS))
    return Rule(family=msg["family"], priority=attrs.get("FRA_PRIORITY") or 0,
                table=attrs.get("FRA_TABLE") or msg["table"], src=attrs.get("FRA_SRC"),
                src_len=msg["src_len"], oif=attrs.get("FRA_OIFNAME"), foreign=foreign,
                protocol=attrs.get("FRA_PROTOCOL") or 0)


def _address(msg: Any) -> Address | None:
    attrs = _Attrs(msg)
    address = attrs.get("IFA_LOCAL") or attrs.get("IFA_ADDRESS")
    if not address:
        return None
    return Address(msg["index"], msg["family"], address, msg["prefixlen"], msg["scope"])


def _planned_route(data: bytes) -> bool:
    """IPv4 or IPv6, and not in `local`, read from the rtmsg header (family
    first, table fifth): with 32 networks half a dump is `local`, and
    decoding a message costs more than the kernel took to send it."""
    family, table = data[_HEADER.size], data[_HEADER.size + 4]
    return family in (AF_INET, AF_INET6) and table != RT_TABLE_LOCAL


# --- the socket ---------------------------------------------------------------


class RouteSocket:
    """Dumps and acknowledged requests on NETLINK_ROUTE, in the namespace the
    calling thread was in when the socket was created."""

    def __init__(self) -> None:
        self._sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC,
                                    NETLINK_ROUTE)
        self._sock.bind((0, 0))
        self._seq = 0

    def __enter__(self) -> RouteSocket:
        return self

    def __exit__(self, *_: object) -> None:
        self._sock.close()

    def _send(self, msg: Any, msg_type: int, flags: int) -> int:
        self._seq += 1
        header = msg["header"]
        header["type"], header["flags"] = msg_type, flags
        header["sequence_number"], header["pid"] = self._seq, 0
        msg.encode()
        self._sock.send(bytes(msg.data))
        return self._seq

    def _replies(self, seq: int) -> Iterator[tuple[int, int, bytes]]:
        """(type, flags, message) of every reply to `seq`, up to and including
        a dump's DONE, or up to the ACK.

        A netlink error becomes OSError with the kernel's errno."""
        while True:
            data = self._sock.recv(1 << 18)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, msg_type, flags, msg_seq, _ = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    raise OSError(0, "truncated netlink message")
                message, offset = data[offset:offset + length], offset + ((length + 3) & ~3)
                if msg_seq != seq:
                    continue
                if msg_type == NLMSG_DONE:
                    yield msg_type, flags, message
                    return
                if msg_type == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", message, _HEADER.size)
                    if code:
                        raise OSError(-code, os.strerror(-code))
                    return
                yield msg_type, flags, message

    def _dump(self, cls: Any, msg_type: int, family: int,
              wanted: Callable[[bytes], bool] | None = None) -> list[Any]:
        """Every entry (that `wanted` keeps, judged on its raw bytes before
        pyroute2 decodes it), from a dump the kernel did not mark
        interrupted: one that was is read again, up to DUMP_TRIES times."""
        for _ in range(DUMP_TRIES):
            request = cls()
            request["family"] = family
            replies, interrupted = [], False
            for reply_type, flags, data in self._replies(
                    self._send(request, msg_type, NLM_F_REQUEST | NLM_F_DUMP)):
                interrupted |= bool(flags & NLM_F_DUMP_INTR)
                if reply_type != NLMSG_DONE and (wanted is None or wanted(data)):
                    reply = cls(data)
                    reply.decode()
                    replies.append(reply)
            if not interrupted:
                return replies
        raise OSError(errno.EAGAIN, f"the namespace kept changing while it was read "
                      f"({DUMP_TRIES} netlink dumps interrupted)")

    def _request(self, msg: Any, msg_type: int, flags: int = 0) -> None:
        for _ in self._replies(self._send(msg, msg_type, NLM_F_REQUEST | NLM_F_ACK | flags)):
            pass

    def addresses(self) -> list[Address]:
        """Every address, both families."""
        msgs = self._dump(_ifaddrmsg, RTM_GETADDR, AF_UNSPEC)
        return [a for a in map(_address, msgs) if a is not None]

    def routes(self, links: Mapping[int, str]) -> list[Route]:
        """Every IPv4 and IPv6 route of every table but `local` (the kernel's
        own, for its addresses: never planned with, and not worth decoding);
        `links` names the devices."""
        msgs = self._dump(_rtmsg, RTM_GETROUTE, AF_UNSPEC, _planned_route)
        return [route for msg in msgs for route in _routes(msg, links)]

    def rules(self) -> list[Rule]:
        """Every policy rule, both families."""
        return [_rule(msg) for msg in self._dump(_fibmsg, RTM_GETRULE, AF_UNSPEC)]

    def add_rule(self, rule: Rule) -> None:
        self._request(_rule_message(rule), RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL)

    def delete_rule(self, rule: Rule) -> None:
        self._request(_rule_message(rule), RTM_DELRULE)

    def delete_route(self, route: Route) -> None:
        self._request(_route_message(route), RTM_DELROUTE)

    def add_route(self, route: Route) -> None:
        # APPEND: an IPv6 nexthop rejoins its multipath route, an IPv4 route
        # sits beside another default route of the same metric.
        self._request(_route_message(route), RTM_NEWROUTE, NLM_F_CREATE | NLM_F_APPEND)
