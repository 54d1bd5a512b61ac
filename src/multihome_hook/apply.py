"""Carry out a plan in the current network namespace, all or nothing."""

from __future__ import annotations

import os

from .errors import RollbackFailed, RolledBack
from .kernel import IFNAME_MAX, IPV4_CONF, Route
from .plan import Add, SetRpFilter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .netlink import RouteSocket
    from .plan import Change


def _write_rp_filter(change: SetRpFilter) -> None:
    name = change.interface
    # Names come from the kernel's own listing; refuse anything that could
    # step out of the directory all the same.
    if not name or "/" in name or name in (".", "..") or len(name) > IFNAME_MAX:
        raise OSError(0, f"refusing interface name {name!r}")
    fd = os.open(f"{IPV4_CONF}/{name}/rp_filter", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(change.new).encode())
    finally:
        os.close(fd)


def _apply_one(change: Change, sock: RouteSocket | None) -> None:
    if isinstance(change, SetRpFilter):
        _write_rp_filter(change)
        return
    assert sock is not None, "route and rule changes need a netlink socket"
    item, add = change.item, isinstance(change, Add)
    if isinstance(item, Route):
        if add:
            sock.add_route(item)
        else:
            sock.delete_route(item)
    elif add:
        sock.add_rule(item)
    else:
        sock.delete_rule(item)


def apply(changes: Sequence[Change], sock: RouteSocket | None = None) -> None:
    """Apply every change, or undo the ones done and raise RolledBack
    (RollbackFailed if some could not be undone)."""
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
        raise RollbackFailed(f"{failure}; rollback FAILED, namespace left changed: "
                             + "; ".join(unrolled))
    raise RolledBack(f"{failure}; rolled back {len(done)} change(s), nothing changed")
