"""Interfaces as the kernel describes them: kind (veth, macvlan...), the
peer a veth is linked to, the bridge an interface is enslaved to. What lies
beyond a container's interface comes from here, not from podman: it holds
for `pid:N`, CRI-O and CNI alike.

One RTM_GETLINK dump, decoded with struct: diagnose needs four attributes,
and pyroute2's link message class is no cost worth paying for them. The
socket is opened in the calling thread's network namespace (netns.run_in).
"""

from __future__ import annotations

import socket
import struct

from .records import Record

_NETLINK_ROUTE, _RTM_NEWLINK, _RTM_GETLINK = 0, 16, 18
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_IFLA_IFNAME, _IFLA_LINK, _IFLA_MASTER, _IFLA_LINKINFO, _IFLA_LINK_NETNSID = 3, 5, 10, 18, 37
_IFLA_INFO_KIND = 1
_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, seq, pid
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_ATTR = struct.Struct("=HH")  # rtattr: length, type


class Link(Record):
    """`kind`: IFLA_INFO_KIND ("" for a plain device); `peer`: the index of
    the interface a veth (or macvlan, its parent) is linked to, when that
    is in another namespace (IFLA_LINK_NETNSID); `master`: the bridge's
    index."""

    __slots__ = ("index", "name", "kind", "peer", "master")

    def __init__(self, index: int, name: str, kind: str = "", peer: int | None = None,
                 master: int | None = None) -> None:
        self.index, self.name, self.kind, self.peer, self.master = index, name, kind, peer, master


def _attributes(data: bytes, offset: int) -> dict[int, bytes]:
    found = {}
    while offset + _ATTR.size <= len(data):
        length, kind = _ATTR.unpack_from(data, offset)
        if length < _ATTR.size:
            break
        found[kind & 0x3FFF] = data[offset + _ATTR.size:offset + length]  # without NLA_F_ flags
        offset += (length + 3) & ~3
    return found


def _link(message: bytes) -> Link:
    (index,) = struct.unpack_from("=i", message, _HEADER.size + 4)
    attrs = _attributes(message, _HEADER.size + _IFINFO.size)
    info = _attributes(attrs.get(_IFLA_LINKINFO, b""), 0)

    def number(kind: int) -> int | None:
        value = attrs.get(kind)
        return struct.unpack("=I", value[:4])[0] if value and len(value) >= 4 else None

    return Link(index, attrs.get(_IFLA_IFNAME, b"").rstrip(b"\0").decode(errors="replace"),
                info.get(_IFLA_INFO_KIND, b"").rstrip(b"\0").decode(errors="replace"),
                number(_IFLA_LINK) if _IFLA_LINK_NETNSID in attrs else None,
                number(_IFLA_MASTER))


def dump() -> dict[int, Link]:
    """Every interface of this thread's network namespace, by index."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                       _NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        request = _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        sock.send(_HEADER.pack(_HEADER.size + len(request), _RTM_GETLINK,
                               _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0) + request)
        links: dict[int, Link] = {}
        while True:
            data, offset = sock.recv(1 << 18), 0
            while offset + _HEADER.size <= len(data):
                length, kind, _, _, _ = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size or kind == _NLMSG_DONE:
                    return links
                if kind == _NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", data, offset + _HEADER.size)
                    raise OSError(-code, "RTM_GETLINK failed")
                if kind == _RTM_NEWLINK:
                    link = _link(data[offset:offset + length])
                    links[link.index] = link
                offset += (length + 3) & ~3
