"""snapshot -> plan -> apply, inside the network namespace already entered.

Shared by the hook and anything else that fixes a namespace, so that they can
never disagree about what a mode does.
"""

from __future__ import annotations

from . import apply, plan, snapshot
from .errors import NoNamespace, NoSuchPrimary
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .modes import Mode
    from .netlink import RouteSocket
    from .primary import Primary


class Outcome(Record):
    """The changes made (or planned), or why none were needed; `note`: what
    else is worth saying."""

    __slots__ = ("changes", "skipped", "note")

    def __init__(self, changes: list[plan.Change], skipped: str | None = None,
                 note: str | None = None) -> None:
        self.changes, self.skipped, self.note = changes, skipped, note

    def __str__(self) -> str:
        text = self.skipped or plan.describe(self.changes)
        return f"{text} ({self.note})" if self.note else text


def _too_few_uplinks() -> str | None:
    """Why a namespace with fewer than two uplinks needs nothing, or None.

    One uplink cannot receive a reply on the "wrong" interface, so every
    mode would only weaken it (loose) or change nothing: with a host-wide
    default every single-network container passes here, before any netlink."""
    found = snapshot.uplinks()
    if len(found) >= 2 or snapshot.routing_tables():
        return None  # or routes elsewhere than main, which only netlink shows in full
    if not found:
        if snapshot.interfaces() == ["lo"]:
            return "no network interface, nothing to change"
        return "no default route, nothing to change"
    return f"one uplink ({found[0]}), nothing to change"


def _plan_and_apply(mode: Mode, primary: Primary | None, sock: RouteSocket | None,
                    dry_run: bool, switch: bool, strict: bool) -> list[plan.Change]:
    changes = mode.planner(snapshot.read(mode, sock), primary, switch, strict)
    if not dry_run:
        apply.apply(changes, sock)
    return changes


def fix(mode: Mode, primary: Primary | None, dry_run: bool = False, switch: bool = False,
        later: bool = False, strict: bool = False,
        primary_may_go: bool = False) -> Outcome:
    """Make the current namespace what `mode` wants (unless `dry_run`).

    Fewer than two uplinks, seen in /proc, mean nothing to do at all, for
    the hook and `apply` alike (a table of source routing left from two
    uplinks is still cleaned up). `switch`: an operator's explicit mode
    change (see plan.py). `later`: interfaces may still come (a user
    namespace of its own): loose then still sets `all` and `default`, which
    they copy. `strict`: io.multihome.rp_filter. `primary_may_go`: the
    primary is the running container's annotation, whose network may have
    been disconnected since: then chosen without it."""
    try:
        skipped = _too_few_uplinks()
        if skipped and not (later and not mode.routes):  # loose prepares all/default
            return Outcome([], skipped)
        if not (mode.routes or primary is not None or switch):
            # sysctls only: no netlink, no pyroute2 import
            return Outcome(_plan_and_apply(mode, primary, None, dry_run, switch, strict))
        from .netlink import RouteSocket

        with RouteSocket() as sock:
            try:
                return Outcome(_plan_and_apply(mode, primary, sock, dry_run, switch, strict))
            except NoSuchPrimary as exc:
                if not primary_may_go:
                    raise
                # Its network was disconnected: the others carry on without it.
                return Outcome(_plan_and_apply(mode, None, sock, dry_run, switch, strict),
                               note=f"{exc}: chosen without it")
    except OSError as exc:  # apply() reports its own: this is reading, nothing changed
        raise NoNamespace(f"cannot read the network namespace: {exc.strerror or exc}") from None
